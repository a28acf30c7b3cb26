"""What the steps of a job hand each other, typed.

fetch returns a `Fetched`, variant a `Rendered`; the lifecycle merges each into
the job's `artifacts` jsonb (store.steps.pass_step), and upload reads them back as
`Artifacts`. This module is the one place that turns them into JSON and back.
Only files in the attempt's scratch folder are named here: no bytes travel
through the broker or the database.

What comes back from the database is untrusted: from_json takes the fields it
knows, of the types they must have, or fails the job (bad_artifacts). The
file names are checked where they are opened (publisher/jobs/scratch.py); a
staged file's content type is never read back (it follows from its format), and
its hash and size are those of the bytes read back when it is uploaded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from publisher.errors import PermanentError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


@dataclasses.dataclass(frozen=True)
class Source:
    """The original, downloaded into the scratch folder and probed."""

    file: str
    bytes: int
    format: str
    width: int
    height: int
    #: Of the bytes fetched: the variant step decodes the original only if it still holds them.
    #: Empty for an attempt fetched by a release that recorded none: it never matches, and
    #: the job starts over from its fetch.
    sha256: str = ""


@dataclasses.dataclass(frozen=True)
class StagedFile:
    """One format of one variant, written into the scratch folder for upload."""

    file: str
    width: int
    height: int
    bytes: int
    sha256: str
    frames: int = 1
    #: The encoder quality and how it was chosen (publisher/imaging/targeting.py): the measured
    #: SSIMULACRA2 score, the target, and the end of the quality range taken if it was not reached.
    quality: int | None = None
    score: float | None = None
    target: float | None = None
    bound: str | None = None

    def chosen(self) -> dict:
        """What the variants JSON records of how its quality was chosen."""
        return {"quality": self.quality, "score": self.score, "target": self.target, "bound": self.bound}


@dataclasses.dataclass(frozen=True)
class ImagingFacts:
    """What the imaging learned that the file row keeps (sql/004_imaging.sql)."""

    recipe: str
    placeholder: str | None
    dominant_color: str | None
    frames: int = 1


@dataclasses.dataclass(frozen=True)
class Fetched:
    """fetch's result."""

    source: Source

    def to_json(self) -> dict[str, Any]:
        return {"source": dataclasses.asdict(self.source)}

    def traffic(self) -> dict[str, int]:
        return {"in": self.source.bytes}


@dataclasses.dataclass(frozen=True)
class Rendered:
    """variant's result: variant name -> format -> its file."""

    variants: dict[str, dict[str, StagedFile]]
    imaging: ImagingFacts

    def to_json(self) -> dict[str, Any]:
        return {
            "variants": {name: {fmt: dataclasses.asdict(f) for fmt, f in formats.items()}
                         for name, formats in self.variants.items()},
            "imaging": dataclasses.asdict(self.imaging),
        }

    def traffic(self) -> dict[str, int]:
        return {"out": sum(f.bytes for formats in self.variants.values() for f in formats.values())}


@dataclasses.dataclass(frozen=True)
class Published:
    """upload's result: each variant as the file row records it (its webp object at the
    top level, every format under "formats"), with the source's size and the imaging
    facts; the lifecycle finalizes the job with it (publisher/jobs/store/finalize.py)."""

    variants: dict[str, dict[str, Any]]
    source: Source
    imaging: ImagingFacts

    def to_json(self) -> dict[str, Any]:
        return {}  # the job ends here: nothing is handed on

    def traffic(self) -> dict[str, int]:
        return {}


@dataclasses.dataclass(frozen=True)
class Artifacts:
    """A job's artifacts as the steps after fetch read them; what has not been
    handed over yet is None."""

    source: Source | None
    variants: dict[str, dict[str, StagedFile]] | None
    imaging: ImagingFacts | None

    @classmethod
    def from_json(cls, artifacts: Mapping[str, Any] | None) -> Artifacts:
        try:
            artifacts = artifacts or {}
            variants = artifacts.get("variants")
            return cls(
                source=_typed(Source, artifacts["source"]) if "source" in artifacts else None,
                variants=None if variants is None else {
                    _key(name): {_key(fmt): _typed(StagedFile, f) for fmt, f in formats.items()}
                    for name, formats in variants.items()},
                imaging=_typed(ImagingFacts, artifacts["imaging"]) if "imaging" in artifacts else None,
            )
        except (AttributeError, TypeError, ValueError) as e:
            raise PermanentError(f"the job's artifacts are malformed: {e}", "bad_artifacts") from None


#: A dataclass handed over as JSON.
_Handed = TypeVar("_Handed", bound="DataclassInstance")
#: The field types a handed-over dataclass may declare (as written: this module's
#: annotations are not evaluated) and the JSON values each accepts.
_JSON_TYPES: dict[str | type, tuple[type, ...]] = {
    "str": (str,), "int": (int,), "str | None": (str, type(None)), "int | None": (int, type(None)),
    "float | None": (float, int, type(None)),
}


def _typed(cls: type[_Handed], values: object) -> _Handed:
    """cls from the fields it knows, each of its declared type (str | None fields may be null)."""
    if not isinstance(values, dict):
        raise TypeError(f"{cls.__name__} is not an object")
    kept = {}
    for field in dataclasses.fields(cls):
        if field.name not in values:
            if field.default is dataclasses.MISSING:
                raise ValueError(f"{cls.__name__} has no {field.name}")
            continue
        value = values[field.name]
        allowed = _JSON_TYPES[field.type]
        if not isinstance(value, allowed) or isinstance(value, bool):
            raise TypeError(f"{cls.__name__}.{field.name} is not {field.type}")
        kept[field.name] = value
    return cls(**kept)


def _key(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("a variant or format name is not a string")
    return value


class StepResult(Protocol):
    """What the lifecycle asks of a step's result (Fetched, Rendered, Published)."""

    def to_json(self) -> dict: ...

    def traffic(self) -> dict[str, int]: ...


def to_json(result: StepResult | None) -> dict[str, Any] | None:
    """A step's result as it is merged into the job's artifacts (None: nothing to merge)."""
    return None if result is None else result.to_json()
