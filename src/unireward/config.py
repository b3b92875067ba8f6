"""YAML presets to config dataclasses, with `key=value` overrides: one loader for every recipe, construct and the
sandbox (core: it imports nothing of unireward but `errors`).

    from unireward.config import load_config
    config = load_config(SFTRecipeConfig, "sft/tiny", ["max_steps=5", "lr=1e-4"])

A config is a file, or the name of a preset shipped in the package (`src/unireward/configs/`, installed with it):
`sft/tiny`, `sft/tiny.yaml` and `configs/sft/tiny.yaml` all name `configs/sft/tiny.yaml` when no such file exists
where the command runs (`preset_path`).

A preset is a YAML mapping whose keys are the dataclass's fields. Overrides are `key=value` strings; a dotted key
(`lora.rank=16`) reaches into a nested dataclass field. Every value, from YAML or the command line, is coerced to
its field's annotated type (so `lr=2.5e-6` is a float even though YAML reads it as a string), and an unknown key
or an uncoercible value raises a `ConfigError` naming the key and the file.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from pathlib import Path
from typing import Any, Sequence, TypeVar

from .errors import ConfigError

T = TypeVar("T")
PRESETS = Path(__file__).parent / "configs"  # the shipped presets (YAML, and DeepSpeed / accelerate files)
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null", "~", ""}
# transformers / TRL argument names people type out of habit -> the short names our recipes use
_HABITS = {"learning_rate": ["lr"], "num_train_epochs": ["epochs"], "per_device_train_batch_size": ["batch_size"],
           "gradient_accumulation_steps": ["grad_accum"], "lr_scheduler_type": ["lr_scheduler"],
           "warmup_ratio": ["warmup"], "warmup_steps": ["warmup"], "model_name_or_path": ["model", "pretrained_model"],
           "dataset": ["data", "train_data"], "lora_r": ["lora_rank"], "resume": ["resume_from_checkpoint"],
           "resume_from_checkpoint": ["resume"]}


def preset_path(name: str | Path, suffix: str = ".yaml") -> Path:
    """`name` when it is a file, else the shipped preset it names (relative to PRESETS, with or without a leading
    `configs/` and the `suffix`); a ConfigError naming close presets when it is neither."""
    p = Path(name).expanduser()
    if p.is_file():
        return p
    if not p.is_absolute():
        rel = p.relative_to("configs") if p.parts[:1] == ("configs",) else p
        for candidate in (PRESETS / rel, PRESETS / rel.with_name(rel.name + suffix)):
            if candidate.is_file():
                return candidate
    names = sorted(str(q.relative_to(PRESETS).with_suffix("")) for q in PRESETS.rglob(f"*{suffix}"))
    close = difflib.get_close_matches(str(p.with_suffix("")).removeprefix("configs/"), names, n=3)
    raise ConfigError(f"{name}: no such config file, nor a preset under {PRESETS}"
                      + (f"; did you mean {', '.join(close)}?" if close else ""))


def load_config(cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """Build `cls` from a YAML file or preset name (optional; see `preset_path`) and `key=value` overrides
    (applied in order, last wins)."""
    import yaml

    data: dict[str, Any] = {}
    origin: dict[str, str] = {}  # top-level key -> where its value came from, when not the file
    where = "defaults"
    if path is not None:
        p = preset_path(path)
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML ({e})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{p}: a config is a YAML mapping of field: value, got {type(loaded).__name__}")
        data = loaded or {}
        where = str(p)
    for item in overrides:
        key, sep, value = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not key=value (e.g. max_steps=10)")
        _check_key(cls, key, f"override {item!r}")
        _set_dotted(data, key, _parse_value(value))
        origin[key.split(".")[0]] = "command line"
    return from_dict(cls, data, where=where, origin=origin)


def expand_path(value: str, field_name: str) -> str:
    """`${VAR}` / `~` expanded; an unset variable is an error naming the field (not a folder called '${VAR}')."""
    out = os.path.expanduser(os.path.expandvars(str(value)))
    if "$" in out:
        raise ConfigError(f"{field_name}={value!r}: environment variable not set ({out!r}); export it or pass "
                          f"{field_name}=... on the command line")
    return out


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """`["a=1", "b.c=x"]` -> {"a": 1, "b": {"c": "x"}} (values parsed as YAML scalars, not yet coerced)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not key=value (e.g. max_steps=10)")
        _set_dotted(out, key.strip(), _parse_value(value))
    return out


def from_dict(cls: type[T], data: dict[str, Any], where: str = "config", origin: dict[str, str] | None = None) -> T:
    """Instantiate dataclass `cls` from a mapping, coercing each value to its field's type."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} for {cls.__name__}{_hint(unknown[0], fields)}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = coerce(value, hints[name], f"{(origin or {}).get(name, where)}: {name}")
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from None


def _check_key(cls: type, dotted: str, where: str) -> None:
    """Refuse an unknown (possibly dotted) key before it is merged, so the error names the override."""
    node: Any = cls
    for part in dotted.split("."):
        if not (isinstance(node, type) and dataclasses.is_dataclass(node)):
            return  # a dict-typed field: free-form keys
        fields = {f.name for f in dataclasses.fields(node) if f.init}
        if part not in fields:
            raise ConfigError(f"{where}: unknown key {part!r} for {node.__name__}{_hint(part, fields)}")
        node = typing.get_type_hints(node)[part]


def _hint(key: str, fields) -> str:
    names = sorted(fields)
    close = [n for n in _HABITS.get(key, []) if n in fields] or difflib.get_close_matches(key, names, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; known fields: {', '.join(names)}"


def to_dict(config: Any) -> dict[str, Any]:
    """A plain, YAML-safe dict of a config dataclass (tuples become lists)."""
    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v
    return plain(config)


def dump_config(config: Any, path: str | Path) -> Path:
    """Write the resolved config as YAML (what a run actually used, for reproducing it)."""
    import yaml

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
    return p


# ---------------------------------------------------------------- coercion


def coerce(value: Any, tp: Any, where: str) -> Any:
    """Coerce `value` to type annotation `tp` (bool, int, float, str, Optional, Union, list, tuple, dict,
    Literal, nested dataclasses, Any); raise a ConfigError naming `where` when it does not fit."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is object:
        return value
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        optional = type(None) in args
        if optional and (value is None or (isinstance(value, str) and value.strip().lower() in _NONE)):
            return None
        errors = []
        for member in _union_order(members, value):
            try:
                return coerce(value, member, where)
            except ConfigError as e:
                errors.append(str(e))
        if len(errors) == 1:
            raise ConfigError(errors[0] + (" (or null)" if optional else ""))
        raise ConfigError(f"{where}: {value!r} fits none of {_type_name(tp)}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, where=where)
    if origin in (list, tuple, Sequence, typing.Sequence) or tp in (list, tuple):
        items = _as_list(value, where)
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(items) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(items)} ({value!r})")
            return tuple(coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(items, args)))
        inner = args[0] if args else Any
        out = [coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(items)]
        return tuple(out) if (origin is tuple or tp is tuple) else out
    if origin is dict or tp is dict:
        if isinstance(value, str):
            value = _parse_value(value) if value.strip() else {}
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        vt = args[1] if len(args) == 2 else Any
        return {k: coerce(v, vt, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                f = float(value.replace("_", ""))
            except ValueError:
                f = None
            if f is not None and f.is_integer():
                return int(f)
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"{where}: cannot coerce {value!r} to {_type_name(tp)}")


def _union_order(members: list[Any], value: Any) -> list[Any]:
    """Try the member that matches the value's own type first (so "8" stays a str in `str | int`)."""
    def rank(m: Any) -> int:
        base = typing.get_origin(m) or m
        if isinstance(base, type) and not isinstance(value, bool) and isinstance(value, base):
            return 0
        if base is bool and isinstance(value, bool):
            return 0
        return 1
    return sorted(members, key=rank)


def _as_list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("["):
            parsed = _parse_value(s)
            if isinstance(parsed, list):
                return parsed
        return [x.strip() for x in s.split(",") if x.strip()]
    return [value]


def _parse_value(text: str) -> Any:
    """A command-line value: YAML when it parses (numbers, booleans, lists, mappings), else the raw string."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
