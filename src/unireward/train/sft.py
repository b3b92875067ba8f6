"""Judge training: supervised fine-tuning of a VLM on unified `Sample` JSONL, loss on the answer only.

    unireward train sft --config sft/tiny max_steps=20
    accelerate launch --config_file src/unireward/configs/accelerate/zero2.yaml -m unireward train sft \\
        --config sft/qwen2_5_vl_7b
    python -c "from unireward.train.sft import run_sft_from_config as r; r('sft/tiny', ['max_steps=5'])"

`run_sft(config)` reads top to bottom: load the model and processor (a path, a hub id, or `tiny:<family>`, which
builds a tiny random model into `<output_dir>/base_model`), read and weight the data files, freeze parts and/or
add LoRA adapters, train with TRL's `SFTTrainer` (our `JudgeCollator` encodes images AND videos exactly as the
judge does and masks everything but the answer), resume from the latest checkpoint, and save model + processor
to `output_dir` so `RewardModel.load(output_dir)` judges with it directly. Each logged step is appended to
`<output_dir>/log.jsonl`; the resolved config is written to `<output_dir>/sft_config.yaml`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..config import expand_path
from ..errors import ConfigError, DataError

LM_LINEAR_NAMES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
VISION_LINEAR_NAMES = ["qkv", "proj", "fc1", "fc2", "linear_fc1", "linear_fc2"]  # Qwen2/2.5/3-VL vision blocks


@dataclass
class SFTRecipeConfig:
    """Settings of a judge SFT run. Defaults suit a small single-device run; presets set real-scale values
    (the paper: lr 2.5e-6 cosine, 3 epochs, effective batch 256, bf16, ZeRO-2, up to 32 frames)."""

    # ---- model
    model: str = "tiny:qwen2-vl"  # a local folder, a hub id, or tiny:<qwen2-vl|qwen2.5-vl|qwen3-vl> (built offline)
    tiny_size: dict[str, int] = field(default_factory=dict)  # tiny: only; TinySize overrides, e.g. {hidden: 128}
    tiny_max_pixels: int = 64 * 64  # tiny: only; the built processor's pixel budget per image / frame
    tiny_min_pixels: int = 28 * 28  # tiny: only; smaller images are upscaled to this (a 32 px image is ONE visual
    #                      token of Qwen2-VL at 28*28; 112*112 makes it 16)
    dtype: str = "auto"  # weights dtype: auto = bfloat16 under DeepSpeed with bf16 (fp32 master weights live in
    #                      DeepSpeed's optimizer), else float32 (bf16 then runs as autocast); or float32/bfloat16
    attn_implementation: str | None = None  # e.g. "flash_attention_2" or "sdpa"; None: transformers' default
    trust_remote_code: bool = False  # allow custom model code from the hub
    # ---- data
    data: list[Any] = field(default_factory=list)  # unified Sample JSONL files: a path, or {path: ..., weight: w};
    #                      weight w repeats a file floor(w) times plus a seeded random fraction w - floor(w);
    #                      or {NAME: value, ..., weight: w} for a datasets plugin NAME (unireward.plugins), e.g.
    #                      {sandbox_world: DIR, n_per_task: N, seed: s}: the train split of a sandbox world in DIR,
    #                      drawn there on first use (a DIR holding another world is an error)
    max_samples: int | None = None  # cap on the mixed set (after weighting; a seeded random subset)
    image_max_pixels: int = 1024 * 1024  # ImagePolicy: images larger than this are resized down (aspect kept)
    video_frames: int | None = 8  # VideoPolicy: frames per video, uniform over the clip (None: use video_fps)
    video_fps: float | None = None  # VideoPolicy: sample at this rate instead (capped by video_max_frames)
    video_max_frames: int = 32  # VideoPolicy: upper bound on frames per video
    video_max_pixels: int = 448 * 448  # VideoPolicy: per-frame pixel budget
    max_length: int | None = None  # refuse (never truncate) a sample longer than this many tokens; None: no limit
    # ---- what to train
    use_lora: bool = False  # train LoRA adapters instead of full weights
    lora_rank: int = 16  # LoRA rank r
    lora_alpha: float = 32.0  # LoRA alpha (scale alpha / r)
    lora_dropout: float = 0.05  # dropout on the LoRA input
    lora_target_modules: list[str] = field(default_factory=lambda: LM_LINEAR_NAMES + VISION_LINEAR_NAMES)
    #                      linear-layer names that get adapters, in every part that is not frozen ("all-linear":
    #                      every linear layer); the merger, when trained, is trained in full (modules_to_save)
    merge_lora: bool = False  # on save, merge adapters into the base and save a full model (adapters also go to
    #                      <output_dir>/adapter); False: save adapters only (they load on top of the base path)
    freeze_vision_tower: bool = False  # keep the vision encoder (patch embedding and blocks) fixed
    freeze_merger: bool = False  # keep the vision-to-language merger (projector) fixed
    freeze_language_model: bool = False  # keep the language model (embeddings, layers, head) fixed; with
    #                      freeze_vision_tower this trains only the merger
    # ---- optimisation
    lr: float = 2e-5  # peak learning rate (language model, and every part without its own rate)
    vision_lr: float | None = None  # peak learning rate of the vision tower; None: lr
    merger_lr: float | None = None  # peak learning rate of the merger; None: lr
    weight_decay: float = 0.0  # AdamW weight decay (not on biases and norms)
    lr_scheduler: str = "cosine"  # any transformers scheduler name: cosine, linear, constant_with_warmup, ...
    warmup: float = 0.03  # warm-up: a fraction of all steps if < 1, else a number of steps
    epochs: float = 3.0  # passes over the mixed data (ignored when max_steps is set)
    max_steps: int | None = None  # total optimizer steps; None: from epochs
    batch_size: int = 2  # examples per device per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step (effective batch = batch_size x grad_accum x devices)
    max_grad_norm: float = 1.0  # gradient clipping
    optim: str = "adamw_torch"  # transformers optimizer name
    bf16: bool | None = None  # bf16 mixed precision; None: on when a CUDA device supports it
    gradient_checkpointing: bool = False  # recompute activations in the backward pass to save memory
    deepspeed: str | None = None  # a DeepSpeed JSON (a file or a preset: deepspeed/zero2); None: take it from
    #                      `accelerate launch --config_file src/unireward/configs/accelerate/zero2.yaml`, or none
    # ---- bookkeeping
    output_dir: str = "outputs/sft"  # checkpoints, log.jsonl, the resolved config and the final model
    seed: int = 0  # seeds weighting, model init (tiny), LoRA init and data order
    logging_steps: int = 10  # log every N optimizer steps (log.jsonl and the progress bar)
    save_steps: int = 500  # checkpoint every N optimizer steps
    save_total_limit: int | None = 2  # keep at most this many checkpoints; None: keep all
    resume_from_checkpoint: str = "auto"  # auto: the latest checkpoint-* in output_dir (fresh when none);
    #                      "none": start fresh; or a checkpoint folder
    report_to: str = "none"  # "none", "tensorboard", "wandb", ... (transformers integrations)
    num_workers: int = 0  # DataLoader workers (media are decoded in them)
    num_threads: int | None = None  # torch CPU threads for this run (restored after); None: torch's default.
    #                      1 is much faster on a busy small CPU (2 threads spin-wait against other processes)
    progress: bool = True  # show the tqdm progress bar
    chat_template_kwargs: dict | None = None  # the judge's chat template options; None: the model's own
    #                      (its registry entry or unireward.json, e.g. Qwen3.5 judges: {enable_thinking: false})

    def __post_init__(self) -> None:
        if self.video_frames is None and self.video_fps is None:
            raise ConfigError("set video_frames (e.g. 8) or video_fps (e.g. 2.0)")
        if self.video_frames is not None and self.video_fps is not None:
            raise ConfigError("set only one of video_frames and video_fps (set video_frames=null to use video_fps)")
        if self.freeze_vision_tower and self.freeze_merger and self.freeze_language_model:
            raise ConfigError("freeze_vision_tower, freeze_merger and freeze_language_model are all set: nothing "
                              "would train")
        for name in ("batch_size", "grad_accum", "logging_steps", "save_steps", "lora_rank"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps must be at least 1 (or null to use epochs), got {self.max_steps}")

    def image_policy(self):
        from ..media import ImagePolicy

        return ImagePolicy(max_pixels=self.image_max_pixels)

    def video_policy(self):
        from ..media import VideoPolicy

        return VideoPolicy(num_frames=self.video_frames, fps=self.video_fps, max_frames=self.video_max_frames,
                           max_pixels=self.video_max_pixels)


@dataclass
class SFTResult:
    output_dir: Path  # the final model + processor (RewardModel.load(output_dir))
    global_step: int  # optimizer steps done in total (resumed runs included)
    train_loss: float | None  # mean training loss of this invocation (transformers' train_loss)
    last_loss: float | None  # the last logged loss
    samples_per_s: float | None  # training throughput of this invocation (examples / s)
    runtime_s: float  # wall time of trainer.train()
    num_samples: int  # examples in the weighted mix
    trainable_params: int
    total_params: int
    resumed_from: str | None  # the checkpoint this run continued from
    log_path: Path  # log.jsonl
    metrics: dict[str, Any] = field(default_factory=dict)  # trainer.train() metrics


# ---------------------------------------------------------------- the recipe


def run_sft_from_config(path: str | Path | None, overrides: Sequence[str] = ()) -> SFTResult:
    """Load a YAML preset with `key=value` overrides and run it."""
    from ..config import load_config

    return run_sft(load_config(SFTRecipeConfig, path, overrides))


def run_sft(config: SFTRecipeConfig) -> SFTResult:
    """Train a judge as `config` says; see the module docstring. Returns where it went and how it went."""
    with torch_threads(config.num_threads):
        return _run_sft(config)


@contextmanager
def torch_threads(n: int | None):
    """Run the block with torch limited to `n` threads (unchanged when `n` is falsy), restoring the count after."""
    import torch

    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def default_bf16(flag: bool | None) -> bool:
    """`flag` when set, else bf16 exactly where a CUDA device supports it."""
    import torch

    return flag if flag is not None else bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def prepare_run(config, config_file: str):
    """A training recipe's start: the config with its paths expanded, its output folder made and the config
    written there as `config_file`; returns (config, output folder, whether to train in bf16)."""
    from ..config import dump_config, preset_path

    deepspeed = config.deepspeed and str(preset_path(expand_path(config.deepspeed, "deepspeed"), ".json"))
    config = dataclasses.replace(config, output_dir=expand_path(config.output_dir, "output_dir"),
                                 model=expand_path(config.model, "model"), deepspeed=deepspeed)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    dump_config(config, out / config_file)
    return config, out, default_bf16(config.bf16)


def _run_sft(config: SFTRecipeConfig) -> SFTResult:
    import torch
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTConfig

    from .collate import JudgeCollator

    config, out, bf16 = prepare_run(config, "sft_config.yaml")

    # 1. data (checked before the model loads: a bad path fails in a second, not after minutes of loading)
    samples = read_mixture(config.data, seed=config.seed, max_samples=config.max_samples)
    spec = sft_spec(config)
    dataset = build_dataset(samples, spec)

    # 2. model and processor
    model, processor, _ = load_model(config, bf16)

    # 3. what trains
    set_trainable(model, config)
    peft_config = lora_config(model, config) if config.use_lora else None

    # 4. trainer
    resume = resume_path(config, get_last_checkpoint)
    args = SFTConfig(
        output_dir=str(out), per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum, learning_rate=config.lr, lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup, num_train_epochs=config.epochs, max_steps=config.max_steps or -1,
        weight_decay=config.weight_decay, max_grad_norm=config.max_grad_norm, optim=config.optim, bf16=bf16,
        fp16=False, activation_checkpointing=config.gradient_checkpointing,  # transformers 5's name for it
        activation_checkpointing_kwargs={"use_reentrant": False} if config.gradient_checkpointing else None,
        logging_steps=config.logging_steps, save_strategy="steps", save_steps=config.save_steps,
        save_total_limit=config.save_total_limit, seed=config.seed, data_seed=config.seed,
        report_to=config.report_to, remove_unused_columns=False, dataset_kwargs={"skip_prepare_dataset": True},
        max_length=None, dataloader_num_workers=config.num_workers, deepspeed=config.deepspeed,
        disable_tqdm=not config.progress, save_only_model=False, dataloader_pin_memory=torch.cuda.is_available(),
    )
    lrs = {"vision": config.vision_lr, "merger": config.merger_lr}
    trainer = _trainer_class()(
        model=model, args=args, train_dataset=dataset, processing_class=processor,
        data_collator=JudgeCollator(processor, max_length=config.max_length,
                                    chat_template_kwargs=spec.chat_template_kwargs), peft_config=peft_config,
        callbacks=[jsonl_logger(out / "log.jsonl")], part_lrs={k: v for k, v in lrs.items() if v is not None},
    )
    plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None)
    if config.use_lora and config.merge_lora and plugin is not None and plugin.zero_stage == 3:
        raise ConfigError("merge_lora=true needs whole weights, which ZeRO-3 shards; train with merge_lora=false "
                          "(adapters are saved) and merge afterwards, or use ZeRO-2")
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in trainer.model.parameters())

    # 5. train (resuming), 6. save
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume)
    runtime = time.perf_counter() - start
    save_final(trainer, processor, out, config)
    last = _last_logged_loss(out / "log.jsonl")
    return SFTResult(output_dir=out, global_step=trainer.state.global_step, train_loss=result.training_loss,
                     last_loss=last, samples_per_s=result.metrics.get("train_samples_per_second"),
                     runtime_s=runtime, num_samples=len(dataset), trainable_params=trainable, total_params=total,
                     resumed_from=resume, log_path=out / "log.jsonl", metrics=dict(result.metrics))


# ---------------------------------------------------------------- data


def read_mixture(data: Sequence[Any], seed: int = 0, max_samples: int | None = None) -> list[tuple[Any, str]]:
    """(Sample, media root) pairs from the data files, weighted (see `SFTRecipeConfig.data`). Media files are
    checked to exist up front, so a missing file fails now, named, and not hours into a run."""
    from ..data.schema import read_samples

    if not data:
        raise ConfigError("no training data: set data to one or more unified Sample JSONL files "
                          "(e.g. data=runs/sft-world/train.jsonl) or a sandbox world entry (sft/tiny)")
    rng = random.Random(seed)
    mixed: list[tuple[Any, str]] = []
    for entry in data:
        path, weight = _data_entry(entry)
        root = str(Path(path).parent)
        records = [(s, root) for s in read_samples(path)]
        if not records:
            raise DataError(f"{path}: holds no samples")
        whole, frac = int(weight), weight - int(weight)
        mixed += records * whole
        if frac > 0:
            mixed += rng.sample(records, round(frac * len(records)))
    if max_samples is not None and len(mixed) > max_samples:
        mixed = rng.sample(mixed, max_samples)
    missing = []
    for s, root in mixed:
        if not s.target:
            s.render_target()
        for m in s.media_paths(root):
            for p in (m if isinstance(m, list) else [m]):
                if not Path(p).exists():
                    missing.append(f"{s.id}: {p}")
    if missing:
        raise DataError(f"{len(missing)} media file(s) are missing, e.g. " + "; ".join(missing[:5]))
    return mixed


def _data_entry(entry: Any) -> tuple[Path, float]:
    if isinstance(entry, dict) and "path" not in entry:
        return _dataset_entry(entry)
    if isinstance(entry, (str, os.PathLike)):
        return Path(expand_path(entry, "data")), 1.0
    if isinstance(entry, dict) and "path" in entry and set(entry) <= {"path", "weight"}:
        try:
            weight = float(entry.get("weight", 1.0))
        except (TypeError, ValueError):
            raise ConfigError(f"data entry {entry}: weight must be a number") from None
        if weight < 0:
            raise ConfigError(f"data entry {entry}: weight must be >= 0")
        return Path(expand_path(entry["path"], "data")), weight
    raise ConfigError(f"data entry {entry!r}: expected a JSONL path or {{path: ..., weight: ...}}")


def _dataset_entry(entry: dict) -> tuple[Path, float]:
    """{NAME: value, setting: ..., weight: w}: the Sample JSONL that the `datasets` plugin NAME makes of `value`
    and the settings (e.g. the sandbox's {sandbox_world: DIR, n_per_task: 50})."""
    import inspect

    from .. import plugins

    named = [k for k in entry if k != "weight" and plugins.known("datasets", str(k))]
    if len(named) != 1:
        raise ConfigError(f"data entry {entry}: expected a JSONL path, {{path: ..., weight: ...}} or one dataset "
                          f"plugin's entry ({', '.join(plugins.names('datasets')) or 'none declared'})")
    name = named[0]
    make = plugins.load("datasets", name)
    settings = {k: v for k, v in entry.items() if k not in (name, "weight")}
    try:
        inspect.signature(make).bind(entry[name], **settings)
    except TypeError as e:
        takes = list(inspect.signature(make).parameters)
        raise ConfigError(f"data entry {entry}: {e}; a {name} entry takes {takes} (and weight)") from None
    return Path(make(entry[name], **settings)), float(entry.get("weight", 1.0))


def sft_spec(config: SFTRecipeConfig):
    """The judge spec SFT renders with: unireward's own prompts (SFT targets are in its formats), the model's
    chat template options (registry entry or unireward.json; `chat_template_kwargs` overrides them) and the
    run's media policies. The trained judge's unireward.json records the options, so it is run as trained."""
    from .collate import training_spec

    return training_spec(config.model, family="unireward", chat_template_kwargs=config.chat_template_kwargs,
                         image_policy=config.image_policy(), video_policy=config.video_policy())


def build_dataset(samples: list[tuple[Any, str]], spec):
    """A `datasets.Dataset` of {id, prompt, completion, images, videos}: the prompt is the judge's user message
    (content parts in template order), the completion the assistant message holding the sample's target; media
    are decoded lazily, per example, when the data loader asks for it."""
    from datasets import Dataset

    from .collate import prompt_messages, sample_chat
    from ..data.schema import Sample

    table = Dataset.from_dict({
        "id": [s.id for s, _ in samples],
        "record": [s.to_json() for s, _ in samples],
        "root": [root for _, root in samples],
    })

    def transform(batch: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {"id": [], "prompt": [], "completion": [], "images": [], "videos": []}
        for sid, record, root in zip(batch["id"], batch["record"], batch["root"]):
            sample = Sample.from_dict(json.loads(record), where=f"sample {sid}")
            chat = sample_chat(sample, root, spec)
            out["id"].append(sid)
            out["prompt"].append(prompt_messages(chat))
            out["completion"].append([{"role": "assistant", "content": sample.target}])
            out["images"].append(chat.images)
            out["videos"].append(chat.videos)
        return out

    return table.with_transform(transform)


# ---------------------------------------------------------------- model


def load_model(config: SFTRecipeConfig, bf16: bool):
    """(model, processor, path) for `config.model`; `tiny:<family>` builds (once) into <output_dir>/base_model."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = config.model
    if path.startswith("tiny:"):
        from ..models.tiny import FAMILIES, TinySize, build_tiny_model

        family = path.split(":", 1)[1]
        if family not in FAMILIES:
            raise ConfigError(f"model {path!r}: unknown tiny family {family!r}; choose one of {FAMILIES}")
        try:
            size = TinySize(**config.tiny_size)
        except TypeError as e:
            raise ConfigError(f"tiny_size: {e}; fields: {list(TinySize.__dataclass_fields__)}") from None
        base = Path(config.output_dir) / "base_model"
        if not (base / "config.json").is_file():
            build_tiny_model(base, family, size=size, seed=config.seed, min_pixels=config.tiny_min_pixels,
                             max_pixels=max(config.tiny_max_pixels, config.tiny_min_pixels))
        path = str(base.resolve())
    dtype = config.dtype
    if dtype == "auto":
        under_ds = bool(config.deepspeed) or os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() in ("1", "true")
        dtype = "bfloat16" if (bf16 and under_ds) else "float32"
    if dtype not in ("float32", "bfloat16", "float16"):
        raise ConfigError(f"dtype must be auto, float32, bfloat16 or float16, got {config.dtype!r}")
    kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype), "trust_remote_code": config.trust_remote_code}
    if config.attn_implementation:
        kwargs["attn_implementation"] = config.attn_implementation
    try:
        processor = AutoProcessor.from_pretrained(path, trust_remote_code=config.trust_remote_code)
        model = AutoModelForImageTextToText.from_pretrained(path, **kwargs)
    except OSError as e:
        raise ConfigError(f"could not load model {path!r}: {e}. Pass a local folder, a hub id (with network or a "
                          "filled HF cache) or tiny:<family>.") from None
    return model, processor, path


def part_of(name: str) -> str:
    """Which part a parameter or module belongs to: "vision" (encoder), "merger" (projector) or "language"."""
    if "merger" in name or "multi_modal_projector" in name:
        return "merger"
    if "visual" in name.split(".") or "vision_tower" in name or "vision_model" in name:
        return "vision"
    return "language"


def _frozen_parts(config: SFTRecipeConfig) -> set[str]:
    return {p for p, flag in (("vision", config.freeze_vision_tower), ("merger", config.freeze_merger),
                              ("language", config.freeze_language_model)) if flag}


def set_trainable(model, config: SFTRecipeConfig) -> dict[str, int]:
    """Freeze the parts the config asks for (full fine-tuning; with LoRA, frozen parts just get no adapters).
    Returns trainable parameter counts per part."""
    frozen = _frozen_parts(config)
    counts = {"vision": 0, "merger": 0, "language": 0}
    seen = set()
    for name, p in model.named_parameters():
        part = part_of(name)
        seen.add(part)
        p.requires_grad_(part not in frozen)
        if p.requires_grad:
            counts[part] += p.numel()
    flag = {"vision": "freeze_vision_tower", "merger": "freeze_merger", "language": "freeze_language_model"}
    for part in sorted(frozen - seen):
        raise ConfigError(f"{flag[part]} is set but {type(model).__name__} has no {part} parameters by name; "
                          "see unireward.train.sft.part_of")
    return counts


def lora_config(model, config: SFTRecipeConfig):
    """A peft LoraConfig with adapters on the named linear layers of every non-frozen part (explicit module
    names, so frozen parts get none) and the merger, when not frozen, trained in full."""
    from peft import LoraConfig
    from torch import nn

    frozen = _frozen_parts(config)
    names = set(config.lora_target_modules)
    all_linear = "all-linear" in names
    targets, to_save = [], []
    for name, module in model.named_modules():
        part = part_of(name)
        if part in frozen or not name:
            continue
        if part == "merger":
            if not isinstance(module, nn.ModuleList) and _top_merger(model, name):
                to_save.append(name)  # trained in full: small, and new to the task
            continue
        if isinstance(module, nn.Linear) and not name.endswith("lm_head") and (
                all_linear or name.rsplit(".", 1)[-1] in names):
            targets.append(name)
    if not targets and not to_save:
        raise ConfigError(f"use_lora: no linear layer named {sorted(names)} in the parts being trained; set "
                          "lora_target_modules (or 'all-linear')")
    return LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=targets or None, modules_to_save=to_save or None, task_type="CAUSAL_LM")


def _top_merger(model, name: str) -> bool:
    """A merger module whose parent is not a merger, or is a top-most list of mergers (Qwen3-VL deepstack)."""
    from torch import nn

    parent = name.rsplit(".", 1)[0] if "." in name else ""
    if part_of(parent) != "merger":
        return True
    grand = parent.rsplit(".", 1)[0] if "." in parent else ""
    return isinstance(model.get_submodule(parent), nn.ModuleList) and part_of(grand) != "merger"


def _trainer_class():
    from trl import SFTTrainer

    class JudgeSFTTrainer(SFTTrainer):
        """SFTTrainer with per-part learning rates (vision tower / merger / language model)."""

        def __init__(self, *args, part_lrs: dict[str, float] | None = None, **kwargs):
            self.part_lrs = part_lrs or {}
            super().__init__(*args, **kwargs)

        def create_optimizer(self, model=None):
            if self.optimizer is not None or not self.part_lrs:
                return super().create_optimizer(model)
            opt_model = self.model if model is None else model
            decay = set(self.get_decay_parameter_names(opt_model))
            groups: dict[tuple[float, float], list] = {}
            for name, p in opt_model.named_parameters():
                if not p.requires_grad:
                    continue
                lr = self.part_lrs.get(part_of(name), self.args.learning_rate)
                wd = self.args.weight_decay if name in decay else 0.0
                groups.setdefault((lr, wd), []).append(p)
            cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            kwargs.pop("lr", None)
            self.optimizer = cls([{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()],
                                 lr=self.args.learning_rate, **kwargs)
            return self.optimizer

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            # transformers 5.24 resumes full weights with `load_state_dict(strict=False)` on the file that
            # `save_pretrained` wrote, whose keys are in the checkpoint layout ("model.layers.*", "visual.*") while
            # Qwen-VL modules are named "model.language_model.*" / "model.visual.*": nothing matches and the run
            # silently restarts from the base weights. Load through `from_pretrained` (which maps the keys) instead.
            target = self.model if model is None else model
            ckpt = Path(resume_from_checkpoint)
            has_full = (ckpt / "model.safetensors").is_file() or (ckpt / "model.safetensors.index.json").is_file()
            if self.is_deepspeed_enabled or self.is_fsdp_enabled or hasattr(target, "peft_config") or not has_full:
                return super()._load_from_checkpoint(resume_from_checkpoint, model)
            fresh = type(target).from_pretrained(str(ckpt), dtype=target.dtype)
            target.load_state_dict(fresh.state_dict(), strict=True)
            del fresh

    return JudgeSFTTrainer


def resume_path(config: Any, get_last_checkpoint) -> str | None:
    """The checkpoint a run resumes from (`config.resume_from_checkpoint`: auto, none or a folder), or None."""
    r = (config.resume_from_checkpoint or "").strip()
    if r.lower() in ("", "none", "false", "no"):
        return None
    if r == "auto":
        out = Path(config.output_dir)
        return get_last_checkpoint(str(out)) if out.is_dir() else None
    if not Path(r).is_dir():
        raise ConfigError(f"resume_from_checkpoint={r!r}: no such checkpoint folder (use auto, none or a folder)")
    return r


# ---------------------------------------------------------------- logging and saving


def jsonl_logger(path: str | Path):
    """A TrainerCallback appending every log event ({"step", "epoch", "loss", "learning_rate", ...}) to `path`."""
    from transformers import TrainerCallback

    class JsonlLogger(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            record = {"step": state.global_step, "epoch": state.epoch, "time": time.time(), **logs}
            with Path(path).open("a") as f:
                f.write(json.dumps(record, default=float) + "\n")

    return JsonlLogger()


def _last_logged_loss(path: Path) -> float | None:
    if not path.is_file():
        return None
    loss = None
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if "loss" in rec:
            loss = float(rec["loss"])
    return loss


def save_final(trainer, processor, out: Path, config: SFTRecipeConfig) -> None:
    """Model (full, merged, or adapters on top of the base path) and processor into `out`."""
    if config.use_lora and config.merge_lora:
        trainer.save_model(str(out / "adapter"))
        if trainer.is_world_process_zero():
            merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
            merged.save_pretrained(str(out))
    else:
        trainer.save_model(str(out))
    if trainer.is_world_process_zero():
        from ..models.registry import write_sidecar

        processor.save_pretrained(str(out))
        # trained on unireward's templates (and these chat template options): judged with them, whatever
        # checkpoint it came from
        write_sidecar(out, chat_template_kwargs=sft_spec(config).chat_template_kwargs or None)
