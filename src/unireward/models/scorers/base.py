"""What every scorer model is: `score(prompts, images) -> floats` for a batch, on one device, under no_grad; and
`load_scorer`, which opens a registered scorer (short name, hub id or local copy) with the library that has it.

A scorer knows nothing of tasks, requests or results: the backend layer (`backends.scorer`) batches and isolates
items, the judging layer turns scores into point and pair results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ...errors import ConfigError
from .registry import ScorerSpec, find_scorer

# CLIP's (and BLIP's) image normalisation
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class Scorer:
    """A loaded scorer. Subclasses set `model` (a torch module) and implement `forward_scores`."""

    spec: ScorerSpec

    def __init__(self, spec: ScorerSpec, source: str, device: str, dtype: Any, temperature: float | None = None):
        if temperature is not None and not (isinstance(temperature, (int, float)) and temperature > 0):
            raise ConfigError(f"temperature must be a positive number, got {temperature!r}")
        self.spec, self.source, self.device, self.dtype = spec, source, device, dtype
        self.temperature = float(temperature if temperature is not None else spec.temperature)

    @property
    def prompted(self) -> bool:
        return self.spec.prompted

    def score(self, prompts: Sequence[str], images: Sequence[Any]) -> list[float]:
        """One score per (prompt, image) pair, in the scorer's own units (the registry's `units`)."""
        import torch

        if len(prompts) != len(images):
            raise ValueError(f"{len(prompts)} prompts for {len(images)} images")
        if not images:
            return []
        with torch.inference_mode():
            out = self.forward_scores(list(prompts), [im.convert("RGB") for im in images])
        return [float(v) for v in out.float().cpu().reshape(-1).tolist()]

    def forward_scores(self, prompts: list[str], images: list[Any]):
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"scorer": self.spec.name, "kind": self.spec.kind, "source": self.source,
                "temperature": self.temperature, "units": self.spec.units, "prompted": self.prompted}


def resolve_device(device: str | None, dtype: Any) -> tuple[str, Any]:
    """(device, torch dtype): CUDA when available unless told; "auto" is float16 on CUDA, float32 elsewhere."""
    import torch

    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dtype in (None, "auto"):
        return dev, torch.float16 if dev.startswith("cuda") else torch.float32
    if isinstance(dtype, str):
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ConfigError(f"unknown dtype {dtype!r}; use auto, float32, float16 or bfloat16")
        return dev, getattr(torch, dtype)
    return dev, dtype


def local_file(model: str, spec: ScorerSpec) -> Path | None:
    """The scorer's weights file in a local copy (the file itself, or `spec.weights` in the folder), None when
    `model` is not local."""
    p = Path(model).expanduser()
    if p.is_file():
        return p
    if p.is_dir():
        if not spec.weights:
            return None
        f = p / spec.weights
        if not f.is_file():
            raise ConfigError(f"{p}: no {spec.weights} in this folder; a local copy of {spec.name} holds the "
                              f"files of {spec.checkpoint}")
        return f
    return None


def hub_file(repo: str, filename: str) -> str:
    """A file of a hub repository, from the local cache or downloaded (on a machine that can reach the hub)."""
    from huggingface_hub import hf_hub_download

    try:
        return hf_hub_download(repo, filename)
    except Exception as e:  # offline, gated, missing: say what to do
        raise ConfigError(f"could not get {filename} of {repo} ({type(e).__name__}: {e}); download it where the "
                          "hub is reachable and pass the folder (or the file) instead of the short name") from None


def load_torch_weights(path: str | Path) -> dict:
    """A PyTorch checkpoint of tensors (`torch.load(weights_only=True)`), its "state_dict" entry when nested."""
    import torch

    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise ConfigError(f"{path}: not a readable PyTorch checkpoint of tensors ({type(e).__name__}: {e})") from None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a state dict, got {type(data).__name__}")
    return data


def load_scorer(model: str, *, device: str | None = None, dtype: Any = "auto", temperature: float | None = None,
                spec: ScorerSpec | None = None) -> Scorer:
    """Open a scorer: a short name (`unireward models`), a hub id, or a local copy (folder or weights file)."""
    spec = spec or find_scorer(model)
    if spec is None:
        raise ConfigError(f"{model!r} is no registered scorer nor a local copy of one; see `unireward models`")
    source = str(Path(model).expanduser()) if Path(model).expanduser().exists() else spec.checkpoint
    dev, torch_dtype = resolve_device(device, dtype)
    if spec.kind == "clip":
        from .clip import ClipScorer

        return ClipScorer.load(spec, source, dev, torch_dtype, temperature)
    if spec.kind == "aesthetic":
        from .clip import AestheticScorer

        return AestheticScorer.load(spec, source, dev, torch_dtype, temperature)
    if spec.kind == "open_clip":
        from .openclip import OpenClipScorer

        return OpenClipScorer.load(spec, source, dev, torch_dtype, temperature)
    from .imagereward import ImageRewardScorer

    return ImageRewardScorer.load(spec, source, dev, torch_dtype, temperature)
