"""GRPO for judges that reason (the Think recipe's last step), on TRL's `GRPOTrainer`.

    unireward train grpo-judge --config grpo_judge/sandbox max_steps=20
    accelerate launch --config_file src/unireward/configs/accelerate/zero3.yaml -m unireward train grpo-judge \\
        --config grpo_judge/qwen2_5_vl_7b

`run_grpo_judge(config)`: read labelled unified samples (the SFT recipe's data entries; typically a rejection-
sampling hard set, `unireward train reject`, plus a replay share), present each exactly as the judge sees it (the
task's template of `family` / `variant` through the judge's own message builder, `collate.sample_chat` +
`hf._messages`; the images under the judge's ImagePolicy; TRL applies the same chat template to the same
message), sample `num_generations` completions per prompt and reward them with

- `accuracy`: 1 when the completion's verdict, read by the task's own parser, equals the label (pair: the winner,
  ties where the format allows them; point: the score within `point_tolerance`), else 0; unparsed: 0;
- `format`: 1 when the completion reasons and then answers in the format: Think (`family: think`)
  `<think>...</think><answer>...</answer>` and nothing else; other families: non-empty reasoning before the answer
  prefix (the sandbox judge's checklist, then "Final Judgment: ...") and a strict parse (the verdict is the last
  line); else 0,

weighted by `accuracy_weight` / `format_weight`. Training is LoRA or full (the SFT recipe's fields and helpers:
`use_lora`, `freeze_*`, `lora_*`), resumes from the latest checkpoint in `output_dir` (TRL checkpointing), and
saves model + processor to `output_dir` (with `unireward.json`: judged by generating), so `RewardModel.load`
judges with it. Logged steps (loss, rewards per function, KL) go to `<output_dir>/log.jsonl`.

Videos: TRL 1.16's `GRPOTrainer` passes images, not videos, to the model in its generation and scoring passes, so
tasks whose prompt shows a native video are refused with a ConfigError (train them with rejection sampling + SFT,
which handles videos); a family that sends each video as frames (Think qwen3, 2.0: `Task.video_frames`) shows
them as images, exactly as the judge does, and trains here.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import ConfigError
from .sft import SFTRecipeConfig

_THINK = re.compile(r"\s*<think>\s*\S.*?</think>\s*<answer>\s*\S.*?</answer>\s*", re.DOTALL)


@dataclass
class GRPOJudgeConfig(SFTRecipeConfig):
    """Settings of a judge GRPO run: the SFT recipe's model / data / LoRA / bookkeeping fields plus GRPO's own.
    Defaults are the authors' (lr 1e-6, 8 generations, beta 0.04)."""

    model: str = "src/unireward/sandbox/judge"
    lr: float = 1e-6
    lr_scheduler: str = "constant"
    warmup: float = 0.0
    epochs: float = 1.0
    batch_size: int = 8  # completions per device per micro-batch (a multiple of num_generations / devices)
    output_dir: str = "outputs/grpo-judge"
    # ---- what the judge sees
    family: str | None = None  # prompt family (templates + parser): unireward, think, 1.0, 2.0, ...; None: the
    #                      model's own (registry entry or unireward.json; else unireward)
    variant: str | None = None  # the family's prompt variant (e.g. think: qwen2.5); None: the model's / default
    tasks: list[str] = field(default_factory=list)  # train only on samples of these tasks; empty: all
    # ---- GRPO
    num_generations: int = 8  # completions per prompt (the group)
    temperature: float = 1.0  # sampling temperature of the completions
    top_p: float = 1.0
    max_completion_length: int = 256  # tokens per completion
    beta: float = 0.04  # KL coefficient to the reference (the starting judge)
    num_iterations: int = 1  # optimisation passes per generation batch (mu)
    steps_per_generation: int | None = None  # None: grad_accum
    loss_type: str = "grpo"  # TRL loss: grpo, dapo, dr_grpo, bnpo, ...
    scale_rewards: str = "group"  # advantage scaling: group, batch or none
    accuracy_weight: float = 1.0  # weight of the verdict-accuracy reward
    format_weight: float = 1.0  # weight of the format reward
    point_tolerance: float = 0.0  # a point verdict is right when |score - label| <= this
    use_vllm: bool = False  # generate with vLLM (TRL: colocate on the training GPUs, or a `trl vllm-serve` server)
    vllm_mode: str = "colocate"  # colocate or server
    vllm_gpu_memory_utilization: float = 0.3  # colocate: vLLM's share of each GPU
    log_completions: bool = False  # print a table of sampled completions at each logging step

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("vision_lr", "merger_lr", "max_length"):
            if getattr(self, name) is not None:
                raise ConfigError(f"{name} is an SFT setting that grpo-judge does not use; leave it null")
        if self.num_generations < 2:
            raise ConfigError(f"num_generations must be at least 2 (advantages are relative to the group), got "
                              f"{self.num_generations}")
        if self.vllm_mode not in ("colocate", "server"):
            raise ConfigError(f"vllm_mode must be colocate or server, got {self.vllm_mode!r}")


CONFIG_CLASS = GRPOJudgeConfig


@dataclass
class GRPOJudgeResult:
    output_dir: Path
    global_step: int
    train_loss: float | None
    rewards: dict[str, float]  # the last logged mean of each reward function (and the total)
    runtime_s: float
    num_samples: int
    trainable_params: int
    resumed_from: str | None
    log_path: Path


# ---------------------------------------------------------------- rewards


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or a conversational [{"role": "assistant", "content": ...}]."""
    if isinstance(completion, str):
        return completion
    parts = []
    for message in completion:
        content = message.get("content", "")
        parts.append(content if isinstance(content, str) else "".join(
            p.get("text", "") for p in content if isinstance(p, dict)))
    return "".join(parts)


def decode_label(label: Any) -> Any:
    """Labels travel as JSON strings (a column cannot mix 1, 2 and "tie"): back to 1, 2, "tie" or a number."""
    return json.loads(label) if isinstance(label, str) else label


def accuracy_reward(task, text: str, label: Any, point_tolerance: float = 0.0) -> float:
    """1.0 when the task's parser reads a verdict from `text` equal to `label`, else 0.0 (unparsed: 0.0)."""
    from .rejection import verdict_matches

    return 1.0 if verdict_matches(task, task.answer.parse(text), label, point_tolerance) else 0.0


def format_reward(task, text: str) -> float:
    """1.0 when `text` reasons first and then answers in the format (see the module docstring), else 0.0."""
    if task.family == "think":
        return 1.0 if _THINK.fullmatch(text) else 0.0
    verdict = task.answer.parse(text, strict=True)
    if (verdict.winner if task.is_pair else verdict.score) is None:
        return 0.0
    prefix = task.answer.prefix
    if prefix:
        if prefix not in text or not text.rpartition(prefix)[0].strip():
            return 0.0
    return 1.0


def judge_reward_funcs(family: str = "unireward", variant: str | None = None,
                       point_tolerance: float = 0.0) -> list[Callable]:
    """TRL reward functions [accuracy, format] over the dataset's `task` and `label` columns."""
    from ..tasks import get_task

    def tasks(names):
        return [get_task(n, family=family, variant=variant) for n in names]

    def accuracy(completions, task, label, **kwargs) -> list[float]:
        return [accuracy_reward(t, completion_text(c), decode_label(y), point_tolerance)
                for t, c, y in zip(tasks(task), completions, label)]

    def format(completions, task, **kwargs) -> list[float]:  # noqa: A001 - TRL logs it as rewards/format
        return [format_reward(t, completion_text(c)) for t, c in zip(tasks(task), completions)]

    return [accuracy, format]


# ---------------------------------------------------------------- data


def build_grpo_dataset(samples: list[tuple[Any, str]], config: GRPOJudgeConfig):
    """A `datasets.Dataset` of {id, prompt (the judge's user message), images, task, label (JSON)}, media loaded
    lazily per example under the judge's policies. Video tasks are refused (see the module docstring)."""
    from datasets import Dataset

    from ..data.schema import Sample
    from .collate import prompt_messages, sample_chat

    if config.tasks:
        samples = [(s, r) for s, r in samples if s.task in config.tasks]
        if not samples:
            raise ConfigError(f"no training samples of tasks {config.tasks}")
    spec = grpo_spec(config)
    videos = sorted({s.task for s, _ in samples if _native_video(spec.task(s.task))})
    if videos:
        raise ConfigError(f"grpo-judge: tasks {videos} show videos, which TRL's GRPOTrainer does not pass to the "
                          "model; leave them out (tasks=[...]) and train them with `unireward train reject` + SFT "
                          "(families that send videos as frames, e.g. think qwen3, are trained here)")
    table = Dataset.from_dict({"id": [s.id for s, _ in samples], "record": [s.to_json() for s, _ in samples],
                               "root": [root for _, root in samples]})

    def transform(batch: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {"id": [], "prompt": [], "images": [], "task": [], "label": []}
        for sid, record, root in zip(batch["id"], batch["record"], batch["root"]):
            sample = Sample.from_dict(json.loads(record), where=f"sample {sid}")
            chat = sample_chat(sample, root, spec)
            out["id"].append(sid)
            out["prompt"].append(prompt_messages(chat))
            out["images"].append(chat.images)
            out["task"].append(sample.task)
            out["label"].append(json.dumps(sample.label))
        return out

    return table.with_transform(transform)


def grpo_spec(config: GRPOJudgeConfig):
    """The judge spec the run renders, parses and saves with: the model's own, then the run's family, variant,
    chat template options and media policies (`collate.training_spec`)."""
    from .collate import training_spec

    return training_spec(config.model, family=config.family, variant=config.variant,
                         chat_template_kwargs=config.chat_template_kwargs, image_policy=config.image_policy(),
                         video_policy=config.video_policy())


def _native_video(task) -> bool:
    """Whether the judge sees this task's videos as video parts (not as frames sent as images)."""
    return task.modality == "video" and not task.video_frames


# ---------------------------------------------------------------- the recipe


def run_grpo_judge_from_config(path: str | Path | None, overrides: Sequence[str] = ()) -> GRPOJudgeResult:
    from ..config import load_config

    return run_grpo_judge(load_config(GRPOJudgeConfig, path, overrides))


def run_grpo_judge(config: GRPOJudgeConfig) -> GRPOJudgeResult:
    from .sft import torch_threads

    with torch_threads(config.num_threads):
        return _run(config)


def _run(config: GRPOJudgeConfig) -> GRPOJudgeResult:
    import torch
    from transformers.trainer_utils import get_last_checkpoint
    from trl import GRPOConfig, GRPOTrainer

    from ..models.registry import write_sidecar
    from .sft import jsonl_logger, load_model, lora_config, prepare_run, read_mixture, resume_path, set_trainable

    config, out, bf16 = prepare_run(config, "grpo_judge_config.yaml")
    spec = grpo_spec(config)

    samples = read_mixture(config.data, seed=config.seed, max_samples=config.max_samples)
    dataset = build_grpo_dataset(samples, config)
    model, processor, _ = load_model(config, bf16)
    set_trainable(model, config)
    peft_config = lora_config(model, config) if config.use_lora else None

    args = GRPOConfig(
        output_dir=str(out), learning_rate=config.lr, lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup, num_train_epochs=config.epochs, max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.batch_size, gradient_accumulation_steps=config.grad_accum,
        steps_per_generation=config.steps_per_generation, num_generations=config.num_generations,
        max_completion_length=config.max_completion_length, temperature=config.temperature, top_p=config.top_p,
        beta=config.beta, num_iterations=config.num_iterations, loss_type=config.loss_type,
        scale_rewards=config.scale_rewards, reward_weights=[config.accuracy_weight, config.format_weight],
        weight_decay=config.weight_decay, max_grad_norm=config.max_grad_norm, optim=config.optim, bf16=bf16,
        fp16=False, activation_checkpointing=config.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if config.gradient_checkpointing else None,
        use_vllm=config.use_vllm, vllm_mode=config.vllm_mode,
        vllm_gpu_memory_utilization=config.vllm_gpu_memory_utilization,
        chat_template_kwargs=dict(spec.chat_template_kwargs) or None,
        logging_steps=config.logging_steps, save_strategy="steps", save_steps=config.save_steps,
        save_total_limit=config.save_total_limit, seed=config.seed, data_seed=config.seed,
        report_to=config.report_to, remove_unused_columns=False, dataloader_num_workers=config.num_workers,
        deepspeed=config.deepspeed, disable_tqdm=not config.progress, log_completions=config.log_completions,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    trainer = GRPOTrainer(model=model, reward_funcs=judge_reward_funcs(spec.family, spec.variant,
                                                                        config.point_tolerance),
                          args=args, train_dataset=dataset, processing_class=processor, peft_config=peft_config,
                          callbacks=[jsonl_logger(out / "log.jsonl")])
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    resume = resume_path(config, get_last_checkpoint)
    start = time.perf_counter()
    with warnings.catch_warnings():
        # TRL 1.16 reads `model.is_gradient_checkpointing` around every generation, a property transformers 5
        # deprecated; nothing on our side uses it
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        result = trainer.train(resume_from_checkpoint=resume)
    runtime = time.perf_counter() - start
    if config.use_lora and config.merge_lora:
        trainer.save_model(str(out / "adapter"))
        if trainer.is_world_process_zero():
            trainer.accelerator.unwrap_model(trainer.model).merge_and_unload().save_pretrained(str(out))
    else:
        trainer.save_model(str(out))
    if trainer.is_world_process_zero():
        processor.save_pretrained(str(out))
        write_sidecar(out, spec.family, spec.variant, method="generate", max_new_tokens=config.max_completion_length,
                      chat_template_kwargs=spec.chat_template_kwargs or None)
    return GRPOJudgeResult(output_dir=out, global_step=trainer.state.global_step, train_loss=result.training_loss,
                           rewards=last_rewards(out / "log.jsonl"), runtime_s=round(runtime, 1),
                           num_samples=len(dataset), trainable_params=trainable, resumed_from=resume,
                           log_path=out / "log.jsonl")


def last_rewards(path: Path) -> dict[str, float]:
    """The last logged value of each reward metric ("reward", "rewards/accuracy/mean", ...) in log.jsonl."""
    found: dict[str, float] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            found.update({k: float(v) for k, v in rec.items() if k.startswith("reward") and v is not None})
    return found
