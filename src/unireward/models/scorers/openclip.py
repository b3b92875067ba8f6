"""HPSv2 / HPSv2.1 on open_clip: an open_clip CLIP (ViT-H-14) whose weights are the authors' fine-tune, scored as
their score.py does: the cosine of the normalised image and caption embeddings.

A local copy is the file `HPS_v2.1_compressed.pt` (or `HPS_v2_compressed.pt`), or a folder holding it; the
architecture is the registry's (`arch`: ViT-H-14) unless the folder has an `open_clip_config.json` (open_clip's
own local-model layout, as the tiny test copies do). The checkpoint's `state_dict` is loaded strictly.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Iterator

from ...errors import ConfigError
from .base import Scorer, hub_file, load_torch_weights, local_file
from .registry import ScorerSpec


@contextlib.contextmanager
def quiet_open_clip() -> Iterator[None]:
    """open_clip logs warnings on the root logger when it builds a model without weights; silence them here."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


class OpenClipScorer(Scorer):
    def __init__(self, spec: ScorerSpec, source: str, model, preprocess, tokenizer, device: str, dtype: Any,
                 temperature: float | None = None):
        super().__init__(spec, source, device, dtype, temperature)
        self.model, self.preprocess, self.tokenizer = model, preprocess, tokenizer

    @classmethod
    def load(cls, spec: ScorerSpec, source: str, device: str, dtype: Any, temperature: float | None = None):
        try:
            import open_clip
        except ImportError:
            raise ConfigError(f"{spec.name} runs on open_clip, which is not installed: pip install "
                              "'unireward[scorers]' (open-clip-torch)") from None
        weights = local_file(source, spec) or hub_file(spec.checkpoint, spec.weights)
        folder = Path(weights).parent
        arch = f"local-dir:{folder}" if (folder / "open_clip_config.json").is_file() else spec.arch
        with quiet_open_clip():  # it warns that it found no weights: they are loaded right below
            model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=None, device="cpu")
        state = load_torch_weights(weights)
        state = {k.removeprefix("module."): v for k, v in state.items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ConfigError(f"{weights}: does not fit open_clip {arch} ({len(missing)} missing, e.g. "
                              f"{missing[:3]}; {len(unexpected)} unexpected, e.g. {unexpected[:3]})")
        tokenizer = open_clip.get_tokenizer(arch)
        return cls(spec, str(source), model.to(device, dtype).eval(), preprocess, tokenizer, device, dtype,
                   temperature)

    def forward_scores(self, prompts: list[str], images: list):
        import torch

        unique = list(dict.fromkeys(prompts))
        pixels = torch.stack([self.preprocess(im) for im in images]).to(self.device, self.dtype)
        img = self.model.encode_image(pixels, normalize=True)
        txt = self.model.encode_text(self.tokenizer(unique).to(self.device), normalize=True)
        return (img * txt[[unique.index(p) for p in prompts]]).sum(-1) * float(self.spec.scale)
