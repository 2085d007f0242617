"""Typed loading of YAML files into dataclasses, with one-line errors naming the file and key."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from .errors import SegdeployError

T = TypeVar("T")
_YAML12_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def read_yaml(path: Path) -> dict[str, Any]:
    import yaml  # here, not above: the runtime builds recipes from manifests and never imports PyYAML

    class Loader(yaml.SafeLoader):
        """PyYAML's safe loader, refusing a key given twice in one mapping (it keeps the last silently)."""

        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
                if key in seen and key_node.tag != "tag:yaml.org,2002:merge":
                    raise yaml.YAMLError(f"duplicate key '{key}' (line {key_node.start_mark.line + 1})")
                seen.add(key)
            return super().construct_mapping(node, deep)  # type: ignore[no-untyped-call, no-any-return]

    try:
        payload = yaml.load(path.read_text(encoding="utf-8"), Loader)  # Loader is a SafeLoader
    except FileNotFoundError:
        raise SegdeployError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise SegdeployError(f"{path}: not a UTF-8 YAML file (byte {exc.start} cannot be decoded)") from None
    except (OSError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SegdeployError(f"{path}: not readable YAML ({reason})") from None
    if not isinstance(payload, dict):
        raise SegdeployError(f"{path}: expected a mapping at the top level")
    return payload


def build(cls: type[T], raw: Any, where: str) -> T:
    """Build dataclass `cls` from a mapping, checking keys and value types; `where` names the source."""
    if not isinstance(raw, dict):
        raise SegdeployError(f"{where}: expected a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SegdeployError(f"{where}: unknown key '{unknown[0]}' (known: {', '.join(sorted(known))})")
    values = {}
    for name, value in raw.items():
        values[name] = _coerce(hints[name], value, f"{where}: {name}")
    try:
        return cls(**values)
    except TypeError as exc:
        raise SegdeployError(f"{where}: {exc}") from None


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(option, value, where)
            except SegdeployError as exc:
                errors.append(str(exc))
        raise SegdeployError(errors[0])
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)  # type: ignore[arg-type]
    if origin is typing.Literal:
        if value not in args:
            raise SegdeployError(f"{where}: {value!r} is not one of {', '.join(map(str, args))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise SegdeployError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise SegdeployError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(a, v, where) for a, v in zip(args, value))
        item = args[0] if args else Any
        converted = [_coerce(item, v, where) for v in value]
        return tuple(converted) if origin is tuple else converted
    if origin is dict:
        if not isinstance(value, dict):
            raise SegdeployError(f"{where}: expected a mapping, got {value!r}")
        key_t, val_t = args or (Any, Any)
        return {_coerce(key_t, k, where): _coerce(val_t, v, where) for k, v in value.items()}
    if hint is Any:
        return value
    if hint is float:
        if isinstance(value, str) and _YAML12_FLOAT.fullmatch(value):
            return float(value)  # YAML 1.1 (PyYAML) reads 1e-3 as text: no dot, no sign in the exponent
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise SegdeployError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if hint in (int, str, bool) and not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise SegdeployError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def parse_size(text: str) -> tuple[int, int]:
    """'256x320' (height x width) or '256' (square)."""
    parts = text.lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise SegdeployError(f"size '{text}': expected HEIGHTxWIDTH, e.g. 256x320") from None
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or min(values) < 1:
        raise SegdeployError(f"size '{text}': expected HEIGHTxWIDTH, e.g. 256x320")
    return values[0], values[1]
