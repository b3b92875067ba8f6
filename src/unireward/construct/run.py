"""The construction recipe: prompts -> N candidates -> judge -> one (chosen, rejected) pair per prompt, resumable.

    unireward construct --config construct/sandbox_generator num_candidates=10
    python -c "from unireward.construct import run_construct_from_config as r; r('construct/x', [])"

`construct(items, sampler, judge, out_dir, ...)` is the library call (built objects in, records out);
`run_construct(config)` builds the sampler and the judge a `ConstructConfig` names and calls it.

Output folder: `records.jsonl` (one record per prompt, kept, dropped or error, with the full provenance: every
candidate with its seed, every pair verdict with raw judge text and probabilities, every score, the policy,
the judge, task versions and template hashes), `media/` (generated candidates), `construct_config.yaml`, and
the exports (`dpo_trl.jsonl` for understanding, `diffusion_dpo.jsonl` for generation), rebuilt from the records
at the end of every run. Killed at any point and started again, a run skips the prompt ids already recorded and
ends with the same records (seeds and pairings derive from the prompt id, not from the order of work).

Scale-out: with `shard=i/n` a run takes only the prompts whose id hashes to i (`unireward.shards`) and writes them
to `output_dir/shard-i-of-n`, resumable on its own; `unireward construct merge` (`merge.merge_construct`) joins the
n shard folders into exactly what one unsharded run writes.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import plugins
from ..data.records import RecordWriter, atomic_write_bytes
from ..errors import ConfigError, DataError, MediaError
from ..shards import check_shard, claim_folder, parse_shard, shard_manifest
from .candidates import PromptItem, candidate_seed
from .strategies import NEEDS_PAIRS, NEEDS_SCORES, STRATEGIES, Verdict, check_strategy, make_pairs, select, \
    verdict_from

TASKS = ("image-gen", "video-gen", "image-und", "video-und")
SAMPLERS = ("vlm", "diffusers-image", "diffusers-video")  # built in; any other is a plugin (unireward.plugins)
RECORDS = "records.jsonl"
CONFIG_FILE = "construct_config.yaml"


@dataclass
class ConstructConfig:
    """Settings of a construction run (fields of the construct/ presets)."""

    # ---- what
    prompts: str = ""  # JSONL of {"id", "prompt", "media"?} (media: the image / video an und question is about)
    output_dir: str = "outputs/construct"  # records.jsonl, media/, exports
    task: str = "image-gen"  # image-gen | video-gen | image-und | video-und (the judge uses <task>/pair, /point)
    limit: int | None = None  # only the first N prompts
    # ---- the model being aligned (the sampler)
    sampler: str = "auto"  # vlm | diffusers-image | diffusers-video | a sampler plugin; auto: by task
    policy_model: str = ""  # a folder or hub id (VLM, diffusers pipeline, or what the sampler plugin loads)
    policy_dtype: str = "float32"  # weights dtype of the policy
    device: str | None = None  # e.g. "cuda"; None: CPU
    temperature: float = 0.7  # vlm: sampling temperature (the paper: 0.7)
    top_p: float = 1.0  # vlm: nucleus sampling
    max_new_tokens: int = 128  # vlm: answer length cap
    num_inference_steps: int = 1  # diffusers: denoising steps (SDXL-Turbo 1, T2V-Turbo 4)
    guidance_scale: float = 0.0  # diffusers: classifier-free guidance scale
    height: int | None = None  # diffusers: output size (None: the pipeline's default)
    width: int | None = None
    num_frames: int = 16  # diffusers-video: frames per video
    ddim_steps: int = 20  # a plugin sampler (e.g. sandbox-generator): sampling steps
    # ---- the judge
    judge: str = ""  # a judge folder / hub id, an OpenAI-compatible base URL, or a judges plugin ("oracle")
    judge_backend: str = "hf"  # hf | openai | vllm (vLLM in process) (ignored for a plugin)
    judge_served_model: str | None = None  # openai: the model name on the server
    judge_method: str = "auto"  # auto | probs | generate
    judge_batch_size: int = 8  # hf: requests per forward pass
    judge_dtype: str = "auto"  # hf: weights dtype of the judge
    judge_video_frames: int = 8  # frames per video the judge sees
    # ---- the method
    strategy: str = "pair-then-point"  # pair-then-point | pair-only | point-only | random
    num_candidates: int = 10  # N candidates per prompt (N // 2 pairs)
    both_orders: bool = False  # judge each pair in both orders (disagreements become ties and are skipped)
    score_field: str = "score"  # score: the parsed / most probable score; expected: the probability-weighted mean
    seed: int = 0  # seeds candidates (per prompt id and index) and pairings (per prompt id)
    chunk_size: int = 8  # prompts sampled and judged together (records are still written one per prompt)
    shard: str | None = None  # i/n: only the prompts whose id hashes to i (unireward.shards), written to
    # output_dir/shard-i-of-n; auto: i/n = RANK/WORLD_SIZE (torchrun, accelerate launch). Merge: `construct merge`
    export: bool = True  # write the trainer exports at the end
    progress: bool = True  # tqdm progress bar

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.sampler != "auto" and self.sampler not in SAMPLERS and not plugins.known("samplers", self.sampler):
            declared = ", ".join(plugins.names("samplers")) or "none"
            raise ConfigError(f"sampler must be auto, one of {SAMPLERS}, a declared sampler ({declared}) or "
                              f"module:attr, got {self.sampler!r}")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.num_candidates < 2:
            raise ConfigError(f"num_candidates must be at least 2, got {self.num_candidates}")
        if self.score_field not in ("score", "expected"):
            raise ConfigError(f"score_field must be score or expected, got {self.score_field!r}")
        if self.chunk_size < 1:
            raise ConfigError(f"chunk_size must be at least 1, got {self.chunk_size}")
        check_shard(self.shard)


@dataclass
class ConstructResult:
    output_dir: Path
    records_path: Path
    prompts: int  # prompts in the input (after limit)
    done_before: int  # prompts already recorded when this run started
    kept: int  # kept pairs in the records file (all runs)
    dropped: int
    errors: int
    exports: dict[str, str] = field(default_factory=dict)
    runtime_s: float = 0.0


# ---------------------------------------------------------------- the library call


def construct(items: Sequence[PromptItem], sampler: Any, judge: Any, out_dir: str | Path, *, task: str = "image-gen",
              strategy: str = "pair-then-point", num_candidates: int = 10, both_orders: bool = False,
              score_field: str = "score", seed: int = 0, chunk_size: int = 8, progress: bool = False,
              provenance: dict[str, Any] | None = None, judge_video_frames: int = 8) -> ConstructResult:
    """Build one preference pair per prompt into `out_dir/records.jsonl`, skipping prompt ids already there.

    `sampler` is a `candidates.*Sampler`; `judge` a `RewardModel` (unused by the random strategy, may be None).
    """
    from ..tasks import get_task

    check_strategy(strategy)
    if task not in TASKS:
        raise ConfigError(f"task must be one of {TASKS}, got {task!r}")
    domain = task.split("-")[1]
    if (sampler.kind == "text") != (domain == "und"):
        raise ConfigError(f"a {sampler.kind} sampler cannot make candidates for {task}")
    if judge is None and strategy != "random":
        raise ConfigError(f"strategy {strategy} needs a judge")
    pair_task, point_task = get_task(f"{task}/pair"), get_task(f"{task}/point")
    if judge is not None:  # the judge's own prompts (a released judge renders its family's)
        pair_task = judge.task(pair_task.name, "pair") if NEEDS_PAIRS[strategy] else pair_task
        point_task = judge.task(point_task.name, "point") if NEEDS_SCORES[strategy] else point_task
    out = Path(out_dir)
    start = time.perf_counter()
    writer = RecordWriter(out / RECORDS)
    done_before = len(writer.done)
    todo = [it for it in items if it.id not in writer.done]
    judge_info = _judge_info(judge)
    prov = {"policy": sampler.describe(), "judge": judge_info,
            "pair_task": _task_info(pair_task), "point_task": _task_info(point_task),
            "strategy": strategy, "num_candidates": num_candidates, "both_orders": both_orders,
            "score_field": score_field, "seed": seed, **_versions(), **(provenance or {})}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(items), initial=len(items) - len(todo), desc=f"construct {strategy}", unit="prompt")
    try:
        for k in range(0, len(todo), chunk_size):
            chunk = todo[k:k + chunk_size]
            for rec in _chunk_records(chunk, sampler, judge, out, domain, pair_task, point_task, strategy,
                                      num_candidates, both_orders, score_field, seed, judge_video_frames):
                rec["provenance"] = prov
                writer.append(rec)
                if bar is not None:
                    bar.update(1)
    finally:
        writer.close()
        if bar is not None:
            bar.close()
    counts = {"kept": 0, "dropped": 0, "error": 0}
    for status in writer.done.values():
        counts[status] = counts.get(status, 0) + 1
    return ConstructResult(out, out / RECORDS, len(items), done_before, counts["kept"], counts["dropped"],
                           counts["error"], runtime_s=time.perf_counter() - start)


def _chunk_records(chunk: list[PromptItem], sampler, judge, out: Path, domain: str, pair_task, point_task,
                   strategy: str, n: int, both_orders: bool, score_field: str, seed: int,
                   judge_video_frames: int) -> list[dict]:
    from ..judge import PairRequest, PointRequest

    seeds = [[candidate_seed(seed, it.id, k) for k in range(n)] for it in chunk]
    cands, errors = _sample(chunk, seeds, sampler)
    ok = [i for i in range(len(chunk)) if i not in errors]
    paths: dict[int, list[Any]] = {}
    if domain == "gen":
        for i in ok:
            paths[i] = [_save(out, chunk[i].id, k, c, sampler.kind) for k, c in enumerate(cands[i])]
    judged_media = {i: [_judge_view(c, sampler.kind, judge_video_frames) for c in cands[i]] for i in ok} \
        if domain == "gen" else {}

    def req_args(i: int, k: int) -> tuple[Any, Any]:
        return (judged_media[i][k], None) if domain == "gen" else (cands[i][k], chunk[i].media)

    pairs = {i: make_pairs(n, np.random.default_rng(candidate_seed(seed, chunk[i].id, -1))) for i in ok}
    pair_results: dict[int, list] = {i: [] for i in ok}
    if NEEDS_PAIRS[strategy] and ok:
        jobs = [(i, a, b) for i in ok for a, b in pairs[i]]
        reqs = []
        for i, a, b in jobs:
            (ca, media), (cb, _) = req_args(i, a), req_args(i, b)
            reqs.append(PairRequest(chunk[i].prompt, ca, cb, media=media, id=chunk[i].id))
        for (i, a, b), r in zip(jobs, judge.rank_batch(reqs, task=pair_task, both_orders=both_orders)):
            pair_results[i].append((a, b, r))
    score_results: dict[int, list] = {i: [] for i in ok}
    if NEEDS_SCORES[strategy] and ok:
        jobs2 = [(i, k) for i in ok for k in range(n)]
        reqs2 = []
        for i, k in jobs2:
            c, media = req_args(i, k)
            reqs2.append(PointRequest(chunk[i].prompt, c, media=media, id=chunk[i].id))
        for (i, k), r in zip(jobs2, judge.score_batch(reqs2, task=point_task)):
            score_results[i].append(r)

    records = []
    for i, item in enumerate(chunk):
        base = {"id": item.id, "prompt": item.prompt, "media": _media_ref(item.media), "meta": item.meta,
                "task": f"{pair_task.modality}-{domain}"}
        if i in errors:
            records.append({**base, "status": "error", "reason": errors[i], "chosen": None, "rejected": None,
                            "candidates": [], "pairs": [], "scores": []})
            continue
        candidates = [{"index": k, "seed": seeds[i][k],
                       **({"text": cands[i][k]} if domain == "und" else {"path": paths[i][k]})} for k in range(n)]
        verdicts = [verdict_from(a, b, r) for a, b, r in pair_results[i]]
        numbers = [_number(r, score_field) for r in score_results[i]] or [None] * n
        sel = select(strategy, n, verdicts, numbers, np.random.default_rng(candidate_seed(seed, item.id, -2)))
        records.append({
            **base, "status": sel.status, "reason": sel.reason,
            "chosen": _side(sel.chosen, candidates, numbers), "rejected": _side(sel.rejected, candidates, numbers),
            "winners": sel.winners, "losers": sel.losers, "skipped_pairs": sel.skipped_pairs,
            "candidates": candidates,
            "pairs": [_pair_record(a, b, r, v) for (a, b, r), v in zip(pair_results[i], verdicts)],
            "scores": [_score_record(k, r, numbers[k]) for k, r in enumerate(score_results[i])],
        })
    return records


def _sample(chunk: list[PromptItem], seeds: list[list[int]], sampler) -> tuple[list[list[Any]], dict[int, str]]:
    """Candidates per prompt; a prompt whose media cannot be used gets an error instead (the rest go on)."""
    try:
        return sampler.sample(chunk, seeds), {}
    except (MediaError, DataError):
        if len(chunk) == 1:
            raise
    cands: list[list[Any]] = []
    errors: dict[int, str] = {}
    for i, (item, s) in enumerate(zip(chunk, seeds)):
        try:
            cands.append(sampler.sample([item], [s])[0])
        except (MediaError, DataError) as e:
            cands.append([])
            errors[i] = f"{type(e).__name__}: {e}"
    return cands, errors


def _number(result, field_name: str) -> float | None:
    if result.status != "ok" and result.score is None:
        return None
    v = result.reward if field_name == "expected" else result.score
    return None if v is None else float(v)


def _side(index: int | None, candidates: list[dict], numbers: list[float | None]) -> dict | None:
    if index is None:
        return None
    return {**candidates[index], "score": numbers[index]}


def _pair_record(a: int, b: int, r, v: Verdict) -> dict:
    winner_index = a if v.winner == 1 else b if v.winner == 2 else None
    return {"a": a, "b": b, "winner": v.winner, "winner_index": winner_index, "status": r.status,
            "reason": r.reason, "probs": r.probs, "p_first": r.p_first, "consistent": r.consistent, "raw": r.raw,
            "method": r.method}


def _score_record(k: int, r, number: float | None) -> dict:
    return {"index": k, "value": number, "score": r.score, "expected_score": r.expected_score, "probs": r.probs,
            "raw": r.raw, "status": r.status, "reason": r.reason, "method": r.method}


def _media_ref(media: Any) -> Any:
    if media is None or isinstance(media, str):
        return media
    if isinstance(media, list) and all(isinstance(m, str) for m in media):
        return media
    return "<in-memory>"


def _safe(pid: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", pid)[:60]
    return f"{stem}-{hashlib.sha256(pid.encode()).hexdigest()[:8]}"


def _png_bytes(image) -> bytes:
    import io

    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _save(out: Path, pid: str, k: int, candidate: Any, kind: str) -> Any:
    """Write a generated candidate under media/ (atomically); returns its path relative to `out`."""
    from PIL import Image

    folder = Path("media") / _safe(pid)
    if kind == "image":
        img = candidate if isinstance(candidate, Image.Image) else Image.fromarray(np.asarray(candidate))
        rel = folder / f"{k:02d}.png"
        atomic_write_bytes(out / rel, _png_bytes(img))
        return str(rel)
    from .candidates import to_frames

    rels = []
    for t, frame in enumerate(to_frames(candidate)):
        rel = folder / f"{k:02d}" / f"f{t:03d}.png"
        atomic_write_bytes(out / rel, _png_bytes(frame))
        rels.append(str(rel))
    return rels


def _judge_view(candidate: Any, kind: str, frames: int) -> Any:
    """What the judge is given for a generated candidate (in memory; the files on disk hold the same pixels)."""
    if kind != "video":
        return candidate
    from ..media import VideoPolicy, load_video
    from .candidates import to_frames

    return load_video(to_frames(candidate), VideoPolicy(num_frames=frames))


def _task_info(t) -> dict:
    return {"name": t.key, "version": t.version, "template": t.template_name, "template_hash": t.template_hash}


def _judge_info(judge) -> dict | None:
    if judge is None:
        return None
    info = dict(judge.backend.describe())
    for attr in ("model_id",):
        if getattr(judge.backend, attr, None):
            info[attr] = getattr(judge.backend, attr)
    info["method"] = judge.method
    return info


def _versions() -> dict:
    from .. import __version__

    return {"unireward": __version__}


# ---------------------------------------------------------------- from a config


def build_sampler(config: ConstructConfig) -> Any:
    """The sampler `config.sampler` names: built in, or a `samplers` plugin, called (policy_model, steps=ddim_steps)."""
    from . import candidates as c

    kind = config.sampler
    if kind == "auto":
        kind = {"image-und": "vlm", "video-und": "vlm", "image-gen": "diffusers-image",
                "video-gen": "diffusers-video"}[config.task]
    if not config.policy_model:
        raise ConfigError("set policy_model (the model being aligned): a folder or hub id")
    if kind not in SAMPLERS:
        return plugins.load("samplers", kind)(config.policy_model, steps=config.ddim_steps)
    size = {k: v for k, v in (("height", config.height), ("width", config.width)) if v is not None}
    if kind == "diffusers-image":
        return c.DiffusersImageSampler.from_pretrained(
            config.policy_model, device=config.device, dtype=config.policy_dtype,
            num_inference_steps=config.num_inference_steps, guidance_scale=config.guidance_scale, **size)
    if kind == "diffusers-video":
        return c.DiffusersVideoSampler.from_pretrained(
            config.policy_model, device=config.device, dtype=config.policy_dtype,
            num_inference_steps=config.num_inference_steps, guidance_scale=config.guidance_scale,
            num_frames=config.num_frames, **size)
    from ..media import VideoPolicy

    return c.VLMSampler.from_pretrained(config.policy_model, dtype=config.policy_dtype, device=config.device,
                                        modality=config.task.split("-")[0], temperature=config.temperature,
                                        top_p=config.top_p, max_new_tokens=config.max_new_tokens,
                                        video_policy=VideoPolicy(num_frames=config.judge_video_frames))


def build_judge(config: ConstructConfig) -> Any:
    """The judge `config.judge` names: a `judges` plugin (its Backend, built with no arguments), else a model
    folder, hub id or server URL."""
    from ..judge import RewardModel
    from ..media import VideoPolicy

    if config.strategy == "random" and not config.judge:
        return None
    if not config.judge:
        raise ConfigError(f"strategy {config.strategy} needs a judge: set judge (a model folder, a server URL, or "
                          "a judge plugin such as the sandbox's 'oracle')")
    policy = VideoPolicy(num_frames=config.judge_video_frames)
    if plugins.known("judges", config.judge):
        return RewardModel(plugins.load("judges", config.judge)(), method=config.judge_method, video_policy=policy)
    kwargs: dict[str, Any] = {"video_policy": policy, "method": config.judge_method}
    if config.judge_backend == "openai":
        if config.judge_served_model:
            kwargs["served_model"] = config.judge_served_model
        return RewardModel.load(config.judge, backend="openai", **kwargs)
    return RewardModel.load(config.judge, backend=config.judge_backend, device=config.device,
                            dtype=config.judge_dtype, batch_size=config.judge_batch_size, **kwargs)


def run_construct(config: ConstructConfig) -> ConstructResult:
    """Read the prompts, build the sampler and the judge, construct (resuming), export. With `config.shard` set,
    only that shard's prompts, into `output_dir/shard-i-of-n` (see `unireward.shards`; `merge.merge_construct`)."""
    from dataclasses import replace

    from ..config import dump_config
    from .candidates import read_prompts
    from .export import export_records

    if not config.prompts:
        raise ConfigError("set prompts: a JSONL of {\"id\", \"prompt\", \"media\"?} lines")
    items = read_prompts(config.prompts)
    if config.limit is not None:
        items = items[: config.limit]
    out = Path(config.output_dir)
    shard = parse_shard(config.shard)
    built = config
    if shard is not None:
        out = out / shard.folder
        owned = shard.select(items, key=lambda it: it.id)
        claim_folder(out, shard_manifest(shard, run_identity(config, items), [(p, it.id) for p, it in owned],
                                         len(items)))
        items = [it for _, it in owned]
        config = replace(config, shard=str(shard))  # what this folder holds: rerunning its config resumes it
        built = replace(config, device=rank_device(config.device, shard.local_rank))
    out.mkdir(parents=True, exist_ok=True)
    dump_config(config, out / CONFIG_FILE)
    judge = build_judge(built)
    sampler = build_sampler(built)
    result = construct(items, sampler, judge, out, task=config.task, strategy=config.strategy,
                       num_candidates=config.num_candidates, both_orders=config.both_orders,
                       score_field=config.score_field, seed=config.seed, chunk_size=config.chunk_size,
                       progress=config.progress, judge_video_frames=config.judge_video_frames,
                       provenance={"prompts_file": str(config.prompts)})
    if config.export:
        result.exports = {k: str(v) for k, v in export_records(out / RECORDS, out).items()}
    return result


# settings that change no record: the shards of one run may differ in them, and in nothing else
FREE_SETTINGS = ("output_dir", "shard", "progress", "chunk_size", "judge_batch_size", "export")


def run_identity(config: ConstructConfig, items: Sequence[PromptItem]) -> dict[str, Any]:
    """The settings that decide a run's records, and a fingerprint of its prompts (ids, texts, media, order):
    equal in every shard of one run."""
    from ..config import to_dict

    digest = hashlib.sha256()
    for it in items:
        digest.update(json.dumps([it.id, it.prompt, _media_ref(it.media), it.meta], default=str).encode() + b"\n")
    settings = {k: v for k, v in to_dict(config).items() if k not in FREE_SETTINGS}
    return {**settings, "prompts_count": len(items), "prompts_sha256": digest.hexdigest()}


def rank_device(device: str | None, local_rank: int | None) -> str | None:
    """`cuda` -> `cuda:<local_rank>` when a launcher gave this process a local rank (one GPU per rank)."""
    return f"cuda:{local_rank}" if device == "cuda" and local_rank is not None else device


def run_construct_from_config(path: str | Path | None, overrides: Sequence[str] = ()) -> ConstructResult:
    from ..config import load_config

    return run_construct(load_config(ConstructConfig, path, overrides))


__all__ = ["CONFIG_FILE", "ConstructConfig", "ConstructResult", "FREE_SETTINGS", "RECORDS", "build_judge",
           "build_sampler", "construct", "rank_device", "run_construct", "run_construct_from_config", "run_identity"]
