"""The model registry: judges by short name, with the prompt family they were trained on (see registry.yaml).

    resolve("unifiedreward-2.0-qwen3vl-8b")               # a short name
    resolve("CodeGoat24/UnifiedReward-2.0-qwen3vl-8b")    # a hub id (case-insensitive)
    identify("/models/my-copy")                           # a local copy: its unireward.json, HF-cache folder name,
                                                          # config.json `_name_or_path`, or folder name

`resolve` and `identify` read only this registry and small JSON files, never model weights.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import ConfigError

SIDECAR = "unireward.json"  # in a judge folder: {"family"?, "checkpoint"?, "method"?, "max_new_tokens"?, ...}
DEFAULT_FAMILY = "unireward"
_CACHE_DIR_RE = re.compile(r"models--([^/\\]+?)--([^/\\]+)")  # ~/.cache/huggingface/hub/models--org--name/...


@dataclass(frozen=True)
class ModelSpec:
    name: str
    checkpoint: str  # hub id (or path)
    backbone: str  # qwen2.5-vl | qwen3-vl | qwen3.5
    family: str = DEFAULT_FAMILY  # prompt family in the task registry
    variant: str | None = None  # the family's prompt variant this checkpoint was trained on (None: default)
    method: str = "auto"
    max_new_tokens: int = 512
    chat_template_kwargs: dict = field(default_factory=dict)
    video: str = "native"  # native (a video part) | frames (each video as `video_frames` images)
    video_fps: float | None = None  # native videos: sampling rate (None: unireward's default policy)
    video_frames: int | None = None  # frames: frames per video
    video_max_pixels: int | None = None  # native videos: per-frame pixel budget
    image_max_pixels: int | None = None  # None: unireward's default ImagePolicy
    request_image_format: str = "png"  # how the OpenAI backend encodes images: png (lossless) or jpeg (q95)

    @property
    def released(self) -> bool:
        return self.family != DEFAULT_FAMILY

    def image_policy(self):
        from ..media import ImagePolicy

        return ImagePolicy(max_pixels=self.image_max_pixels) if self.image_max_pixels else ImagePolicy()

    def video_policy(self):
        """How this checkpoint's authors sample videos (a family task that sends frames as images may ask for
        another frame count)."""
        from ..media import VideoPolicy

        if self.video == "frames":
            n = self.video_frames or VideoPolicy().num_frames
            pixels = self.image_max_pixels or VideoPolicy().max_pixels  # frames are sent as full images
            return VideoPolicy(num_frames=n, max_frames=max(32, n), max_pixels=pixels,
                               max_source_pixels=max(pixels, VideoPolicy().max_source_pixels))
        if self.video_fps:
            return VideoPolicy(num_frames=None, fps=self.video_fps, max_frames=768,
                               max_pixels=self.video_max_pixels or VideoPolicy().max_pixels)
        return VideoPolicy()

    def options(self) -> dict[str, Any]:
        """Everything but the name, checkpoint and family, for listings."""
        d = asdict(self)
        for k in ("name", "checkpoint", "family"):
            d.pop(k)
        return {k: v for k, v in d.items() if v not in (None, {}, "")}


def load_entries(path: Path, cls: type) -> dict[str, Any]:
    """The entries of a registry YAML file as `cls` instances by name (keys starting with "x-" hold shared YAML
    anchors); a field `cls` does not have is refused, naming the file and entry."""
    import yaml

    known = set(cls.__dataclass_fields__)
    out = {}
    for name, fields in yaml.safe_load(path.read_text()).items():
        if name.startswith("x-"):
            continue
        unknown = set(fields) - known
        if unknown:
            raise ConfigError(f"models/{path.name}: {name}: unknown field(s) {sorted(unknown)}")
        out[name] = cls(name=name, **fields)
    return out


@cache
def _specs() -> dict[str, ModelSpec]:
    return load_entries(Path(__file__).parent / "registry.yaml", ModelSpec)


def list_models() -> list[ModelSpec]:
    return list(_specs().values())


def resolve(name_or_id: str) -> ModelSpec | None:
    """The spec for a registered short name or hub id (case-insensitive), or None."""
    if not isinstance(name_or_id, str):
        return None
    key = name_or_id.strip().rstrip("/").lower()
    for spec in _specs().values():
        if key in (spec.name.lower(), spec.checkpoint.lower()):
            return spec
    return None


def _by_basename(name: str) -> ModelSpec | None:
    """A released checkpoint whose hub name (the part after the organisation) is `name`."""
    key = name.strip().rstrip("/\\").lower()
    if not key:
        return None
    for spec in _specs().values():
        if spec.released and spec.checkpoint.lower().rsplit("/", 1)[-1] == key:
            return spec
    return None


def write_sidecar(folder: str | Path, family: str = DEFAULT_FAMILY, variant: str | None = None, **settings) -> Path:
    """Write a trained judge's unireward.json: the prompt family (and variant) it was trained with, so that
    `RewardModel.load` judges it with those prompts even when its config still names the released checkpoint it
    started from, plus how to run it (`method`, `reasoning`, `max_new_tokens`, ...; None values left out)."""
    data = {"family": family, **({"variant": variant} if variant else {}),
            **{k: v for k, v in settings.items() if v is not None}}
    f = Path(folder) / SIDECAR
    f.write_text(json.dumps(data) + "\n")
    return f


def read_sidecar(path: str | Path) -> dict:
    f = Path(path) / SIDECAR
    if not f.is_file():
        return {}
    try:
        data = json.loads(f.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{f}: not valid JSON ({e.msg})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{f}: expected a JSON object")
    return data


def identify(path: str | Path) -> ModelSpec | None:
    """The registered checkpoint a local model folder is a copy of, or None. Looked up in order: its
    unireward.json `checkpoint`, a Hugging Face cache folder name (models--org--name), config.json
    `_name_or_path` (a hub id or a path ending in a released name), and the folder's own name."""
    p = Path(path)
    if not p.is_dir():
        return None
    candidates: list[str] = []
    sidecar = read_sidecar(p)
    if isinstance(sidecar.get("checkpoint"), str):
        candidates.append(sidecar["checkpoint"])
    m = _CACHE_DIR_RE.search(str(p.resolve()))
    if m:
        candidates.append(f"{m.group(1)}/{m.group(2)}")
    config = p / "config.json"
    if config.is_file():
        try:
            named = json.loads(config.read_text()).get("_name_or_path")
        except (json.JSONDecodeError, AttributeError):
            named = None
        if isinstance(named, str) and named:
            candidates.append(named)
    for c in candidates:
        spec = resolve(c) or _by_basename(Path(c).name)
        if spec is not None:
            return spec
    return _by_basename(p.resolve().name)


def lookup(model: str) -> tuple[ModelSpec | None, dict]:
    """(the registered spec, the folder's unireward.json) for what `RewardModel.load` was given."""
    spec = resolve(model)
    if spec is not None:
        return spec, {}
    return identify(model), read_sidecar(model) if Path(model).is_dir() else {}
