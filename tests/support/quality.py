"""What a published variant's format records of its quality (docs/imaging.md#quality-targets)."""

from publisher.imaging import options

#: The default variants' sizes, by name.
SIZES = dict(options.DEFAULT_VARIANTS)


def assert_quality_chosen(entry: dict, target: float, size: tuple[int, int]) -> None:
    """A format of a variant records the quality its search chose and the score it measured: within
    the tolerance of the target, or why not (docs/imaging.md, "The range"); size: the variant's."""
    low, high = options.QUALITY_RANGES[entry["content_type"].split("/")[1]]
    assert entry["target"] == target
    assert low <= entry["quality"] <= high
    bound = entry["bound"]
    if bound is None:
        assert abs(entry["score"] - target) <= options.TOLERANCE, entry
    elif bound == "too_small":  # under 8 px a side: nothing to measure
        assert entry["score"] is None and min(size) < 8, entry
    elif bound == "between":  # no quality probed landed within the tolerance
        assert abs(entry["score"] - target) > options.TOLERANCE, entry
    else:
        assert (bound, entry["quality"]) in (("lowest", low), ("highest", high)), entry
        assert (entry["score"] > target) == (bound == "lowest"), entry


def auto_target(name: str) -> float:
    return options.QualityOptions().target(name, SIZES[name])
