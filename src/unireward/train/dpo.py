"""DPO for VLMs (image and video understanding) on TRL's `DPOTrainer`: a config dataclass and one linear recipe.

    unireward train dpo --config dpo/sandbox max_steps=20
    accelerate launch --config_file src/unireward/configs/accelerate/zero2.yaml -m unireward train dpo \\
        --config dpo/llava_ov_7b
    python -c "from unireward.train.dpo import run_dpo_from_config as r; r('dpo/sandbox', [])"

Data: TRL DPO rows as `unireward construct` exports them (`dpo_trl.jsonl`): {"prompt": [user message with an
image or video part and the question], "chosen": [assistant message], "rejected": [assistant message],
"images": [path], "videos": [path]}. Media load lazily per example. Our `PreferenceCollator` encodes prompts
exactly as the construction sampler prompted the policy (`train.collate.encode_prompts`, the judge's own
encoding, videos included, which TRL's default collator does not handle) and returns TRL's layout: chosen rows
then rejected rows, `completion_mask` on the answer tokens.

The reference model: with LoRA, `ref_model=None` and TRL uses the base with adapters disabled; with full
fine-tuning, an explicit frozen deep copy of the policy made before training (TRL would otherwise reload the
reference from the model's path, which is wrong for an in-memory or already-modified model).

`run_dpo(config)` reads top to bottom: data, model, what trains, trainer, train (resuming), save.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError, DataError
from .sft import LM_LINEAR_NAMES


@dataclass
class DPORecipeConfig:
    """Settings of a VLM DPO run. Defaults are the paper's (beta 0.1, lr 5e-7, 3 epochs)."""

    # ---- model (the policy being aligned; also the reference)
    model: str = "tiny:qwen2-vl"  # a local folder, a hub id, or tiny:<family> (a random tiny model, for tests)
    tiny_size: dict[str, int] = field(default_factory=dict)  # tiny: only; TinySize overrides
    tiny_max_pixels: int = 64 * 64  # tiny: only; pixel budget of the built processor
    dtype: str = "auto"  # auto (float32, or bfloat16 under DeepSpeed with bf16), float32, bfloat16
    attn_implementation: str | None = None  # e.g. flash_attention_2; None: transformers' default
    trust_remote_code: bool = False
    # ---- data
    data: list[str] = field(default_factory=list)  # TRL DPO JSONL files (`unireward construct` exports)
    max_samples: int | None = None  # a seeded random subset of this many rows
    image_max_pixels: int = 1024 * 1024  # images larger than this are resized down (aspect kept)
    video_frames: int = 8  # frames per video, uniform over the clip
    video_max_pixels: int = 448 * 448  # per-frame pixel budget
    max_length: int | None = None  # refuse (never truncate) longer examples; None: no limit
    # ---- what trains
    use_lora: bool = False  # LoRA adapters (reference = base with adapters off) instead of full fine-tuning
    lora_rank: int = 16
    lora_alpha: float = 32.0
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(default_factory=lambda: list(LM_LINEAR_NAMES))
    freeze_vision_tower: bool = True  # keep the vision encoder fixed (usual for VLM DPO)
    freeze_merger: bool = False  # keep the vision-to-language projector fixed
    freeze_language_model: bool = False
    # ---- objective and optimisation
    beta: float = 0.1  # DPO beta (paper: 0.1)
    loss_type: str = "sigmoid"  # any TRL DPO loss type (sigmoid = DPO, ipo, hinge, ...)
    sft_weight: float = 0.0  # > 0: add this times the chosen answers' NLL (TRL's "sft" loss; DPO + SFT, as RPO)
    lr: float = 5e-7  # peak learning rate (paper: 5e-7)
    lr_scheduler: str = "cosine"
    warmup: float = 0.1  # fraction of steps if < 1, else steps
    epochs: float = 3.0  # paper: 3
    max_steps: int | None = None  # total optimizer steps; None: from epochs
    batch_size: int = 1  # preference pairs per device per micro-batch
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    weight_decay: float = 0.0
    bf16: bool | None = None  # None: on when a CUDA device supports it
    gradient_checkpointing: bool = False
    deepspeed: str | None = None  # a DeepSpeed JSON, or take it from `accelerate launch --config_file`
    # ---- bookkeeping
    output_dir: str = "outputs/dpo"
    seed: int = 0
    logging_steps: int = 10
    save_steps: int = 500
    save_total_limit: int | None = 2
    resume_from_checkpoint: str = "auto"  # auto | none | a checkpoint folder
    report_to: str = "none"
    num_workers: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("batch_size", "grad_accum", "logging_steps", "save_steps", "lora_rank", "video_frames"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.beta <= 0:
            raise ConfigError(f"beta must be positive, got {self.beta}")
        if self.freeze_vision_tower and self.freeze_merger and self.freeze_language_model:
            raise ConfigError("every part is frozen: nothing would train")

    def image_policy(self):
        from ..media import ImagePolicy

        return ImagePolicy(max_pixels=self.image_max_pixels)

    def video_policy(self):
        from ..media import VideoPolicy

        return VideoPolicy(num_frames=self.video_frames, max_frames=max(32, self.video_frames),
                           max_pixels=self.video_max_pixels)


@dataclass
class DPOResult:
    output_dir: Path  # the final policy (full or merged) + processor, or adapters
    global_step: int
    train_loss: float | None
    last_metrics: dict[str, Any]  # the last logged metrics (loss, rewards/margins, rewards/accuracies, ...)
    runtime_s: float
    num_pairs: int
    trainable_params: int
    resumed_from: str | None
    log_path: Path


# ---------------------------------------------------------------- the recipe


def run_dpo_from_config(path: str | Path | None, overrides: Sequence[str] = ()) -> DPOResult:
    """Load a YAML preset with `key=value` overrides and run it (the `unireward train dpo` entry point)."""
    from ..config import load_config

    return run_dpo(load_config(DPORecipeConfig, path, overrides))


def run_dpo(config: DPORecipeConfig, *, model: Any = None, processor: Any = None, rows: list[dict] | None = None) \
        -> DPOResult:
    """Train. `model` / `processor` (in-memory policy) and `rows` (TRL DPO dicts) override `config.model` /
    `config.data` for callers that hold them already (the sandbox loop)."""
    from transformers.trainer_utils import get_last_checkpoint

    from ..config import dump_config
    from .sft import default_bf16, jsonl_logger, load_model, resume_path

    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    dump_config(config, out / "dpo_config.yaml")
    bf16 = default_bf16(config.bf16)

    # 1. data
    rows = rows if rows is not None else read_rows(config.data, config.seed, config.max_samples)
    dataset = build_dataset(rows, config.image_policy(), config.video_policy())

    # 2. model and processor
    if model is None:
        model, processor, _ = load_model(config, bf16)  # type: ignore[arg-type]
    elif processor is None:
        raise ConfigError("run_dpo: pass the processor with an in-memory model")

    # 3-5. what trains, the reference, the trainer
    trainer = build_trainer(config, model, processor, dataset, bf16=bf16, callbacks=[jsonl_logger(out / "log.jsonl")])
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)

    # 6. train (resuming) and save
    resume = resume_path(config, get_last_checkpoint)
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume)
    runtime = time.perf_counter() - start
    save_policy(trainer, processor, out, config)
    logs = [h for h in trainer.state.log_history if "loss" in h]
    return DPOResult(output_dir=out, global_step=trainer.state.global_step, train_loss=result.training_loss,
                     last_metrics=logs[-1] if logs else {}, runtime_s=runtime, num_pairs=len(dataset),
                     trainable_params=trainable, resumed_from=resume, log_path=out / "log.jsonl")


def _losses(config: DPORecipeConfig) -> dict:
    """TRL's loss_type / loss_weights for the preference loss, plus the chosen answers' NLL when `sft_weight` > 0."""
    if config.sft_weight <= 0:
        return {"loss_type": [config.loss_type]}
    return {"loss_type": [config.loss_type, "sft"], "loss_weights": [1.0, config.sft_weight]}


def build_trainer(config: DPORecipeConfig, model: Any, processor: Any, dataset: Any, *, bf16: bool = False,
                  callbacks: list | None = None):
    """A TRL `DPOTrainer` with the reference handled as the module docstring says."""
    import torch
    from trl import DPOConfig, DPOTrainer

    from .sft import lora_config, set_trainable

    set_trainable(model, config)  # type: ignore[arg-type]
    peft_config = lora_config(model, config) if config.use_lora else None  # type: ignore[arg-type]
    ref_model = None
    if not config.use_lora:
        ref_model = copy.deepcopy(model).eval()
        ref_model.requires_grad_(False)
    args = DPOConfig(
        output_dir=str(config.output_dir), beta=config.beta, **_losses(config),
        per_device_train_batch_size=config.batch_size, gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.lr, lr_scheduler_type=config.lr_scheduler, warmup_steps=config.warmup,
        num_train_epochs=config.epochs, max_steps=config.max_steps or -1, weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm, bf16=bf16, fp16=False,
        activation_checkpointing=config.gradient_checkpointing,
        logging_steps=config.logging_steps, save_strategy="steps", save_steps=config.save_steps,
        save_total_limit=config.save_total_limit, seed=config.seed, data_seed=config.seed,
        report_to=config.report_to, remove_unused_columns=False, max_length=None,
        dataloader_num_workers=config.num_workers, deepspeed=config.deepspeed, disable_tqdm=not config.progress,
        precompute_ref_log_probs=False, dataloader_pin_memory=torch.cuda.is_available(),  # pinned: GPUs only
    )
    return DPOTrainer(model=model, ref_model=ref_model, args=args, train_dataset=dataset, processing_class=processor,
                      data_collator=PreferenceCollator(processor, max_length=config.max_length),
                      peft_config=peft_config, callbacks=callbacks or [])


def save_policy(trainer, processor, out: Path, config: DPORecipeConfig) -> None:
    """The aligned policy and its processor into `out` (LoRA: adapters, loadable on top of the base)."""
    trainer.save_model(str(out))
    if trainer.is_world_process_zero():
        processor.save_pretrained(str(out))


# ---------------------------------------------------------------- data


def read_rows(paths: Sequence[str], seed: int = 0, max_samples: int | None = None) -> list[dict]:
    """TRL DPO rows from JSONL files; relative media paths resolve against each file's folder."""
    import random

    if not paths:
        raise ConfigError("no training data: set data to one or more DPO JSONL files (unireward construct's "
                          "dpo_trl.jsonl)")
    rows: list[dict] = []
    from ..data.schema import read_jsonl

    for p in paths:
        path = Path(p)
        for i, row in read_jsonl(path):
            missing = [k for k in ("prompt", "chosen", "rejected") if k not in row]
            if missing:
                raise DataError(f"{path}:{i}: missing field(s) {missing}; a DPO row needs prompt, chosen, rejected")
            for key in ("images", "videos"):
                row[key] = [m if Path(m).is_absolute() else str(path.parent / m) for m in row.get(key) or []]
                for m in row[key]:
                    if not Path(m).exists():
                        raise DataError(f"{path}:{i}: media file {m} is missing")
            rows.append(row)
    if not rows:
        raise DataError(f"{list(paths)}: no preference pairs")
    if max_samples is not None and len(rows) > max_samples:
        rows = random.Random(seed).sample(rows, max_samples)
    return rows


def build_dataset(rows: list[dict], image_policy, video_policy):
    """A `datasets.Dataset` whose items are {prompt, chosen, rejected, images: [PIL], videos: [Video]}, media
    decoded lazily (the "images" column also tells TRL this is vision data, so it leaves preprocessing to us)."""
    from datasets import Dataset

    from ..media import load_image, load_video

    table = Dataset.from_dict({"record": [json.dumps(r) for r in rows]})

    def transform(batch: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {"prompt": [], "chosen": [], "rejected": [], "images": [], "videos": []}
        for record in batch["record"]:
            row = json.loads(record)
            for k in ("prompt", "chosen", "rejected"):
                out[k].append(row[k])
            out["images"].append([load_image(p, image_policy) for p in row.get("images") or []])
            out["videos"].append([load_video(p, video_policy) for p in row.get("videos") or []])
        return out

    return table.with_transform(transform)


def _text_of(messages: Any) -> str:
    if isinstance(messages, str):
        return messages
    (message,) = messages
    content = message["content"]
    return content if isinstance(content, str) else "".join(p["text"] for p in content if p.get("type") == "text")


class PreferenceCollator:
    """TRL-layout DPO batches for images and videos: rows [chosen_1..chosen_B, rejected_1..rejected_B], each the
    encoded prompt plus the answer and end-of-turn, right-padded, with `completion_mask` on the answer tokens."""

    def __init__(self, processor: Any, max_length: int | None = None):
        from .collate import JudgeCollator

        self.inner = JudgeCollator(processor, max_length=max_length)

    def __call__(self, examples: list[dict]) -> dict:
        from .collate import IGNORE_INDEX

        def as_sft(ex: dict, side: str) -> dict:
            return {"prompt": ex["prompt"], "completion": _text_of(ex[side]), "images": ex.get("images") or [],
                    "videos": ex.get("videos") or [], "id": ex.get("id", "?")}

        batch = self.inner([as_sft(ex, "chosen") for ex in examples] + [as_sft(ex, "rejected") for ex in examples])
        labels = batch.pop("labels")
        batch["completion_mask"] = (labels != IGNORE_INDEX).long()
        return batch


__all__ = ["DPORecipeConfig", "DPOResult", "PreferenceCollator", "build_dataset", "build_trainer", "read_rows",
           "run_dpo", "run_dpo_from_config"]
