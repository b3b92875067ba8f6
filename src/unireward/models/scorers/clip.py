"""Scorers on a transformers `CLIPModel`: CLIPScore and PickScore (cosine of the image and caption embeddings,
scaled), and the LAION aesthetic predictor v2 (an MLP on the normalised CLIP image embedding).

    ClipScorer: score = scale x cos (scale: the model's learned logit scale for PickScore, as its authors' inference
                code; 100 for CLIPScore, with cos clamped at 0)
    AestheticScorer: score = MLP(image_embedding / |image_embedding|), the caption unread

A local copy is a `save_pretrained` folder (config.json, weights, processor files); PickScore's processor is the
CLIP-H one its authors name when the folder has none. The aesthetic predictor's folder holds the MLP's .pth and
the CLIP model in `clip/` (else the registry's backbone hub id).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch.nn as nn

from ...errors import ConfigError
from .base import Scorer, hub_file, load_torch_weights, local_file
from .registry import ScorerSpec

PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")


def _has_processor(path: str) -> bool:
    p = Path(path)
    return p.is_dir() and any((p / f).is_file() for f in PROCESSOR_FILES)


def load_clip(source: str, processor: str | None, device: str, dtype: Any):
    """(CLIPModel, processor) from a folder or hub id; the processor from `processor` when `source` has none."""
    from transformers import AutoProcessor, CLIPModel

    proc_src = source if _has_processor(source) or not processor else processor
    try:
        model = CLIPModel.from_pretrained(source, dtype=dtype).to(device).eval()
        proc = AutoProcessor.from_pretrained(proc_src)
    except OSError as e:
        raise ConfigError(f"could not load the CLIP model {source!r} (processor {proc_src!r}): {e}. Pass a local "
                          "folder, or a hub id with network access or a filled HF cache.") from None
    return model, proc


def image_embeddings(model, processor, images: list, device: str, dtype: Any):
    """The projected CLIP image embeddings (`get_image_features`), unit length."""
    pixels = processor(images=images, return_tensors="pt")["pixel_values"].to(device, dtype)
    emb = model.get_image_features(pixel_values=pixels).pooler_output
    return emb / emb.norm(dim=-1, keepdim=True)


class ClipScorer(Scorer):
    def __init__(self, spec: ScorerSpec, source: str, model, processor, device: str, dtype: Any,
                 temperature: float | None = None):
        super().__init__(spec, source, device, dtype, temperature)
        self.model, self.processor = model, processor

    @classmethod
    def load(cls, spec: ScorerSpec, source: str, device: str, dtype: Any, temperature: float | None = None):
        model, processor = load_clip(source, spec.processor, device, dtype)
        return cls(spec, source, model, processor, device, dtype, temperature)

    def forward_scores(self, prompts: list[str], images: list):
        unique = list(dict.fromkeys(prompts))  # a group shares its caption: encode it once
        text = self.processor(text=unique, padding=True, truncation=True, max_length=77, return_tensors="pt")
        txt = self.model.get_text_features(input_ids=text["input_ids"].to(self.device),
                                           attention_mask=text["attention_mask"].to(self.device)).pooler_output
        txt = txt / txt.norm(dim=-1, keepdim=True)
        img = image_embeddings(self.model, self.processor, images, self.device, self.dtype)
        cos = (img * txt[[unique.index(p) for p in prompts]]).sum(-1)
        if self.spec.clamp:
            cos = cos.clamp(min=0)
        scale = self.model.logit_scale.exp() if self.spec.scale == "logit" else float(self.spec.scale)
        return scale * cos


class MLPHead(nn.Module):
    """The MLP of the LAION aesthetic predictor and of ImageReward: Linear layers d-1024-128-64-16-1 with dropouts
    and no activations, its parameters named `layers.{0,2,4,6,7}` as in both projects' checkpoints."""

    def __init__(self, sizes: list[int]):
        super().__init__()
        self.sizes = list(sizes)
        d, h1, h2, h3, h4, out = sizes
        self.layers = nn.Sequential(nn.Linear(d, h1), nn.Dropout(0.2), nn.Linear(h1, h2), nn.Dropout(0.2),
                                    nn.Linear(h2, h3), nn.Dropout(0.1), nn.Linear(h3, h4), nn.Linear(h4, out))

    @classmethod
    def from_state_dict(cls, state: dict, prefix: str = "") -> "MLPHead":
        """A head sized from (and holding) `state`'s `{prefix}layers.*` weights."""
        try:
            sizes = [state[f"{prefix}layers.0.weight"].shape[1]]
            sizes += [state[f"{prefix}layers.{i}.weight"].shape[0] for i in (0, 2, 4, 6, 7)]
        except KeyError as e:
            raise ConfigError(f"not the weights of an aesthetic / ImageReward MLP head: no {e.args[0]}") from None
        head = cls(sizes)
        head.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix + "layers.")})
        return head

    def forward(self, x):
        return self.layers(x)


class AestheticScorer(Scorer):
    def __init__(self, spec: ScorerSpec, source: str, model, processor, head, device: str, dtype: Any,
                 temperature: float | None = None):
        super().__init__(spec, source, device, dtype, temperature)
        self.model, self.processor, self.head = model, processor, head

    @classmethod
    def load(cls, spec: ScorerSpec, source: str, device: str, dtype: Any, temperature: float | None = None):
        weights = local_file(source, spec) or hub_file(spec.checkpoint, spec.weights)
        folder = Path(source) if Path(source).is_dir() else Path(weights).parent
        backbone = str(folder / "clip") if (folder / "clip").is_dir() else spec.backbone
        head = MLPHead.from_state_dict(load_torch_weights(weights))
        model, processor = load_clip(backbone, None, device, dtype)
        if head.layers[0].in_features != model.config.projection_dim:
            raise ConfigError(f"{weights}: the MLP reads {head.layers[0].in_features}-d embeddings but {backbone} "
                              f"gives {model.config.projection_dim}-d ones; use the CLIP model it was trained on")
        return cls(spec, str(source), model, processor, head.to(device, dtype).eval(), device, dtype, temperature)

    def forward_scores(self, prompts: list[str], images: list):
        return self.head(image_embeddings(self.model, self.processor, images, self.device, self.dtype)).squeeze(-1)
