"""What a published variant's format records of its quality (docs/imaging.md#quality-targets)."""

from publisher.imaging import options

#: The default variants' sizes, by name.
SIZES = dict(options.DEFAULT_VARIANTS)


def assert_quality_chosen(entry: dict, target: float) -> None:
    """A format of a variant records the quality its search chose and the score it measured: within
    the tolerance of the target, or at the end of the quality range, which it says."""
    low, high = options.QUALITY_RANGES[entry["content_type"].split("/")[1]]
    assert entry["target"] == target
    assert low <= entry["quality"] <= high
    if entry["bound"] is None:
        assert abs(entry["score"] - target) <= options.TOLERANCE, entry
    else:
        assert (entry["bound"], entry["quality"]) in (("lowest", low), ("highest", high)), entry
        assert (entry["score"] > target) == (entry["bound"] == "lowest"), entry


def auto_target(name: str) -> float:
    return options.QualityOptions().target(name, SIZES[name])
