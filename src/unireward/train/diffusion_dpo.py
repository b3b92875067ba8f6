"""Diffusion-DPO for image and video generators: a config dataclass and one linear training function.

Python:
    result = train_diffusion_dpo(DiffusionDPOConfig(beta=5000, steps=100), policy, reference,
                                 noise_scheduler, encode_prompt, dataset, vae=vae)
From a YAML preset (the CLI is a thin layer over this):
    accelerate launch -m unireward train diffusion-dpo --config diffusion_dpo/sdxl_turbo steps=10

Each step takes pairs (caption, chosen, rejected), encodes pixels to latents when a VAE is given, draws ONE
noise tensor and ONE timestep per pair shared by chosen and rejected, runs the trained policy and the frozen
reference on the same noisy inputs, and minimises the Diffusion-DPO loss (`diffusion_loss.py`). Image batches
are 4D (B, C, H, W), video batches 5D (the denoiser's own layout). Checkpoints hold the policy, optimizer and
LR-scheduler state; a resumed run continues from the saved step and, because noise, timesteps and data order
are derived from (seed, step), reproduces the uninterrupted run.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn

from .diffusion_loss import diffusion_dpo_loss, diffusion_target

EncodePrompt = Callable[[list[str]], "torch.Tensor | dict[str, Any]"]
DenoiserForward = Callable[[nn.Module, torch.Tensor, torch.Tensor, Any], torch.Tensor]


@dataclass
class DiffusionDPOConfig:
    """Settings of a Diffusion-DPO run. Defaults follow the paper's SDXL-Turbo run where it states them."""

    # ---- what to train (used by `train_diffusion_dpo_from_config`; the Python API takes built objects)
    pretrained_model: str = ""  # diffusers pipeline (hub id or folder), or what the `generator` plugin loads
    generator: str = "diffusers"  # diffusers (a UNet pipeline), or a generators plugin (e.g. sandbox-generator)
    train_data: str = ""  # JSONL of unified `image-gen/pair` / `video-gen/pair` samples
    resolution: int = 512  # images are resized and centre-cropped to this square size
    # ---- objective
    beta: float = 5000.0  # KL weight of Diffusion-DPO (paper: 5000 for SDXL-Turbo and T2V-Turbo)
    sft_weight: float = 0.0  # add this times the chosen sample's denoising loss (DPO + SFT); 0: the paper's loss
    prediction_type: str | None = None  # "epsilon" | "v_prediction" | "sample"; None: the scheduler's own
    # ---- optimisation
    lr: float = 1e-8  # learning rate per pair when `scale_lr` (paper: 1e-8 scaled), else the absolute rate
    scale_lr: bool = True  # multiply lr by batch_size * grad_accum * number of processes
    lr_scheduler: str = "constant_with_warmup"  # any name of diffusers.optimization.get_scheduler
    warmup_steps: int = 0  # LR warm-up, in optimizer steps
    steps: int = 2000  # optimizer steps in total (a resumed run stops at the same total)
    batch_size: int = 1  # pairs per process per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step
    max_grad_norm: float = 1.0  # gradient clipping; 0 disables it
    weight_decay: float = 1e-2  # AdamW weight decay
    adam_betas: tuple[float, float] = (0.9, 0.999)  # AdamW betas
    mixed_precision: str = "no"  # "no" | "fp16" | "bf16" (accelerate autocast; the reference is cast to it)
    gradient_checkpointing: bool = False  # trade compute for memory when the denoiser supports it
    # ---- full fine-tuning or LoRA
    use_lora: bool = False  # train LoRA adapters (peft) instead of every denoiser weight
    lora_rank: int = 8  # LoRA rank r
    lora_alpha: float | None = None  # LoRA alpha; None: equal to the rank
    lora_target_modules: list[str] = field(default_factory=lambda: ["to_q", "to_k", "to_v", "to_out.0"])
    # ---- bookkeeping
    seed: int = 0  # seeds data order, noise and timesteps (per step, so resumes are exact)
    output_dir: str = "outputs/diffusion_dpo"  # checkpoints, log.jsonl and the final denoiser go here
    save_every: int = 500  # checkpoint every N optimizer steps (and at the end); 0: only at the end
    log_every: int = 1  # write a log.jsonl line every N optimizer steps
    resume: str = "auto"  # "auto": latest checkpoint in output_dir; "": start fresh; or a checkpoint folder
    num_workers: int = 0  # DataLoader workers
    progress: bool = True  # progress bar on the main process


@dataclass
class DiffusionDPOResult:
    step: int  # optimizer steps done in total
    metrics: dict[str, float]  # last logged metrics
    output_dir: Path
    log_path: Path
    checkpoint: Path | None  # last checkpoint written


def denoiser_forward(model: nn.Module, noisy: torch.Tensor, timesteps: torch.Tensor, cond: Any) -> torch.Tensor:
    """Call a diffusers denoiser: `cond` is the encoder hidden states, or a dict of keyword arguments."""
    kwargs = cond if isinstance(cond, dict) else {"encoder_hidden_states": cond}
    out = model(noisy, timesteps, **kwargs)
    if hasattr(out, "sample"):
        return out.sample
    return out[0] if isinstance(out, (tuple, list)) else out


def _twice(x: Any, device: torch.device | str) -> Any:
    """Repeat a conditioning batch for the (chosen, rejected) halves, on `device`."""
    if isinstance(x, torch.Tensor):
        return torch.cat([x, x]).to(device)
    if isinstance(x, dict):
        return {k: _twice(v, device) for k, v in x.items()}
    return x


@torch.no_grad()
def encode_to_latents(vae: nn.Module | None, pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Pixels in [-1, 1] to scaled latents; identity without a VAE. A 2D `AutoencoderKL` encodes 5D video
    (B, C, F, H, W) frame by frame; video VAEs take the 5D tensor whole."""
    if vae is None:
        return pixels
    frames = pixels.ndim == 5 and type(vae).__name__ == "AutoencoderKL"
    x = pixels.permute(0, 2, 1, 3, 4).flatten(0, 1) if frames else pixels
    dist = vae.encode(x.to(vae.dtype)).latent_dist
    noise = torch.randn(dist.mean.shape, generator=generator).to(dist.mean)
    z = dist.mean + dist.std * noise
    z = (z - (getattr(vae.config, "shift_factor", None) or 0.0)) * vae.config.scaling_factor
    if frames:
        z = z.unflatten(0, (pixels.shape[0], pixels.shape[2])).permute(0, 2, 1, 3, 4)
    return z


class _Batches(torch.utils.data.Sampler):
    """Endless micro-batches of indices from seeded per-epoch permutations; starts at a given micro-batch and
    takes this process's slice of each global batch (so resumes and multi-process runs see the same data)."""

    def __init__(self, n: int, batch_size: int, seed: int, start: int, rank: int = 0, world: int = 1):
        per_epoch = n // (batch_size * world)
        if per_epoch == 0:
            raise ValueError(f"dataset has {n} pairs, fewer than one global batch ({batch_size * world})")
        self.n, self.bs, self.seed, self.start, self.rank, self.world = n, batch_size, seed, start, rank, world
        self.per_epoch = per_epoch

    def __iter__(self) -> Iterator[list[int]]:
        m = self.start
        while True:
            epoch, k = divmod(m, self.per_epoch)
            perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
            g = self.bs * self.world
            yield perm[k * g + self.rank * self.bs: k * g + (self.rank + 1) * self.bs].tolist()
            m += 1


def _collate(items: Sequence[dict]) -> dict:
    return {"caption": [it["caption"] for it in items],
            "chosen": torch.stack([torch.as_tensor(it["chosen"]) for it in items]),
            "rejected": torch.stack([torch.as_tensor(it["rejected"]) for it in items])}


def dpo_micro_step(batch: dict, policy: nn.Module, reference: nn.Module, noise_scheduler, encode_prompt: EncodePrompt,
                   beta: float, prediction_type: str, generator: torch.Generator, vae: nn.Module | None = None,
                   forward: DenoiserForward = denoiser_forward, device: torch.device | str = "cpu",
                   sft_weight: float = 0.0):
    """Loss of one micro-batch of pairs: shared noise and timestep per pair, policy vs frozen reference."""
    with torch.no_grad():
        cond = encode_prompt(list(batch["caption"]))
    w = encode_to_latents(vae, batch["chosen"].to(device), generator)
    l_ = encode_to_latents(vae, batch["rejected"].to(device), generator)
    b = w.shape[0]
    noise = torch.randn(w.shape, generator=generator).to(w)
    t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (b,), generator=generator).to(w.device)
    clean, noise2, t2 = torch.cat([w, l_]), torch.cat([noise, noise]), torch.cat([t, t])
    noisy = noise_scheduler.add_noise(clean, noise2, t2)
    target = diffusion_target(noise_scheduler, clean, noise2, t2, prediction_type)
    cond2 = _twice(cond, w.device)
    pred = forward(policy, noisy, t2, cond2)
    with torch.no_grad():
        ref = forward(reference, noisy, t2, cond2)
    return diffusion_dpo_loss(pred[:b], pred[b:], ref[:b], ref[b:], target[:b], target[b:], beta, sft_weight)


def _add_lora(policy: nn.Module, config: DiffusionDPOConfig) -> None:
    from peft import LoraConfig, inject_adapter_in_model

    lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha or config.lora_rank,
                      init_lora_weights="gaussian", target_modules=config.lora_target_modules)
    policy.requires_grad_(False)
    inject_adapter_in_model(lora, policy)  # LoRA B starts at zero: the policy equals the reference at step 0
    for name, p in policy.named_parameters():
        p.requires_grad_("lora_" in name)


def _logged_step(line: str) -> float:
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):  # a line cut short by a crash
        return math.inf


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The checkpoint folder with the highest step under `output_dir`, or None."""
    done = [p for p in Path(output_dir).glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)


def train_diffusion_dpo(config: DiffusionDPOConfig, policy: nn.Module, reference: nn.Module, noise_scheduler,
                        encode_prompt: EncodePrompt, dataset: Sequence[dict], *, vae: nn.Module | None = None,
                        forward: DenoiserForward = denoiser_forward) -> DiffusionDPOResult:
    """Train `policy` (a denoiser) with Diffusion-DPO against the frozen `reference` (same architecture).

    Args:
        policy: the denoiser to train, e.g. a `UNet2DConditionModel`, a `UNet3DConditionModel` or a wrapper
            module; usually initialised as a copy of `reference`.
        reference: the frozen reference denoiser (put in eval mode, never updated).
        noise_scheduler: a diffusers training scheduler (`add_noise`, `get_velocity`, `config`).
        encode_prompt: captions -> encoder hidden states, or a dict of extra denoiser keyword arguments.
        dataset: indexable items {"caption": str, "chosen": tensor, "rejected": tensor}; pixels in [-1, 1]
            when `vae` is given, else what the denoiser consumes (latents or pixels).
        vae: optional VAE encoding pixels to latents (pixel-space models pass None).
        forward: how to call the denoiser (see `denoiser_forward`).
    """
    from accelerate import Accelerator
    from diffusers.optimization import get_scheduler
    from tqdm.auto import tqdm

    accelerator = Accelerator(mixed_precision=config.mixed_precision)
    out_dir = Path(config.output_dir)
    log_path = out_dir / "log.jsonl"
    prediction_type = config.prediction_type or noise_scheduler.config.prediction_type
    reference.eval().requires_grad_(False)
    if config.use_lora:
        _add_lora(policy, config)
    else:
        policy.requires_grad_(True)  # full fine-tuning: every denoiser weight
    if config.gradient_checkpointing and hasattr(policy, "enable_gradient_checkpointing"):
        policy.enable_gradient_checkpointing()
    policy.train()
    params = [p for p in policy.parameters() if p.requires_grad]
    scale = config.batch_size * config.grad_accum * accelerator.num_processes if config.scale_lr else 1
    optimizer = torch.optim.AdamW(params, lr=config.lr * scale, betas=tuple(config.adam_betas),
                                  weight_decay=config.weight_decay)
    lr_scheduler = get_scheduler(config.lr_scheduler, optimizer, num_warmup_steps=config.warmup_steps,
                                 num_training_steps=config.steps)
    policy, optimizer = accelerator.prepare(policy, optimizer)
    accelerator.register_for_checkpointing(lr_scheduler)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(accelerator.mixed_precision, torch.float32)
    reference.to(accelerator.device)
    if dtype != torch.float32:
        reference.to(dtype=dtype)
    if vae is not None:
        vae.eval().requires_grad_(False).to(accelerator.device)

    step, resume_from = 0, None
    if config.resume:
        resume_from = latest_checkpoint(out_dir) if config.resume == "auto" else Path(config.resume)
    if resume_from is not None:
        accelerator.load_state(str(resume_from))
        step = json.loads((resume_from / "trainer_state.json").read_text())["step"]
    if accelerator.is_main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        if log_path.exists():  # drop lines written after the checkpoint we resume from (or all, if fresh)
            log_path.write_text("".join(ln + "\n" for ln in log_path.read_text().splitlines()
                                        if _logged_step(ln) <= step))

    sampler = _Batches(len(dataset), config.batch_size, config.seed, step * config.grad_accum,
                       accelerator.process_index, accelerator.num_processes)
    batches = iter(torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=_collate,
                                               num_workers=config.num_workers))
    bar = tqdm(total=config.steps, initial=step, desc="diffusion-dpo",
               disable=not (config.progress and accelerator.is_local_main_process))
    metrics: dict[str, float] = {}
    checkpoint, t0 = None, time.time()
    while step < config.steps:
        sums: dict[str, float] = {}
        for micro in range(config.grad_accum):
            index = (step * config.grad_accum + micro) * accelerator.num_processes + accelerator.process_index
            gen = torch.Generator().manual_seed(config.seed * 1_000_003 + index)
            sync = micro == config.grad_accum - 1  # all-reduce gradients only on the last micro-batch
            with (nullcontext() if sync else accelerator.no_sync(policy)), accelerator.autocast():
                out = dpo_micro_step(next(batches), policy, reference, noise_scheduler, encode_prompt, config.beta,
                                     prediction_type, gen, vae, forward, accelerator.device, config.sft_weight)
                if not math.isfinite(out.metrics["loss"]):
                    raise FloatingPointError(f"step {step}: Diffusion-DPO loss is {out.metrics['loss']}")
                accelerator.backward(out.loss / config.grad_accum)
            for k, v in out.metrics.items():
                sums[k] = sums.get(k, 0.0) + v / config.grad_accum
        if config.max_grad_norm > 0:
            sums["grad_norm"] = float(accelerator.clip_grad_norm_(params, config.max_grad_norm))
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        metrics = {"step": step, "lr": lr_scheduler.get_last_lr()[0], **sums, "elapsed_s": time.time() - t0}
        bar.update(1)
        bar.set_postfix(loss=f"{sums['loss']:.4f}", acc=f"{sums['implicit_acc']:.2f}")
        if accelerator.is_main_process and (step % config.log_every == 0 or step == config.steps):
            with log_path.open("a") as f:
                f.write(json.dumps(metrics) + "\n")
        if (config.save_every and step % config.save_every == 0) or step == config.steps:
            checkpoint = out_dir / f"checkpoint-{step}"
            accelerator.save_state(str(checkpoint))
            if accelerator.is_main_process:
                (checkpoint / "trainer_state.json").write_text(json.dumps({"step": step, "metrics": metrics}))
    bar.close()
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save_denoiser(accelerator.unwrap_model(policy), out_dir / "denoiser", lora=config.use_lora)
    return DiffusionDPOResult(step=step, metrics=metrics, output_dir=out_dir, log_path=log_path,
                              checkpoint=checkpoint or resume_from)


def save_denoiser(model: nn.Module, path: Path, lora: bool = False) -> None:
    """Save the trained denoiser: LoRA weights only, diffusers `save_pretrained`, or a plain state dict."""
    from safetensors.torch import save_file

    path.mkdir(parents=True, exist_ok=True)
    if lora:
        from peft import get_peft_model_state_dict

        save_file({k: v.contiguous() for k, v in get_peft_model_state_dict(model).items()},
                  str(path / "lora.safetensors"))
    elif hasattr(model, "save_pretrained"):
        model.save_pretrained(str(path))
    else:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path / "model.safetensors"))


# ---------------------------------------------------------------- YAML presets, data files and pipelines

def load_dpo_config(path: str | Path, overrides: Sequence[str] = ()) -> DiffusionDPOConfig:
    """Read a YAML preset into `DiffusionDPOConfig`, then apply `key=value` overrides (values parsed as YAML)."""
    import yaml

    from ..config import preset_path
    from ..errors import ConfigError

    path = preset_path(path)
    data = yaml.safe_load(path.read_text()) or {}
    defaults = DiffusionDPOConfig()
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} is not key=value")
        key = key.strip()  # text fields take the text as written ("no" stays "no")
        data[key] = value.strip("'\"") if isinstance(getattr(defaults, key, None), str) else yaml.safe_load(value)
    if data.get("mixed_precision") is False:  # YAML reads a bare `no` as false
        data["mixed_precision"] = "no"
    if data.get("resume") is False:
        data["resume"] = ""
    unknown = sorted(set(data) - set(DiffusionDPOConfig.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"{path}: unknown field(s) {unknown}; see DiffusionDPOConfig")
    for key, value in data.items():  # YAML reads "1e-4" as a string: coerce to the field's type
        if isinstance(getattr(defaults, key), float) and isinstance(value, (str, int)) and not isinstance(value, bool):
            try:
                data[key] = float(value)
            except ValueError:
                raise ConfigError(f"{path}: field {key!r} must be a number, got {value!r}") from None
    if "adam_betas" in data:
        data["adam_betas"] = tuple(float(b) for b in data["adam_betas"])
    return DiffusionDPOConfig(**data)


class PreferencePairs(torch.utils.data.Dataset):
    """Unified `*-gen/pair` samples (JSONL) as {"caption", "chosen", "rejected"} pixel tensors in [-1, 1].
    An image is (3, R, R); a video given as a list of frame files is (3, F, R, R). Tied pairs are skipped."""

    def __init__(self, path: str | Path, resolution: int):
        from ..data.schema import read_samples

        self.resolution, self.items = resolution, []
        for s in read_samples(path):
            if s.label not in (1, 2):
                continue
            a, b = s.media_paths(Path(path).parent)[:2]
            self.items.append((s.prompt, a, b) if s.label == 1 else (s.prompt, b, a))

    def __len__(self) -> int:
        return len(self.items)

    def _load(self, media: str | list[str]) -> torch.Tensor:
        if isinstance(media, list):
            return torch.stack([self._load(m) for m in media], dim=1)
        from PIL import Image, ImageOps

        with Image.open(media) as im:
            im = ImageOps.fit(im.convert("RGB"), (self.resolution, self.resolution), Image.BICUBIC)
            x = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
        return x.view(self.resolution, self.resolution, 3).permute(2, 0, 1).float() / 127.5 - 1.0

    def __getitem__(self, i: int) -> dict:
        caption, chosen, rejected = self.items[i]
        return {"caption": caption, "chosen": self._load(chosen), "rejected": self._load(rejected)}


def components_from_pretrained(name: str, resolution: int, generator: str = "diffusers") -> dict[str, Any]:
    """Policy, frozen reference, training scheduler, prompt encoder, VAE and forward of a pretrained generator:
    a diffusers UNet pipeline (SD 1.x/2.x, SDXL / SDXL-Turbo, UNet video), or what a `generators` plugin
    (`unireward.plugins`, e.g. the sandbox's `sandbox-generator`) makes of `name`."""
    import copy

    from accelerate import PartialState

    from ..errors import ConfigError

    if generator != "diffusers":
        from .. import plugins

        return plugins.load("generators", generator)(name, resolution)
    from diffusers import DDPMScheduler, DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(name)
    if getattr(pipe, "unet", None) is None:
        raise ConfigError(f"{name}: {type(pipe).__name__} has no UNet; pass a denoiser and `forward` to "
                          "train_diffusion_dpo from Python for transformer denoisers")
    device = PartialState().device
    for part in ("text_encoder", "text_encoder_2", "vae"):
        if getattr(pipe, part, None) is not None:
            getattr(pipe, part).to(device).requires_grad_(False)
    sdxl = getattr(pipe, "text_encoder_2", None) is not None

    def encode_prompt(captions: list[str]) -> Any:
        out = pipe.encode_prompt(prompt=captions, device=device, num_images_per_prompt=1,
                                 do_classifier_free_guidance=False)
        if not sdxl:
            return out[0]
        r = resolution
        ids = torch.tensor([[r, r, 0, 0, r, r]], dtype=out[0].dtype, device=device).repeat(len(captions), 1)
        return {"encoder_hidden_states": out[0], "added_cond_kwargs": {"text_embeds": out[2], "time_ids": ids}}

    return {"policy": pipe.unet, "reference": copy.deepcopy(pipe.unet), "encode_prompt": encode_prompt,
            "noise_scheduler": DDPMScheduler.from_config(pipe.scheduler.config), "vae": pipe.vae,
            "forward": denoiser_forward}


def train_diffusion_dpo_from_config(config_path: str | Path, overrides: Sequence[str] = ()) -> DiffusionDPOResult:
    """Load a preset (+ overrides), build the generator named by `pretrained_model` and the pairs in
    `train_data`, and train. The entry point of `unireward train diffusion-dpo --config PATH [key=value ...]`."""
    from ..errors import ConfigError

    config = load_dpo_config(config_path, overrides)
    if not config.pretrained_model or not config.train_data:
        raise ConfigError(f"{config_path}: set pretrained_model and train_data (or pass them as key=value)")
    parts = components_from_pretrained(config.pretrained_model, config.resolution, config.generator)
    dataset = PreferencePairs(config.train_data, config.resolution)
    return train_diffusion_dpo(config, parts["policy"], parts["reference"], parts["noise_scheduler"],
                               parts["encode_prompt"], dataset, vae=parts.get("vae"),
                               forward=parts.get("forward", denoiser_forward))
