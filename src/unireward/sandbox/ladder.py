"""The sandbox ladder: a tiny Qwen2-VL base model trained from scratch, then a judge, on a laptop CPU.

    python -m unireward.sandbox.ladder --config sandbox/ladder [key=value ...]
    python -m unireward.sandbox.ladder --config sandbox/ladder_long --ship   # refresh the shipped judge
    python -c "from unireward.sandbox.ladder import run_from_config as r; r('sandbox/smoke')"

`train_ladder(config)` reads top to bottom: build the tokenizer and the random model ONCE (`<out>/base`), then
run the config's stages in order. A stage is a plain function of (model, processor, stage config): a
"caption" stage teaches the base model to read (media -> caption, `ladder_data.captioning_examples`), a "judge"
stage fine-tunes on the world's unified `Sample`s of the eight tasks (`data.build_samples`, optionally with
checklist rationales), with a share of captioning replay, and a "text" stage trains text-only copy and
checklist matching of readings (`ladder_data.text_*_examples`). Each stage saves `<out>/<i>-<name>/` (model +
processor, loadable by `RewardModel.load`) and a `stage.json` with its config key, loss curve and timing; a
second run with the same config skips every finished stage whose key (its config and all earlier stages')
matches. `<out>/ladder.json` gathers timings, curves and the final evaluation. `init` starts from a trained judge
(e.g. the shipped one) instead of a new base model, and `eval_before` evaluates it first on the same held-out
draw as the final evaluation (ladder.json "eval_before"). A stage may also train the two edit tasks
(`image-edit/pair`, `image-edit/point`: name them in its `tasks`); the evaluations then report them too
(sandbox/edit fine-tunes the shipped judge on edits with a replay share of the eight tasks).

Training is a small in-process loop (AdamW, warm-up + cosine, per-part learning rates: language / vision /
merger, a learning rate of 0 freezes the part) over batches encoded by the SFT recipe's own `JudgeCollator`, so
training and judging see identical tokens and pixels. Examples are drawn fresh for every step from the world
(no epochs): train split only, so held-out combinations never appear in training. `workers` > 0
draws and encodes batches in that many data-loader processes (for a machine with spare cores).

`evaluate_judge(model_dir, ...)` judges held-out samples with `RewardModel` (method "generate" for checklist
judges) and reports pairwise accuracy per task in both orders (ties are answers: a tie label must be judged a
tie) and pointwise Spearman / exact match. With
`pair_from_points=True` it ALSO reports a stop-gap pair decision derived from two pointwise scores, in separate
keys ("<task>/from-points"): never mixed with the judge's own pairwise verdicts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .data import ALL_TASKS, EDIT_TASKS, TASKS

TEXT_TASKS = ("text-copy", "text-match-pair", "text-match-point")
PAIR_TASKS = tuple(t for t in TASKS if t.endswith("/pair"))
POINT_TASKS = tuple(t for t in TASKS if t.endswith("/point"))


@dataclass
class StageConfig:
    """One rung of the ladder."""

    name: str  # folder name suffix and log label, e.g. "caption", "judge-point"
    kind: str = "caption"  # "caption" (media -> caption), "judge" (unified samples of `tasks`) or "text"
    #                        (text-only `tasks`: text-copy, text-match-pair, text-match-point)
    examples: int = 1000  # training examples in this stage (steps = examples / batch_size)
    lr: float = 1e-3  # peak learning rate of the language model (0 freezes it)
    vision_lr: float | None = None  # vision tower (None: lr; 0 freezes)
    merger_lr: float | None = None  # merger (None: vision_lr; 0 freezes)
    warmup: int = 20  # warm-up steps
    tasks: dict[str, float] = field(default_factory=dict)  # judge / text: task -> sampling weight (judge, empty:
    #                        all eight; the edit tasks only when named; text, empty: the three text tasks)
    rationale: bool = True  # judge: checklist rationale before the verdict
    caption_share: float = 0.0  # judge: fraction of each batch that is captioning replay
    video_share: float = 0.5  # caption: fraction of videos
    physics: bool = True  # caption: videos may teleport / flicker and their captions say so


@dataclass
class LadderConfig:
    """The whole ladder: model size, world rendering, stages, evaluation."""

    out_dir: str = "runs/ladder"
    seed: int = 0
    init: str | None = None  # start from this trained judge folder (e.g. src/unireward/sandbox/judge), not a
    #                          new base model (then family and size are the judge's own)
    eval_before: bool = False  # evaluate the starting model first, on the final evaluation's draw
    family: str = "qwen2-vl"
    size: dict[str, int] = field(default_factory=lambda: dict(hidden=128, layers=4, heads=4, kv_heads=2,
                                                              intermediate=256, vision_hidden=64))
    image_size: int = 56  # rendered side in pixels (56 with patch 14: 4 visual tokens per image)
    video_frames: int = 8  # frames per video (>= 6 so physics violations show; 2 frames per temporal patch)
    generated_share: float = 0.3  # image-gen samples (and image captions) drawn the way the sandbox generator
    #                               draws (16 px, warped outlines), labelled by what the oracle reads in them
    batch_size: int = 32
    threads: int | None = None  # torch threads (None: torch's default)
    workers: int = 0  # data-loader processes drawing and encoding examples (0: in the training process)
    device: str = "auto"  # "auto" (cuda when available), "cpu" or "cuda"
    stages: list[StageConfig] = field(default_factory=list)
    eval_every: int = 0  # steps between quick held-out evaluations within judge stages (0: only at the end)
    eval_n: int = 48  # held-out samples per task in quick evaluations
    final_eval_n: int = 200  # held-out samples per task in the final evaluation (0: skip)
    pair_from_points: bool = True  # also report the stop-gap pair-from-two-points decision (separate keys)
    progress: bool = True


# ---------------------------------------------------------------- the recipe


def run_from_config(path: str | Path | None, overrides: Sequence[str] = ()) -> dict:
    from ..config import load_config

    return train_ladder(load_config(LadderConfig, path, overrides))


def train_ladder(config: LadderConfig) -> dict:
    """Build (once) and train every stage (cached); returns and writes `<out>/ladder.json`."""
    import torch

    if config.threads:
        torch.set_num_threads(config.threads)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"config": dataclasses.asdict(config), "stages": []}
    t0 = time.perf_counter()
    prev = Path(config.init) if config.init else build_base(config, out / "base")
    if config.init and not (prev / "config.json").is_file():
        raise ValueError(f"init: no model in {prev} (expected a judge folder with config.json)")
    key = _key({"base": _base_part(config)})
    if config.eval_before and config.final_eval_n:
        report["eval_before"] = _final_eval(config, prev, out / "eval_before.json")
    for i, stage in enumerate(config.stages):
        key = _key({"prev": key, "stage": _changed(stage), "world": _world_part(config)})
        sdir = out / f"{i + 1}-{stage.name}"
        info = _read_json(sdir / "stage.json")
        if info and info.get("key") == key:
            info["cached"] = True
            _say(config, f"stage {i + 1} {stage.name}: cached ({sdir})")
        else:
            info = run_stage(config, stage, prev, sdir, seed=config.seed * 1000 + i + 1)
            info["key"] = key
            (sdir / "stage.json").write_text(json.dumps(info, indent=1))
            info["cached"] = False
        report["stages"].append(info)
        prev = sdir
    report["train_time_s"] = sum(s.get("time_s", 0.0) for s in report["stages"])
    report["final_model"] = str(prev)
    if config.final_eval_n and config.stages and config.stages[-1].kind == "judge":
        report["eval"] = _final_eval(config, prev, prev / "eval.json")
    report["wall_s"] = time.perf_counter() - t0
    (out / "ladder.json").write_text(json.dumps(report, indent=1))
    return report


def eval_tasks(config: LadderConfig) -> tuple[str, ...]:
    """The tasks evaluations report: the eight, and the edit tasks when a stage trains them."""
    named = {t for st in config.stages for t in st.tasks}
    return TASKS + tuple(t for t in EDIT_TASKS if t in named)


def _final_eval(config: LadderConfig, model_dir: Path, cache: Path) -> dict:
    """The final evaluation of `model_dir` (cached in `cache` while its sample count and tasks are the same)."""
    tasks = eval_tasks(config)
    ev = _read_json(cache)
    if not ev or ev.get("n") != config.final_eval_n or any(t not in ev for t in tasks):
        ev = evaluate_judge(model_dir, n=config.final_eval_n, seed=config.seed, image_size=config.image_size,
                            video_frames=config.video_frames, generated_share=config.generated_share,
                            tasks=tasks, pair_from_points=config.pair_from_points, progress=config.progress)
        cache.write_text(json.dumps(ev, indent=1))
    return ev


def build_base(config: LadderConfig, path: Path) -> Path:
    """Tokenizer (trained once on the world's texts) + random model; reused if already there."""
    from ..models.tiny import TinySize, build_tiny_model, build_tokenizer

    if (path / "config.json").is_file():
        return path
    side = config.image_size
    tok = build_tokenizer(world_corpus(), vocab_size=config.size.get("vocab_size", 1024))
    build_tiny_model(path, config.family, size=TinySize(**config.size), seed=config.seed, tokenizer=tok,
                     min_pixels=side * side, max_pixels=side * side)
    (path / "stage.json").write_text(json.dumps({"key": _key({"base": _base_part(config)})}))
    return path


def world_corpus(n: int = 60) -> list[str]:
    """Prompts and targets of every task (with checklists) and captions: what the tokenizer should know."""
    from . import ladder_data
    from .data import build_samples

    texts = []
    for task in TASKS:
        samples, _ = build_samples(task, n, "train", seed=12345, image_size=8, video_frames=6, rationale=True)
        for s in samples:
            texts += [s.prompt, s.target, *s.answers]
    texts += [e["completion"] for e in ladder_data.captioning_examples(n, seed=1, image_size=8)]
    texts += [e["completion"] for e in ladder_data.captioning_examples(n, seed=1, image_size=8, video=True,
                                                                        video_frames=6, physics=True)]
    return texts


def run_stage(config: LadderConfig, stage: StageConfig, prev: Path, out: Path, seed: int) -> dict:
    """Train one stage from the model in `prev`; save to `out`; return its record (curve, timing)."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if stage.kind not in ("caption", "judge", "text"):
        raise ValueError(f"stage {stage.name}: kind must be caption, judge or text, got {stage.kind!r}")
    torch.manual_seed(seed)
    processor = AutoProcessor.from_pretrained(prev)
    device = _device(config)
    model = AutoModelForImageTextToText.from_pretrained(prev, dtype=torch.float32).to(device)
    model.train()
    opt, groups = _optimizer(model, stage)
    steps = max(1, math.ceil(stage.examples / config.batch_size))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, steps, stage.warmup))
    batches = iter(batch_stream(config, stage, seed, processor))
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    curve, evals, t0, losses = [], [], time.perf_counter(), []
    bar = _bar(config, steps, f"{out.name}")
    for step in range(1, steps + 1):
        batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in next(batches).items()}
        loss = completion_loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % 10 == 0 or step == steps:
            curve.append({"step": step, "examples": step * config.batch_size, "loss": sum(losses) / len(losses),
                          "time_s": round(time.perf_counter() - t0, 1)})
            if bar is not None:
                bar.set_postfix(loss=f"{curve[-1]['loss']:.3f}")
            losses = []
        if bar is not None:
            bar.update(1)
        if stage.kind == "judge" and config.eval_every and step % config.eval_every == 0 and step < steps:
            evals.append(_quick_eval(config, model, processor, step))
    if bar is not None:
        bar.close()
    train_time = time.perf_counter() - t0
    moved = {n: float((p.detach() - before[n]).abs().max()) for n, p in model.named_parameters() if n in before}
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    if stage.kind == "judge":  # how RewardModel.load should run it: a checklist comes before the verdict
        from ..models.registry import write_sidecar

        write_sidecar(out, method="auto", reasoning=bool(stage.rationale), max_new_tokens=128)
    info = {"name": stage.name, "kind": stage.kind, "steps": steps, "examples": steps * config.batch_size,
            "time_s": round(train_time, 1), "curve": curve, "trainable": groups,
            "params_moved": sum(v > 0 for v in moved.values()), "params_trainable": len(moved)}
    if stage.kind == "caption":
        info["caption_eval"] = caption_accuracy(model, processor, config, n=64, seed=seed)
    elif stage.kind == "text":
        info["text_eval"] = text_accuracy(model, processor, n=96, seed=seed)
    elif config.eval_every:
        evals.append(_quick_eval(config, model, processor, steps))
    if evals:
        info["evals"] = evals
    info["wall_s"] = round(time.perf_counter() - t0, 1)
    _say(config, f"stage {out.name}: {steps} steps in {train_time:.0f}s, loss {curve[-1]['loss']:.4f}"
         + (f", caption {info['caption_eval']}" if "caption_eval" in info else "")
         + (f", text {info['text_eval']}" if "text_eval" in info else "")
         + (f", eval {_short(evals[-1])}" if evals else ""))
    return info


def _device(config: LadderConfig) -> str:
    import torch

    if config.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return config.device


def batch_stream(config: LadderConfig, stage: StageConfig, seed: int, processor):
    """Endless encoded batches (`JudgeCollator` output); `config.workers` processes draw them in parallel."""
    import torch

    from ..train.collate import JudgeCollator

    class Batches(torch.utils.data.IterableDataset):
        def __iter__(self):
            info = torch.utils.data.get_worker_info()
            stream = ExampleStream(config, stage, seed * 100 + (info.id if info else 0))
            collator = JudgeCollator(processor)
            while True:
                yield collator(stream.batch(config.batch_size))

    if not config.workers:
        return Batches()
    return torch.utils.data.DataLoader(Batches(), batch_size=None, num_workers=config.workers, prefetch_factor=4,
                                       worker_init_fn=_one_thread)


def _one_thread(_worker: int) -> None:
    import torch

    torch.set_num_threads(1)


def completion_loss(model, batch: dict):
    """Mean cross-entropy on completion tokens only; the LM head runs on those positions alone."""
    import torch.nn.functional as F

    labels = batch.pop("labels")
    hidden = model.model(**batch).last_hidden_state
    target = labels[:, 1:]
    keep = target != -100
    logits = model.lm_head(hidden[:, :-1][keep])
    return F.cross_entropy(logits.float(), target[keep])


def _optimizer(model, stage: StageConfig):
    import torch

    from ..train.sft import part_of

    lrs = {"language": stage.lr, "vision": stage.lr if stage.vision_lr is None else stage.vision_lr}
    lrs["merger"] = lrs["vision"] if stage.merger_lr is None else stage.merger_lr
    params: dict[str, list] = {k: [] for k in lrs}
    for name, p in model.named_parameters():
        part = part_of(name)
        p.requires_grad_(lrs[part] > 0)
        if lrs[part] > 0:
            params[part].append(p)
    groups = [{"params": ps, "lr": lrs[k], "name": k} for k, ps in params.items() if ps]
    if not groups:
        raise ValueError(f"stage {stage.name}: every learning rate is 0, nothing would train")
    counts = {k: sum(p.numel() for p in ps) for k, ps in params.items()}
    return torch.optim.AdamW(groups, weight_decay=0.0, betas=(0.9, 0.98)), counts


def _lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


# ---------------------------------------------------------------- examples


class ExampleStream:
    """Fresh training examples (collator dicts) for a stage, drawn in chunks from the world's train split."""

    def __init__(self, config: LadderConfig, stage: StageConfig, seed: int, chunk: int = 256):
        import numpy as np

        self.config, self.stage, self.seed, self.chunk = config, stage, seed, chunk
        self.rng = np.random.default_rng(seed)
        tasks = stage.tasks or {t: 1.0 for t in (TEXT_TASKS if stage.kind == "text" else TASKS)}
        self.tasks, w = list(tasks), np.array(list(tasks.values()), float)
        self.weights = w / w.sum()
        self.pools: dict[str, list] = {}
        self.calls = 0

    def batch(self, n: int) -> list[dict]:
        st = self.stage
        if st.kind == "caption":
            return [self._next("caption") for _ in range(n)]
        n_cap = int(round(n * st.caption_share))
        picks = self.rng.choice(len(self.tasks), size=n - n_cap, p=self.weights)
        return [self._next("caption") for _ in range(n_cap)] + [self._next(self.tasks[k]) for k in picks]

    def _next(self, kind: str) -> dict:
        pool = self.pools.get(kind)
        if not pool:
            self.calls += 1
            pool = self.pools[kind] = self._fill(kind, int(self.rng.integers(2**31)))
        return pool.pop()

    def _fill(self, kind: str, seed: int) -> list[dict]:
        c = self.config
        if kind == "caption":
            from .ladder_data import captioning_examples

            n_vid = int(round(self.chunk * self.stage.video_share))
            ex = captioning_examples(self.chunk - n_vid, seed=seed, image_size=c.image_size,
                                     generated_share=c.generated_share)
            ex += captioning_examples(n_vid, seed=seed, image_size=c.image_size, video=True,
                                      video_frames=c.video_frames, physics=self.stage.physics)
            out = [caption_example(e) for e in ex]
        elif kind.startswith("text-"):
            from .ladder_data import text_copy_examples, text_match_examples

            ex = (text_copy_examples(self.chunk, seed=seed) if kind == "text-copy" else
                  text_match_examples(self.chunk, seed=seed, kind=kind.rsplit("-", 1)[1],
                                      rationale=self.stage.rationale))
            out = [text_example(e) for e in ex]
        else:
            from .data import build_samples

            samples, jobs = build_samples(kind, self.chunk, "train", seed=seed, image_size=c.image_size,
                                          generated_share=c.generated_share,
                                          video_frames=c.video_frames, rationale=self.stage.rationale)
            arrays = {p: a for p, a, _ in jobs}
            out = [sample_example(s, arrays) for s in samples]
        order = self.rng.permutation(len(out))
        return [out[i] for i in order]


def _media(array, video: bool):
    from PIL import Image

    from ..media import Video, VideoPolicy

    if not video:
        return Image.fromarray(array)
    frames = [Image.fromarray(f) for f in array]
    return Video(frames=frames, fps=8.0, indices=list(range(len(frames))), source="array",
                 policy=VideoPolicy(num_frames=len(frames)))


def caption_example(e: dict) -> dict:
    """A ladder_data captioning dict as a collator example: the media, then the question."""
    from ..backends.base import ChatInput
    from ..train.collate import prompt_messages

    chat = ChatInput(_chat_of(e))
    return {"prompt": prompt_messages(chat), "completion": e["completion"], "images": chat.images,
            "videos": chat.videos}


def text_example(e: dict) -> dict:
    """A text-only ladder_data dict as a collator example."""
    from ..backends.base import ChatInput
    from ..train.collate import prompt_messages

    return {"prompt": prompt_messages(ChatInput([e["prompt"]])), "completion": e["completion"], "images": [],
            "videos": []}


def sample_example(sample, arrays: dict) -> dict:
    """A unified Sample (media still in memory) as a collator example, rendered as the judge renders it."""
    from ..backends.base import ChatInput
    from ..tasks import get_task
    from ..train.collate import prompt_messages

    task = get_task(sample.task)
    media = [_media(arrays[m], task.modality == "video") for m in sample.media]
    if task.domain in ("gen", "edit"):  # edit: media 0 is the source, 1..k the candidates
        parts = task.render(sample.prompt, num_media=len(media))
        chat = ChatInput([media[p] if isinstance(p, int) else p for p in parts])
    else:
        parts = task.render(sample.prompt, answers=sample.answers)
        chat = ChatInput([media[0] if isinstance(p, int) else p for p in parts])
    return {"prompt": prompt_messages(chat), "completion": sample.target, "images": chat.images,
            "videos": chat.videos, "label": sample.label, "task": sample.task}


# ---------------------------------------------------------------- evaluation


def caption_accuracy(model, processor, config: LadderConfig, n: int = 64, seed: int = 0) -> dict:
    """Exact-caption and per-fact accuracy of greedy captions on held-out scenes (images and videos)."""
    from ..backends.hf import HFBackend
    from ..backends.base import ChatInput
    from . import oracle
    from .ladder_data import captioning_examples

    was_training = model.training
    backend = HFBackend(model, processor, batch_size=32)
    out = {}
    for video in (False, True):
        ex = captioning_examples(n, seed=seed + 7, split="heldout", image_size=config.image_size, video=video,
                                 video_frames=config.video_frames, physics=video,
                                 generated_share=config.generated_share)
        chats = [ChatInput(_chat_of(e)) for e in ex]
        texts = backend.generate(chats, max_new_tokens=20)
        exact = sum(t.strip() == e["completion"] for t, e in zip(texts, ex)) / n
        facts = [oracle.parse_caption(e["completion"].split(",")[0]) for e in ex]
        got = [oracle.parse_caption(t.split(",")[0]) or {} for t in texts]
        fact_acc = {k: sum(g.get(k) == f[k] for g, f in zip(got, facts)) / n for k in facts[0]}
        out["video" if video else "image"] = {"exact": round(exact, 3), **{k: round(v, 3) for k, v in fact_acc.items()}}
    model.train(was_training)
    return out


def text_accuracy(model, processor, n: int = 96, seed: int = 0) -> dict:
    """Verdict / score accuracy of greedy answers to held-out text-only matching examples."""
    from ..backends.base import ChatInput
    from ..backends.hf import HFBackend
    from ..tasks import get_task
    from .ladder_data import text_match_examples

    was_training = model.training
    backend = HFBackend(model, processor, batch_size=32)
    out = {}
    for kind in ("pair", "point"):
        ex = text_match_examples(n, seed=seed + 5, split="heldout", kind=kind)
        texts = backend.generate([ChatInput([e["prompt"]]) for e in ex], max_new_tokens=64)
        task = get_task(f"image-gen/{kind}")
        got = [task.parse(t) for t in texts]
        vals = [g.winner if kind == "pair" else g.score for g in got]
        out[kind] = round(sum(v == e["label"] for v, e in zip(vals, ex)) / n, 3)
        out[kind + "_checklist"] = round(sum(_before_verdict(t, task) == _before_verdict(e["completion"], task)
                                             for t, e in zip(texts, ex)) / n, 3)
    model.train(was_training)
    return out


def _chat_of(e: dict) -> list:
    import numpy as np

    media = _media(np.stack([np.asarray(im) for im in e["images"]]), True) if e["video"] else e["images"][0]
    return [media, "\n" + e["prompt"]]


def heldout_samples(n: int, seed: int, image_size: int, video_frames: int, root: Path | None = None,
                    tasks: Sequence[str] = TASKS, split: str = "heldout",
                    generated_share: float = 0.0) -> dict[str, list]:
    """Held-out (or `split`) samples per task; media written under `root` (a temp folder when None). Returns
    task -> [(Sample, root)]."""
    import tempfile

    from .data import build_samples, write_media

    root = Path(root or tempfile.mkdtemp(prefix="ladder-eval-"))
    out = {}
    for task in tasks:
        samples, jobs = build_samples(task, n, split, seed=seed + 999, image_size=image_size,
                                      video_frames=video_frames, rationale=True, video_format="frames",
                                      generated_share=generated_share)
        write_media(root, jobs)
        out[task] = [(s, root) for s in samples]
    return out


def evaluate_judge(model_dir: str | Path | None = None, *, model=None, processor=None, n: int = 100, seed: int = 0,
                   image_size: int = 56, video_frames: int = 8, generated_share: float = 0.0,
                   tasks: Sequence[str] = TASKS, pair_from_points: bool = False, method: str = "generate",
                   batch_size: int = 32,
                   progress: bool = False, split: str = "heldout") -> dict:
    """Held-out (or `split`: "val" for in-distribution) metrics through `RewardModel`: pairwise accuracy per
    task (each order separately and the two-order verdict; ties count as answers) and pointwise Spearman / exact
    match / unparsed rate; "checklist": the fraction of generated checklists equal to the oracle's (where the
    judge goes wrong: reading or deciding). With `generated_share` > 0, image-gen pairs also report
    "acc_generated" and "acc_crisp" (generator-like renders and crisp ones apart).
    `pair_from_points`: also "<pair task>/from-points", a STOP-GAP pair decision from two pointwise scores."""
    from ..backends.hf import HFBackend
    from ..bench.metrics import spearman
    from ..judge import PairRequest, RewardModel
    from ..media import VideoPolicy

    if model is None:
        backend = HFBackend.load(str(model_dir), device="cpu", dtype="float32", batch_size=batch_size)
    else:
        backend = HFBackend(model, processor, batch_size=batch_size)
    was_training = backend.model.training
    backend.model.eval()
    rm = RewardModel(backend, method=method, max_new_tokens=96,
                     video_policy=VideoPolicy(num_frames=video_frames))
    data = heldout_samples(n, seed, image_size, video_frames, tasks=tasks, split=split,
                           generated_share=generated_share)
    res: dict[str, Any] = {"n": n}
    for task in tasks:
        items = data[task]
        t0 = time.perf_counter()
        if task.endswith("/pair"):
            reqs = [_pair_request(s, root) for s, root in items]
            single = rm.rank_batch(reqs, task=task, both_orders=False, progress=progress)
            swapped = rm.rank_batch([PairRequest(r.prompt, r.b, r.a, r.media) for r in reqs], task=task)
            gold = [s.label for s, _ in items]
            flip = {1: 2, 2: 1, "tie": "tie"}
            right1 = [r.winner == g for r, g in zip(single, gold)]
            right2 = [r.winner == flip[g] for r, g in zip(swapped, gold)]

            def acc(idx):  # both orders, over the samples in idx
                return round(sum(right1[i] + right2[i] for i in idx) / (2 * max(1, len(idx))), 3)

            dec = [i for i, g in enumerate(gold) if g != "tie"]
            res[task] = {"acc": acc(range(len(gold))), "acc_order1": round(sum(right1) / len(gold), 3),
                         "acc_order2": round(sum(right2) / len(gold), 3),
                         "acc_both_orders": round(sum(a and b for a, b in zip(right1, right2)) / len(gold), 3),
                         "acc_decisive": round(sum(right1[i] for i in dec) / max(1, len(dec)), 3),
                         "unparsed": round(sum(r.winner is None for r in single + swapped) / (2 * len(gold)), 3),
                         "checklist": _checklist_exact(single, [s for s, _ in items])}
            looks = [bool(s.meta.get("generated")) for s, _ in items]
            if any(looks):  # the part drawn like the sandbox generator, and the crisp renders, apart
                res[task]["acc_generated"] = acc([i for i, g in enumerate(looks) if g])
                res[task]["acc_crisp"] = acc([i for i, g in enumerate(looks) if not g])
                res[task]["n_generated"] = sum(looks)
            if pair_from_points:
                res[task + "/from-points"] = _pair_from_points(rm, task, items)
        else:
            reqs = [_point_request(s, root) for s, root in items]
            out = rm.score_batch(reqs, task=task, progress=progress)
            pred = [r.expected_score if r.expected_score is not None else r.score for r in out]
            gold = [s.label for s, _ in items]
            ok = [(p, g) for p, g in zip(pred, gold) if p is not None]
            res[task] = {"spearman": _round(spearman([p for p, _ in ok], [g for _, g in ok]) if len(ok) > 2 else None),
                         "exact": round(sum(r.score == g for r, g in zip(out, gold)) / len(gold), 3),
                         "unparsed": round(1 - len(ok) / len(gold), 3),
                         "checklist": _checklist_exact(out, [s for s, _ in items])}
        res[task]["time_s"] = round(time.perf_counter() - t0, 1)
    backend.model.train(was_training)
    return res


def _before_verdict(text: str, task) -> str:
    """The rationale part of a judge's text: everything before the task's answer prefix."""
    return text.split(task.answer.prefix)[0].strip()


def _checklist_exact(results, samples) -> float | None:
    """Fraction of generated checklists (the text before the verdict) equal to the oracle's; None without any."""
    from ..tasks import get_task

    pairs = [(r.raw[0] if isinstance(r.raw, list) else r.raw, s.rationale, get_task(s.task))
             for r, s in zip(results, samples)]
    pairs = [(raw, gold, task) for raw, gold, task in pairs if raw and gold]
    if not pairs:
        return None
    return round(sum(_before_verdict(raw, task) == gold.strip() for raw, gold, task in pairs) / len(pairs), 3)


def _round(x):
    return None if x is None else round(float(x), 3)


def _pair_request(s, root):
    from ..judge import PairRequest

    paths = s.media_paths(root)
    if s.task.split("/")[0].endswith("-gen"):
        return PairRequest(s.prompt, paths[0], paths[1])
    if s.task.split("/")[0].endswith("-edit"):  # the source image is the context
        return PairRequest(s.prompt, paths[1], paths[2], media=paths[0])
    return PairRequest(s.prompt, s.answers[0], s.answers[1], media=paths[0])


def _point_request(s, root):
    from ..judge import PointRequest

    paths = s.media_paths(root)
    if s.task.split("/")[0].endswith("-gen"):
        return PointRequest(s.prompt, paths[0])
    if s.task.split("/")[0].endswith("-edit"):
        return PointRequest(s.prompt, paths[1], media=paths[0])
    return PointRequest(s.prompt, s.answers[0], media=paths[0])


def _pair_from_points(rm, task: str, items: list) -> dict:
    """STOP-GAP: score each candidate with the matching point task; the higher score wins (equal: tie)."""
    from ..judge import PointRequest

    point = task.replace("/pair", "/point")
    reqs = []
    for s, root in items:
        r = _pair_request(s, root)
        reqs += [PointRequest(r.prompt, r.a, r.media), PointRequest(r.prompt, r.b, r.media)]
    out = rm.score_batch(reqs, task=point)
    vals = [r.expected_score if r.expected_score is not None else r.score for r in out]
    correct = 0
    for k, (s, _) in enumerate(items):
        a, b = vals[2 * k], vals[2 * k + 1]
        win = None if a is None or b is None else 1 if a > b else 2 if b > a else "tie"
        correct += win == s.label
    return {"acc": round(correct / len(items), 3), "note": "stop-gap: pair decided by two pointwise scores"}


def _quick_eval(config: LadderConfig, model, processor, step: int) -> dict:
    ev = evaluate_judge(model=model, processor=processor, n=config.eval_n, seed=config.seed + 1,
                        image_size=config.image_size, video_frames=config.video_frames,
                        generated_share=config.generated_share, tasks=eval_tasks(config))
    ev["step"], ev["examples"] = step, step * config.batch_size
    _say(config, f"  eval @ {ev['examples']} examples: {_short(ev)}")
    return ev


def _short(ev: dict) -> str:
    parts = []
    for t in ALL_TASKS:
        if t in ev:
            v = ev[t].get("acc", ev[t].get("spearman"))
            parts.append(f"{t}={v}")
    return " ".join(parts)


# ---------------------------------------------------------------- bookkeeping


def _base_part(c: LadderConfig) -> dict:
    if c.init:  # a trained judge: its weights' digest, so a changed starting judge retrains every stage
        weights = Path(c.init) / "model.safetensors"
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16] if weights.is_file() else None
        return {"init": str(c.init), "weights": digest, "image_size": c.image_size}
    return {"family": c.family, "size": c.size, "seed": c.seed, "image_size": c.image_size}


def _world_part(c: LadderConfig) -> dict:
    part = {"image_size": c.image_size, "video_frames": c.video_frames, "batch_size": c.batch_size}
    if c.generated_share:
        part["generated_share"] = c.generated_share
    return part


def _changed(stage: StageConfig) -> dict:
    """The stage's fields that differ from their defaults (so adding a field keeps old caches valid)."""
    default = dataclasses.asdict(StageConfig(name=stage.name))
    return {k: v for k, v in dataclasses.asdict(stage).items() if v != default[k] or k == "name"}


def _key(d: dict) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _read_json(p: Path) -> dict | None:
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def _say(config: LadderConfig, msg: str) -> None:
    if config.progress:
        print(msg, file=sys.stderr, flush=True)


def _bar(config: LadderConfig, total: int, desc: str):
    if not config.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", mininterval=5)


# ---------------------------------------------------------------- the shipped judge

SHIPPED_JUDGE = Path(__file__).parent / "judge"  # the judge this recipe trained, shipped with the package


def ship(report: dict, dest: Path = SHIPPED_JUDGE) -> Path:
    """Copy a finished ladder's final judge to `dest` with its record (`ladder.json`: config, times, curves,
    held-out evaluation), so that `unireward demo` starts from it and `--from-scratch` can retrain it.

    A ladder that started from a shipped judge (`init` holding a `ladder.json`) is recorded as the whole recipe
    from scratch: the starting judge's config and stages, then this ladder's stages (train time: both)."""
    import shutil

    record = {k: report[k] for k in ("config", "train_time_s", "eval", "eval_before") if k in report}
    record["stages"] = [{k: v for k, v in st.items() if k != "cached"} for st in report["stages"]]
    init = report["config"].get("init")
    base = _read_json(Path(init) / "ladder.json") if init else None
    if base is not None:
        record = _after(base, record)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(report["final_model"], dest, ignore=shutil.ignore_patterns("stage.json", "eval.json"))
    (dest / "ladder.json").write_text(json.dumps(record, indent=1))
    return dest


def _after(base: dict, record: dict) -> dict:
    """`record` (a ladder started from the judge `base` records) as one recipe from scratch."""
    new, old = record["config"], base["config"]
    world = ("image_size", "video_frames", "batch_size", "generated_share")
    if any(new[k] != old.get(k) for k in world):
        raise ValueError(f"cannot record one recipe: the starting judge's world differs in {world}")
    config = {**old, "stages": old["stages"] + new["stages"], "final_eval_n": new["final_eval_n"]}
    return {**record, "config": config, "stages": base["stages"] + record["stages"],
            "train_time_s": base["train_time_s"] + record["train_time_s"]}


def config_from_dict(fields: dict, **changes) -> LadderConfig:
    """A LadderConfig from its dict form (a ladder.json "config", a demo preset), with `changes` applied."""
    fields = {**fields, **changes}
    fields["stages"] = [s if isinstance(s, StageConfig) else StageConfig(**s) for s in fields.get("stages", [])]
    return LadderConfig(**fields)


def shipped_record(path: Path = SHIPPED_JUDGE) -> dict | None:
    """The shipped judge's training record, or None when no judge is shipped."""
    return _read_json(path / "ladder.json") if (path / "model.safetensors").is_file() else None


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(description="Train the sandbox base model and judge (see module docstring).")
    p.add_argument("--config", help="a YAML preset (sandbox/ladder)")
    p.add_argument("--ship", action="store_true", help=f"copy the final judge into the package ({SHIPPED_JUDGE})")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. out_dir=runs/x final_eval_n=50")
    args = p.parse_args(argv)
    report = run_from_config(args.config, args.overrides)
    print(json.dumps({k: report[k] for k in ("train_time_s", "final_model", "eval") if k in report}, indent=1))
    if args.ship:
        print(f"shipped: {ship(report)}")


if __name__ == "__main__":
    main()
