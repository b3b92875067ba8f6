"""The sandbox's tiny text-to-image generator: the weak generator that Diffusion-DPO aligns in the sandbox.

A pixel-space `UNet2DConditionModel` at 16x16 (v-prediction, linear noise schedule) whose input carries two
extra constant channels with each pixel's (y, x) coordinate in [-1, 1] (without them position is not learned),
conditioned on a 2-layer `CLIPTextModel` trained jointly. The byte-level BPE tokenizer is built once with the
`tokenizers` library and saved with the checkpoint; `load_generator` never rebuilds it (a rebuilt tokenizer can
silently change token ids). Sampling is DDIM without classifier-free guidance, deterministic per seed.

    gen = build_generator(seed=0, captions=captions)
    train_generator(gen, list(zip(captions, images)), steps=2000)
    images = sample(gen, ["a red circle at the top left"], seeds=[0])
    save_generator(gen, "outputs/sandbox/generator"); gen = load_generator("outputs/sandbox/generator")
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from .world import GENERATED_SIZE as RESOLUTION  # the world also draws generator-like renders at this size

MAX_TOKENS = 24  # text positions (captions are ~8 tokens)
FORMAT = "unireward-sandbox-generator"
_DEFAULT_CORPUS = [
    "a red circle at the top left", "a green square at the top middle", "a blue triangle at the top right",
    "a yellow circle at the middle left", "a red square at the center", "a green triangle at the middle right",
    "a blue circle at the bottom left", "a yellow square at the bottom middle", "a red triangle at the bottom right",
]


DrawFn = Callable[[np.random.Generator, int], Sequence[tuple[str, Any]]]  # fresh (caption, image) pairs


@dataclass
class Generator:
    """The parts of the sandbox generator. `scheduler` is the training (DDPM) scheduler."""

    unet: Any  # diffusers UNet2DConditionModel with 3 + 2 input channels
    text_encoder: Any  # transformers CLIPTextModel
    tokenizer: Any  # transformers PreTrainedTokenizerFast
    scheduler: Any  # diffusers DDPMScheduler (v_prediction)
    resolution: int = RESOLUTION

    @property
    def denoiser(self) -> "CoordDenoiser":
        """The denoiser as the DPO trainer calls it (adds the coordinate channels); shares `unet`."""
        return CoordDenoiser(self.unet)


def coordinate_channels(h: int, w: int, device=None, dtype=None) -> torch.Tensor:
    """(1, 2, h, w): channel 0 holds each pixel's y, channel 1 its x, both spanning [-1, 1]."""
    ys = torch.linspace(-1, 1, h, device=device, dtype=dtype)
    xs = torch.linspace(-1, 1, w, device=device, dtype=dtype)
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"))[None]


class CoordDenoiser(nn.Module):
    """`forward(sample, timestep, encoder_hidden_states) -> prediction` with the (y, x) channels appended."""

    def __init__(self, unet: nn.Module):
        super().__init__()
        self.unet = unet

    def forward(self, sample: torch.Tensor, timestep, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        b, _, h, w = sample.shape
        coords = coordinate_channels(h, w, sample.device, sample.dtype).expand(b, -1, -1, -1)
        return self.unet(torch.cat([sample, coords], 1), timestep, encoder_hidden_states=encoder_hidden_states).sample

    def save_pretrained(self, path: str | Path) -> None:
        """Save the wrapped UNet (diffusers format), e.g. the trainer's final `denoiser/` folder."""
        self.unet.save_pretrained(path)


def build_tokenizer(corpus: Sequence[str]):
    """A byte-level BPE (vocab <= 512) trained on `corpus`, as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=["<pad>", "<bos>", "<eos>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(sorted(set(corpus)), trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>",
        special_tokens=[("<bos>", tok.token_to_id("<bos>")), ("<eos>", tok.token_to_id("<eos>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                   model_max_length=MAX_TOKENS)


def build_generator(seed: int = 0, captions: Sequence[str] | None = None,
                    beta_schedule: str = "linear") -> Generator:
    """A fresh generator (~1.7M parameters) with weights drawn from `seed`; the tokenizer is trained on
    `captions` (default: a few sandbox captions; byte fallback covers any text). Keep the linear noise schedule:
    with "squaredcos_cap_v2" a 16x16 object stays visible in the input up to t~950, the model reads position
    from the noise instead of the caption, and position stayed at chance after 900 steps (linear: 92% at 600)."""
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = build_tokenizer(list(captions) if captions else _DEFAULT_CORPUS)
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=MAX_TOKENS, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id))
    unet = UNet2DConditionModel(
        sample_size=RESOLUTION, in_channels=5, out_channels=3, block_out_channels=(32, 64, 64), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=64, attention_head_dim=8, norm_num_groups=8)
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule=beta_schedule,
                              prediction_type="v_prediction", clip_sample=True)
    return Generator(unet=unet, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)


def encode_prompt(gen: Generator, captions: Sequence[str]) -> torch.Tensor:
    """Captions -> text-encoder hidden states (B, MAX_TOKENS, 64); gradients flow when enabled."""
    enc = gen.tokenizer(list(captions), padding="max_length", max_length=MAX_TOKENS, truncation=True,
                        return_tensors="pt")
    device = gen.text_encoder.device
    return gen.text_encoder(enc.input_ids.to(device), attention_mask=enc.attention_mask.to(device)).last_hidden_state


def _to_tensor(images: Sequence[Any], resolution: int) -> torch.Tensor:
    arr = np.stack([np.asarray(im.convert("RGB") if hasattr(im, "convert") else im, dtype=np.uint8) for im in images])
    if arr.shape[1:] != (resolution, resolution, 3):
        raise ValueError(f"images must be {resolution}x{resolution} RGB, got array shape {arr.shape[1:]}")
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def train_generator(gen: Generator, captions_and_images: Sequence[tuple[str, Any]] | DrawFn, steps: int,
                    batch_size: int = 64, lr: float = 1e-3, ema: float = 0.995, caption_dropout: float = 0.0,
                    warmup: int = 100, seed: int = 0, callback: Callable[[int, Generator], None] | None = None,
                    callback_every: int = 0, lr_schedule: str = "cosine") -> list[float]:
    """Pretrain UNet and text encoder jointly (v-target MSE, AdamW, cosine LR, grad clip 1). Images are
    `resolution`-square RGB (PIL or uint8 arrays). `captions_and_images` is either a fixed list of
    (caption, image) pairs, sampled with replacement, or a callable `draw(rng, n)` returning `n` fresh pairs for
    every step (`rng`: a numpy Generator seeded by `seed`), i.e. an endless stream of new renders. A caption is
    replaced by "" with probability `caption_dropout`. `lr_schedule` is a diffusers schedule name ("cosine": to zero
    at `steps`; "constant_with_warmup"). With `ema`, the generator ends with the EMA weights, and
    `callback(step, gen)` (every `callback_every` steps) sees them too. Returns the loss of every step."""
    from diffusers.optimization import get_scheduler

    device = gen.unet.device
    fresh = callable(captions_and_images)
    if fresh:
        draw, np_rng = captions_and_images, np.random.default_rng(seed)
    else:
        captions = [c for c, _ in captions_and_images]
        pixels = _to_tensor([im for _, im in captions_and_images], gen.resolution).to(device)
    denoiser, rng = gen.denoiser, torch.Generator().manual_seed(seed)
    params = [p for m in (gen.unet, gen.text_encoder) for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = get_scheduler(lr_schedule, opt, num_warmup_steps=min(warmup, steps // 10), num_training_steps=steps)
    shadow = [p.detach().clone() for p in params] if ema else None
    gen.unet.train(), gen.text_encoder.train()
    losses: list[float] = []
    for step in range(1, steps + 1):
        if fresh:
            batch = draw(np_rng, batch_size)
            caps = [c for c, _ in batch]
            x0 = _to_tensor([im for _, im in batch], gen.resolution).to(device)
        else:
            idx = torch.randint(0, len(captions), (batch_size,), generator=rng)
            caps = [captions[i] for i in idx.tolist()]
            x0 = pixels[idx.to(device)]
        drop = torch.rand(batch_size, generator=rng) < caption_dropout
        noise = torch.randn(x0.shape, generator=rng).to(device)
        t = torch.randint(0, gen.scheduler.config.num_train_timesteps, (batch_size,), generator=rng).to(device)
        cond = encode_prompt(gen, ["" if d else c for c, d in zip(caps, drop.tolist())])
        pred = denoiser(gen.scheduler.add_noise(x0, noise, t), t, cond)
        loss = torch.nn.functional.mse_loss(pred, gen.scheduler.get_velocity(x0, noise, t))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if shadow is not None:
            torch._foreach_lerp_(shadow, [p.detach() for p in params], 1.0 - min(ema, (1 + step) / (10 + step)))
        if callback and callback_every and (step % callback_every == 0 or step == steps):
            _swap(params, shadow)
            callback(step, gen)
            _swap(params, shadow)
    if shadow is not None:
        _swap(params, shadow)
    gen.unet.eval(), gen.text_encoder.eval()
    return losses


@torch.no_grad()
def _swap(params: list[torch.Tensor], shadow: list[torch.Tensor] | None) -> None:
    for p, s in zip(params, shadow or []):
        tmp = p.detach().clone()
        p.copy_(s)
        s.copy_(tmp)


@torch.no_grad()
def sample(gen: Generator, captions: Sequence[str], seeds: Sequence[int], steps: int = 20,
           batch_size: int = 256) -> list:
    """One image per (caption, seed): DDIM (eta 0) from seed-drawn noise, no guidance. Returns PIL images."""
    from diffusers import DDIMScheduler
    from PIL import Image

    if len(captions) != len(seeds):
        raise ValueError(f"{len(captions)} captions but {len(seeds)} seeds")
    was_training = gen.unet.training, gen.text_encoder.training
    gen.unet.eval(), gen.text_encoder.eval()
    ddim = DDIMScheduler.from_config(gen.scheduler.config)
    ddim.set_timesteps(steps)
    r, denoiser, out = gen.resolution, gen.denoiser, []
    for i in range(0, len(captions), batch_size):
        cond = encode_prompt(gen, captions[i:i + batch_size])
        x = torch.stack([torch.randn((3, r, r), generator=torch.Generator().manual_seed(int(s)))
                         for s in seeds[i:i + batch_size]]).to(gen.unet.device)
        for t in ddim.timesteps:
            x = ddim.step(denoiser(x, t, cond), t, x).prev_sample
        arr = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        out.extend(Image.fromarray(a) for a in arr)
    gen.unet.train(was_training[0]), gen.text_encoder.train(was_training[1])
    return out


def save_generator(gen: Generator, path: str | Path) -> Path:
    """Write unet/, text_encoder/, tokenizer/, scheduler/ and generator.json under `path`."""
    path = Path(path)
    gen.unet.save_pretrained(path / "unet")
    gen.text_encoder.save_pretrained(path / "text_encoder")
    gen.tokenizer.save_pretrained(path / "tokenizer")
    gen.scheduler.save_pretrained(path / "scheduler")
    (path / "generator.json").write_text(json.dumps({"format": FORMAT, "version": 1, "resolution": gen.resolution,
                                                     "coordinate_channels": 2}, indent=2))
    return path


def load_generator(path: str | Path) -> Generator:
    """Load a generator saved by `save_generator`, with its saved tokenizer (never rebuilt)."""
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, PreTrainedTokenizerFast

    path = Path(path)
    meta_file = path / "generator.json"
    if not meta_file.is_file():
        raise FileNotFoundError(f"{path}: not a sandbox generator (no generator.json)")
    meta = json.loads(meta_file.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{meta_file}: format {meta.get('format')!r} is not {FORMAT!r}")
    gen = Generator(unet=UNet2DConditionModel.from_pretrained(path / "unet"),
                    text_encoder=CLIPTextModel.from_pretrained(path / "text_encoder"),
                    tokenizer=PreTrainedTokenizerFast.from_pretrained(path / "tokenizer"),
                    scheduler=DDPMScheduler.from_pretrained(path / "scheduler"), resolution=meta["resolution"])
    gen.unet.eval(), gen.text_encoder.eval()
    return gen


def dpo_components(gen: Generator) -> dict[str, Any]:
    """What `train_diffusion_dpo` needs: a trainable copy of the denoiser (policy), the generator's own
    denoiser as the frozen reference, the noise scheduler and a frozen prompt encoder. After training,
    `dataclasses.replace(gen, unet=parts["policy"].unet)` is the aligned generator."""
    gen.text_encoder.eval().requires_grad_(False)
    return {"policy": CoordDenoiser(copy.deepcopy(gen.unet)), "reference": CoordDenoiser(gen.unet),
            "noise_scheduler": gen.scheduler, "encode_prompt": lambda caps: encode_prompt(gen, caps), "vae": None}
