"""Rejection sampling for judges: sample K reasoning traces per labelled sample, keep the right ones as SFT data.

    unireward train reject --config reject/sandbox k=8 temperature=1.0
    python -c "from unireward.train.rejection import run_rejection_from_config as r; r('reject/sandbox')"

For every unified `Sample` of `data` (the SFT recipe's data entries: JSONL files or a sandbox world) the judge in
`model` writes `k` traces by sampling (`temperature`, `top_p`) from exactly the prompt it is judged with (the
task's template through the judge's own message builder, `collate.sample_chat`). Each trace is parsed with the
task's own parser; a trace is right when its verdict equals the label (pair: the winner, ties where the format
allows them; point: the score within `point_tolerance`); an unparsed trace is wrong. Outputs in `out_dir`:

- `records.jsonl`: one record per sample (`data.records.RecordWriter`: crash-safe and resumable, a sample
  already recorded is never redone), with every trace, its verdict and the seed it was drawn under;
- `sft.jsonl`: the right traces as unified samples, the trace as `target` (what SFT trains on) and the part before
  the answer prefix as `rationale` (ids `<id>/rs<j>`; with `distinct`, identical traces once; at most
  `max_per_sample` of them), media paths absolute;
- `hard.jsonl`: the samples the judge got wrong on all k traces (GRPO's training set in the Think recipe);
- `spread.jsonl`: the samples it got right on some but not all k traces: the groups whose GRPO accuracy
  rewards vary at this temperature (a group that agrees has zero advantage and trains nothing);
- `summary.json`: counts, pass@k and the mean per-trace accuracy per task.

`sft.jsonl`, `hard.jsonl`, `spread.jsonl` and `summary.json` are rewritten from `records.jsonl` at the end of every
run, so a resumed run adds no duplicates. Traces of one batch are drawn after `torch.manual_seed(seed)` where `seed` (in
every trace) is derived from the run's seed and the batch's sample ids: the same batch reproduces its traces.
"""

from __future__ import annotations

import dataclasses
import json
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError, UnirewardError


@dataclass
class RejectConfig:
    """Settings of a rejection-sampling run (see the module docstring)."""

    model: str = "src/unireward/sandbox/judge"  # the judge: a local folder or a hub id
    data: list[Any] = field(default_factory=list)  # as SFTRecipeConfig.data: JSONL paths, {path, weight} or
    #                      {sandbox_world: DIR, n_per_task: N, seed: s, image_size: 56, rationale: true}
    tasks: list[str] = field(default_factory=list)  # only samples of these tasks; empty: all
    max_samples: int | None = None  # cap on the samples (a seeded random subset)
    out_dir: str = "runs/reject"  # records.jsonl, sft.jsonl, hard.jsonl, summary.json, reject_config.yaml
    family: str = "unireward"  # the prompt family the judge is run with (its task templates and parsers)
    variant: str | None = None  # the family's prompt variant; None: its default
    k: int = 4  # traces per sample
    temperature: float = 1.0  # sampling temperature
    top_p: float = 1.0  # nucleus sampling (1.0: off)
    max_new_tokens: int = 128  # per trace
    seed: int = 0  # the run's seed (data subset and every batch's sampling seed)
    batch_size: int = 8  # samples per generate call (each repeated k times)
    point_tolerance: float = 0.0  # a point trace is right when |score - label| <= this
    distinct: bool = True  # keep identical right traces of a sample once
    max_per_sample: int | None = None  # at most this many right traces per sample in sft.jsonl; None: all
    image_max_pixels: int = 1024 * 1024  # ImagePolicy, as the judge and SFT
    video_frames: int = 8  # VideoPolicy: frames per video, as the judge
    video_max_pixels: int = 448 * 448
    device: str | None = None  # None: cuda when available, else cpu
    dtype: str = "float32"
    num_threads: int | None = None  # torch CPU threads for this run (restored after)
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("k", "batch_size", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be > 0 for sampling, got {self.temperature} (greedy decoding gives "
                              "k identical traces)")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")


@dataclass
class RejectResult:
    out_dir: Path
    sft_path: Path
    hard_path: Path
    spread_path: Path
    samples: int  # samples recorded in total (resumed runs included)
    new: int  # samples judged by this invocation
    kept_traces: int  # rows of sft.jsonl
    hard: int  # rows of hard.jsonl
    spread: int  # rows of spread.jsonl
    errors: int  # samples that failed (recorded with their error)
    runtime_s: float
    per_task: dict[str, Any] = field(default_factory=dict)


def run_rejection_from_config(path: str | Path | None, overrides: Sequence[str] = ()) -> RejectResult:
    from ..config import load_config

    return run_rejection(load_config(RejectConfig, path, overrides))


def run_rejection(config: RejectConfig) -> RejectResult:
    from .sft import torch_threads

    with torch_threads(config.num_threads):
        return _run(config)


def _run(config: RejectConfig) -> RejectResult:
    from ..backends.hf import HFBackend
    from ..config import dump_config, expand_path
    from ..data.records import RecordWriter
    from .sft import read_mixture

    out = Path(expand_path(config.out_dir, "out_dir"))
    out.mkdir(parents=True, exist_ok=True)
    dump_config(config, out / "reject_config.yaml")
    samples = unique_samples(read_mixture(config.data, seed=config.seed, max_samples=config.max_samples),
                             config.tasks)
    t0 = time.perf_counter()
    new = 0
    with RecordWriter(out / "records.jsonl") as writer:
        todo = [(s, root) for s, root in samples if s.id not in writer.done]
        if todo:
            backend = HFBackend.load(expand_path(config.model, "model"), device=config.device, dtype=config.dtype,
                                     batch_size=config.batch_size * config.k,
                                     chat_template_kwargs=reject_spec(config).chat_template_kwargs)
            bar = _bar(config, len(todo))
            for i in range(0, len(todo), config.batch_size):
                batch = todo[i: i + config.batch_size]
                for record in judge_batch(backend, batch, config):
                    writer.append(record)
                    new += 1
                if bar is not None:
                    bar.update(len(batch))
            if bar is not None:
                bar.close()
    result = export(out, config)
    return dataclasses.replace(result, new=new, runtime_s=round(time.perf_counter() - t0, 1))


def unique_samples(mixed: list[tuple[Any, str]], tasks: Sequence[str] = ()) -> list[tuple[Any, str]]:
    """Each sample once (a weighted mixture repeats them), in order, optionally only of `tasks`."""
    seen, out = set(), []
    for s, root in mixed:
        if s.id in seen or (tasks and s.task not in tasks):
            continue
        seen.add(s.id)
        out.append((s, root))
    if not out:
        raise ConfigError(f"no samples to judge (tasks filter {list(tasks)})" if tasks else "no samples to judge")
    return out


def batch_seed(seed: int, ids: Sequence[str]) -> int:
    """The sampling seed of a batch: the run's seed and the batch's sample ids (stable across runs)."""
    return zlib.crc32(f"{seed}:{'|'.join(ids)}".encode()) & 0x7FFFFFFF


def sample_texts(backend, chats: Sequence[Any], k: int, *, temperature: float, top_p: float = 1.0,
                 max_new_tokens: int = 128, seed: int = 0) -> list[list[str]]:
    """`k` sampled continuations of each chat (left-padded, one generate call), after `torch.manual_seed(seed)`:
    the judge's greedy `generate` with `do_sample=True`."""
    import torch

    rows = [c for c in chats for _ in range(k)]
    enc = backend.encode(rows)
    start = enc["input_ids"].shape[1]
    backend.check_length(start)
    tok = backend.tokenizer
    torch.manual_seed(seed)
    with torch.inference_mode():
        seqs = backend.model.generate(**{n: v.to(backend.device) for n, v in enc.items()},
                                      max_new_tokens=max_new_tokens, do_sample=True, temperature=temperature,
                                      top_p=top_p, top_k=0, pad_token_id=tok.pad_token_id)
    texts = [tok.decode(row[start:], skip_special_tokens=True) for row in seqs]
    return [texts[i * k: (i + 1) * k] for i in range(len(chats))]


def judge_batch(backend, batch: list[tuple[Any, str]], config: RejectConfig) -> list[dict]:
    """Records for a batch of samples; a sample that cannot be rendered or judged gets an error record (the rest
    of the batch completes)."""
    from .collate import sample_chat

    spec = reject_spec(config)
    chats, ok, records = [], [], {}
    for s, root in batch:
        try:
            chats.append(sample_chat(s, root, spec))
            ok.append((s, root))
        except UnirewardError as e:
            records[s.id] = _error_record(s, root, e)
    if ok:
        seed = batch_seed(config.seed, [s.id for s, _ in ok])
        try:
            texts = sample_texts(backend, chats, config.k, temperature=config.temperature, top_p=config.top_p,
                                 max_new_tokens=config.max_new_tokens, seed=seed)
        except Exception as e:  # noqa: BLE001 - a failed batch is retried one sample at a time
            if len(ok) == 1:
                records[ok[0][0].id] = _error_record(ok[0][0], ok[0][1], e)
                texts = None
            else:
                for item in ok:
                    records.update({r["id"]: r for r in judge_batch(backend, [item], config)})
                return [records[s.id] for s, _ in batch]
        if texts is not None:
            for (s, root), traces in zip(ok, texts):
                records[s.id] = trace_record(s, root, traces, seed, config)
    return [records[s.id] for s, _ in batch]


def reject_spec(config: RejectConfig):
    """The judge spec the run renders and parses with: the model's own, then the run's family, variant and
    media policies (`collate.training_spec`)."""
    from .collate import training_spec

    return training_spec(config.model, family=config.family, variant=config.variant,
                         image_policy=config_image_policy(config), video_policy=config_video_policy(config))


def config_image_policy(config: RejectConfig):
    from ..media import ImagePolicy

    return ImagePolicy(max_pixels=config.image_max_pixels)


def config_video_policy(config: RejectConfig):
    from ..media import VideoPolicy

    return VideoPolicy(num_frames=config.video_frames, max_pixels=config.video_max_pixels)


def verdict_matches(task, verdict, label, point_tolerance: float = 0.0) -> bool:
    """Whether a parsed verdict equals the label (unparsed: never). Pair: the winner (1, 2 or "tie"); point: the
    score within `point_tolerance`."""
    if task.is_pair:
        return verdict.winner is not None and verdict.winner == label
    return verdict.score is not None and abs(float(verdict.score) - float(label)) <= point_tolerance


def trace_record(sample, root: str, traces: Sequence[str], seed: int, config: RejectConfig) -> dict:
    task = reject_spec(config).task(sample.task)
    rows = []
    for j, text in enumerate(traces):
        verdict = task.answer.parse(text)
        rows.append({"trace": j, "text": text, "seed": seed, "temperature": config.temperature,
                     "top_p": config.top_p, "verdict": verdict.winner if task.is_pair else verdict.score,
                     "unparsed": verdict.reason if (verdict.winner if task.is_pair else verdict.score) is None
                     else None,
                     "correct": verdict_matches(task, verdict, sample.label, config.point_tolerance)})
    status = "kept" if any(r["correct"] for r in rows) else "hard"
    return {"id": sample.id, "status": status, "task": sample.task, "label": sample.label, "k": len(rows),
            "correct": sum(r["correct"] for r in rows), "model": config.model, "traces": rows,
            "sample": _absolute(sample, root)}


def _error_record(sample, root: str, error: Exception) -> dict:
    return {"id": sample.id, "status": "error", "task": sample.task, "label": sample.label,
            "error": f"{type(error).__name__}: {error}", "sample": _absolute(sample, root)}


def _absolute(sample, root: str) -> dict:
    d = dataclasses.asdict(sample)
    d["media"] = sample.media_paths(str(Path(root).resolve()))
    return d


def export(out: Path, config: RejectConfig) -> RejectResult:
    """Rewrite sft.jsonl, hard.jsonl, spread.jsonl and summary.json from records.jsonl (no duplicates, whatever
    was resumed)."""
    from ..data.records import read_records
    from ..data.schema import Sample, write_samples

    sft, hard, spread, per_task, errors, total = [], [], [], {}, 0, 0
    for rec in read_records(out / "records.jsonl"):
        total += 1
        stats = per_task.setdefault(rec["task"], {"samples": 0, "kept": 0, "hard": 0, "errors": 0, "traces": 0,
                                                  "right_traces": 0, "kept_rows": 0, "spread": 0})
        stats["samples"] += 1
        if rec["status"] == "error":
            errors += 1
            stats["errors"] += 1
            continue
        base = Sample.from_dict(rec["sample"], where=f"{out / 'records.jsonl'}: {rec['id']}")
        stats["traces"] += rec["k"]
        stats["right_traces"] += rec["correct"]
        if rec["status"] == "hard":
            stats["hard"] += 1
            hard.append(dataclasses.replace(base, meta={**base.meta, "rejection": {
                "k": rec["k"], "temperature": rec["traces"][0]["temperature"], "seed": rec["traces"][0]["seed"]}}))
            continue
        stats["kept"] += 1
        if rec["correct"] < rec["k"]:
            stats["spread"] += 1
            spread.append(dataclasses.replace(base, meta={**base.meta, "rejection": {
                "k": rec["k"], "correct": rec["correct"], "temperature": rec["traces"][0]["temperature"],
                "seed": rec["traces"][0]["seed"]}}))
        task = reject_spec(config).task(base.task)
        seen: set[str] = set()
        for t in rec["traces"]:
            text = t["text"].strip()
            if not t["correct"] or (config.distinct and text in seen):
                continue
            if config.max_per_sample is not None and len(seen) >= config.max_per_sample:
                break
            seen.add(text)
            rationale = text.rpartition(task.answer.prefix)[0].strip() if task.answer.prefix else None
            sft.append(dataclasses.replace(base, id=f"{base.id}/rs{t['trace']}", target=text,
                                           rationale=rationale or None, meta={**base.meta, "rejection": {
                                               "source_id": base.id, "trace": t["trace"], "seed": t["seed"],
                                               "temperature": t["temperature"], "top_p": t["top_p"],
                                               "model": rec.get("model")}}))
        stats["kept_rows"] += len(seen)
    for stats in per_task.values():
        judged = stats["samples"] - stats["errors"]
        stats["pass_at_k"] = round(stats["kept"] / judged, 4) if judged else None
        stats["trace_accuracy"] = round(stats["right_traces"] / stats["traces"], 4) if stats["traces"] else None
    write_samples(out / "sft.jsonl", sft)
    write_samples(out / "hard.jsonl", hard)
    write_samples(out / "spread.jsonl", spread)
    summary = {"samples": total, "kept_traces": len(sft), "hard": len(hard), "spread": len(spread), "errors": errors,
               "per_task": per_task}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return RejectResult(out_dir=out, sft_path=out / "sft.jsonl", hard_path=out / "hard.jsonl",
                        spread_path=out / "spread.jsonl", samples=total, new=0, kept_traces=len(sft), hard=len(hard),
                        spread=len(spread), errors=errors, runtime_s=0.0, per_task=per_task)


def _bar(config: RejectConfig, total: int):
    if not config.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="reject", unit="sample")


CONFIG_CLASS = RejectConfig
