"""Pydantic schemas of the JSON segdeploy writes and later trusts (model facts; the manifest's and the
engine sidecar's build on them), and `parse`, which turns a validation error into one line naming the
file and the field.

Imported lazily by the readers: pydantic costs about 50-80 ms to import, which a program that never
opens a model should not pay."""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from .errors import SegdeployError
from .recipes import recipe_from_dict

M = TypeVar("M", bound=BaseModel)


class Closed(BaseModel):
    """A JSON object whose every key is known: no type coercion, no unknown keys."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Open(BaseModel):
    """A JSON object with known keys checked and extra keys kept (newer writers add some)."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


def _lower(digest: str) -> str:
    return digest.lower()  # tools print sha256 in upper case; comparisons are case-insensitive


Digest = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$"), AfterValidator(_lower)]
Channel = Annotated[int, Field(ge=0, le=255)]
Colour = Annotated[list[Channel], Field(min_length=3, max_length=3)]


def _recipe(raw: dict[str, Any]) -> dict[str, Any]:
    try:
        recipe_from_dict(raw, "recipe")
    except SegdeployError as exc:
        raise PydanticCustomError("recipe", "{problem}", {"problem": str(exc).removeprefix("recipe: ")}) from None
    return raw


class IOFacts(Closed):
    fold_preprocess: bool = False
    argmax: bool = False


class ModelFacts(Closed):
    """ModelMeta as JSON: in the ONNX metadata, the manifest, the engine sidecar and checkpoints."""

    recipe: Annotated[dict[str, Any], AfterValidator(_recipe)]
    class_names: Annotated[list[str], Field(min_length=2)]
    colors: list[Colour]
    io: IOFacts = IOFacts()

    @field_validator("colors")
    @classmethod
    def _one_per_class(cls, colors: list[list[int]], info: ValidationInfo) -> list[list[int]]:
        names = info.data.get("class_names")
        if names is not None and len(colors) != len(names):
            raise PydanticCustomError("colours", f"{len(colors)} colours for {len(names)} classes")
        return colors


def _where(loc: tuple[int | str, ...]) -> str:
    parts = [f"[{p}]" if isinstance(p, int) else (p if p.isidentifier() else repr(p)) for p in loc]
    return ".".join(parts).replace(".[", "[") or "top level"


def parse(schema: type[M], raw: Any, where: str) -> M:
    """`raw` validated as `schema`, or one line: `where`, the first bad field, what is wrong with it."""
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        message = re.sub(r" or instance of \w+", "", error["msg"])
        found = "" if error["type"] in ("missing", "recipe", "colours") else f", got {error['input']!r:.60}"
        raise SegdeployError(f"{where}: field {_where(error['loc'])}: {message}{found}") from None


def check_format(raw: Any, expected: str, where: str, what: str) -> None:
    """Refuse JSON whose `format` is not `expected` ("name/version"): another file, or another version."""
    found = raw.get("format") if isinstance(raw, dict) else None
    family = expected.rsplit("/", 1)[0] + "/"
    if not isinstance(found, str) or not found.startswith(family):
        raise SegdeployError(f"{where}: not a {what}")
    if found != expected:
        raise SegdeployError(f"{where}: format {found!r}; this segdeploy reads {expected!r} (upgrade segdeploy)")
