"""ImageReward on transformers: the authors' BLIP (ViT-L/16 image encoder, BERT text encoder with cross-attention
to the image) is transformers' `BlipVisionModel` + `BlipTextModel`; their MLP head and normalisation are ours.

The authors' package (image-reward 1.5) pins timm 0.6.13 and fairscale, which open_clip (timm >= 1.0.17) and
this environment cannot take, so the model head is reimplemented here from their ImageReward.py:

    pixels  = Resize(224, bicubic) -> CenterCrop(224) -> CLIP normalisation
    tokens  = BERT tokenizer (bert-base-uncased + [DEC] and [ENC]), max_length 35, padded
    feature = text_encoder(tokens, cross-attending to vision(pixels)).last_hidden_state[:, 0]
    score   = (MLP(feature) - 0.16717362830052426) / 1.0333394966054072

A local copy is the authors' hub folder (THUDM/ImageReward: `ImageReward.pt`, `med_config.json`) or the .pt file
itself (then `med_config.json` beside it). The tokenizer is the folder's `tokenizer/` when present, else
bert-base-uncased from the hub. The image encoder is BLIP's ViT-L/16 at 224 px unless the folder's unireward.json
names another `vision_config` (the tiny test copies do). `convert_state_dict` maps the checkpoint's BLIP names
onto transformers' (the rules of transformers' own BLIP conversion script).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch.nn as nn

from ...errors import ConfigError
from ..registry import read_sidecar
from .base import CLIP_MEAN, CLIP_STD, Scorer, hub_file, load_torch_weights, local_file
from .clip import MLPHead
from .registry import ScorerSpec

MEAN, STD = 0.16717362830052426, 1.0333394966054072  # the authors' normalisation of the MLP's output
MAX_TOKENS = 35
# BLIP's ViT-L/16 as ImageReward builds it (create_vit("large", 224)): timm-style blocks, LayerNorm eps 1e-6
VISION_LARGE = {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16,
                "image_size": 224, "patch_size": 16, "layer_norm_eps": 1e-6, "hidden_act": "gelu"}
_VISION_RULES = [  # authors' visual encoder name -> transformers BlipVisionModel name
    (r"^cls_token$", "embeddings.class_embedding"),
    (r"^pos_embed$", "embeddings.position_embedding"),
    (r"^patch_embed\.proj\.", "embeddings.patch_embedding."),
    (r"^blocks\.(\d+)\.norm1\.", r"encoder.layers.\1.layer_norm1."),
    (r"^blocks\.(\d+)\.norm2\.", r"encoder.layers.\1.layer_norm2."),
    (r"^blocks\.(\d+)\.attn\.qkv\.", r"encoder.layers.\1.self_attn.qkv."),
    (r"^blocks\.(\d+)\.attn\.proj\.", r"encoder.layers.\1.self_attn.projection."),
    (r"^blocks\.(\d+)\.mlp\.", r"encoder.layers.\1.mlp."),
    (r"^norm\.", "post_layernorm."),
]
_UNUSED = ("blip.vision_proj.", "blip.text_proj.")  # contrastive projections, not used for the reward


def convert_state_dict(state: dict) -> dict:
    """The authors' ImageReward state dict (blip.visual_encoder.*, blip.text_encoder.*, mlp.layers.*) in the names
    of `ImageRewardModel` (vision.*, text.*, mlp.layers.*); position-id buffers and unused projections dropped."""
    out = {}
    for key, value in state.items():
        if key.endswith("position_ids") or key.startswith(_UNUSED):
            continue
        if key.startswith("blip.visual_encoder."):
            name = key[len("blip.visual_encoder."):]
            for pattern, repl in _VISION_RULES:
                name, n = re.subn(pattern, repl, name)
                if n:
                    break
            out["vision." + name] = value
        elif key.startswith("blip.text_encoder."):
            out["text." + key[len("blip.text_encoder."):]] = value
        else:
            out[key] = value
    return out


def text_config(med: dict, vision_width: int):
    """transformers' BlipTextConfig for the authors' med_config.json (a BERT config with cross-attention)."""
    from transformers import BlipTextConfig

    keys = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "max_position_embeddings", "layer_norm_eps", "hidden_act", "pad_token_id", "bos_token_id", "sep_token_id")
    return BlipTextConfig(**{k: med[k] for k in keys if k in med}, encoder_hidden_size=vision_width,
                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


class ImageRewardModel(nn.Module):
    """BLIP image and text encoders and the reward MLP, named as `convert_state_dict` writes."""

    def __init__(self, vision_cfg: dict, med: dict, mlp_sizes: list[int]):
        super().__init__()
        from transformers import BlipTextModel, BlipVisionConfig, BlipVisionModel

        self.vision = BlipVisionModel(BlipVisionConfig(**vision_cfg))
        self.text = BlipTextModel(text_config(med, vision_cfg["hidden_size"]), add_pooling_layer=False)
        self.mlp = MLPHead(mlp_sizes)

    def forward(self, input_ids, attention_mask, pixel_values):
        import torch

        image = self.vision(pixel_values=pixel_values).last_hidden_state
        image_mask = torch.ones(image.shape[:-1], dtype=torch.long, device=image.device)
        text = self.text(input_ids=input_ids, attention_mask=attention_mask, encoder_hidden_states=image,
                         encoder_attention_mask=image_mask).last_hidden_state[:, 0, :]
        return (self.mlp(text).squeeze(-1) - MEAN) / STD


def load_tokenizer(folder: Path | None, hub_id: str):
    """The authors' tokenizer: BERT (bert-base-uncased) with [DEC] as bos and [ENC] added."""
    from transformers import BertTokenizer

    src = str(folder / "tokenizer") if folder is not None and (folder / "tokenizer").is_dir() else hub_id
    try:
        tok = BertTokenizer.from_pretrained(src)
    except OSError as e:
        raise ConfigError(f"could not load the ImageReward tokenizer {src!r}: {e}") from None
    tok.add_special_tokens({"bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"]})
    return tok


def image_transform(size: int):
    from torchvision import transforms as T

    return T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(size),
                      T.ToTensor(), T.Normalize(CLIP_MEAN, CLIP_STD)])


class ImageRewardScorer(Scorer):
    def __init__(self, spec: ScorerSpec, source: str, model: ImageRewardModel, tokenizer, device: str, dtype: Any,
                 temperature: float | None = None):
        super().__init__(spec, source, device, dtype, temperature)
        self.model, self.tokenizer = model, tokenizer
        self.transform = image_transform(model.vision.config.image_size)

    @classmethod
    def load(cls, spec: ScorerSpec, source: str, device: str, dtype: Any, temperature: float | None = None):
        local = local_file(source, spec)
        weights = local or hub_file(spec.checkpoint, spec.weights)
        folder = Path(weights).parent
        med_file = folder / "med_config.json" if (folder / "med_config.json").is_file() else (
            hub_file(spec.checkpoint, "med_config.json"))
        try:
            med = json.loads(Path(med_file).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"{med_file}: not a readable BERT config ({e})") from None
        vision_cfg = {**VISION_LARGE, **read_sidecar(folder).get("vision_config", {})}
        state = convert_state_dict(load_torch_weights(weights))
        model = ImageRewardModel(vision_cfg, med, MLPHead.from_state_dict(state, "mlp.").sizes)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ConfigError(f"{weights}: does not fit ImageReward's BLIP ({len(missing)} missing, e.g. "
                              f"{missing[:3]}; {len(unexpected)} unexpected, e.g. {unexpected[:3]})")
        tokenizer = load_tokenizer(folder if local else None, spec.processor)
        return cls(spec, str(source), model.to(device, dtype).eval(), tokenizer, device, dtype, temperature)

    def forward_scores(self, prompts: list[str], images: list):
        import torch

        tokens = self.tokenizer(prompts, padding="max_length", truncation=True, max_length=MAX_TOKENS,
                                return_tensors="pt").to(self.device)
        pixels = torch.stack([self.transform(im) for im in images]).to(self.device, self.dtype)
        return self.model(tokens["input_ids"], tokens["attention_mask"], pixels)
