"""Run a benchmark end to end: load, judge in batches, append item records, summarize, report.

    from unireward.bench import BenchConfig, run_bench
    results = run_bench(BenchConfig("vlrb", data="~/data/VL-RewardBench", model="path/to/judge", protocol="clean"))

Outputs under `out` (default `runs/bench/<name>-<protocol>[-<model>]`): `manifest.json`, `items.jsonl` (one record per
item, appended as judged: an interrupted run resumes by skipping the ids already there, so no item is lost or
duplicated), `results.json`, `report.md` and `plot.png`. A run refuses to resume into a folder whose manifest
describes a different run (benchmark, protocol, seed, swap, model, templates, frames, data); pass
`fresh=True` to start over.

Scale-out: `shard="i/n"` judges only the items whose id hashes to i (`unireward.shards`), into `out/shard-i-of-n`
(resumable on its own); the reference protocol's swaps are still drawn over the whole dataset in its order, so an
item is shown as in an unsharded run. `merge.merge_bench` joins the n shard folders into exactly what one run writes.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Iterable

from ..errors import ConfigError, UnirewardError
from ..shards import SHARD_FILE, Shard, check_shard, claim_folder, parse_shard, shard_manifest
from .loaders import Benchmark, Item, load_benchmark
from .protocols import PROTOCOLS, point_record, pair_record, reference_swaps
from .report import markdown, plot, published_metric, summarize

ITEMS_FILE = "items.jsonl"
IDENTITY = ("benchmark", "protocol", "seed", "swap_rule", "model", "method", "tasks", "video_policy", "data", "split",
            "shard")
# manifest entries and settings that change no item record: the shards of one run may differ in them only
FREE_ENTRIES = ("timestamp", "backend", "config", "shard")
FREE_SETTINGS = ("out", "shard", "progress", "fresh", "batch_size")


@dataclass
class BenchConfig:
    name: str  # genai-image, genai-video, videogen, vlrb, mmrb, pairs, samples, or a plugin (sandbox)
    data: str | None = None  # the local copy of the benchmark (sandbox: a folder holding heldout.jsonl)
    model: str | None = None  # a model folder / hub id (hf) or a server URL (openai)
    protocol: str = "clean"  # "reference" (published way) or "clean" (both orders, explicit ties)
    seed: int = 0  # seeds the reference protocol's swaps; recorded either way
    out: str | None = None  # output folder; default runs/bench/<name>-<protocol>-<model> (see `default_out`)
    limit: int | None = None  # judge only the first N items (dataset order)
    batch_size: int = 8
    backend: str = "hf"  # "hf" or "openai"
    served_model: str | None = None  # openai backend: the model name on the server
    template: str | None = None  # a Jinja template file replacing the task's own
    frames: int | None = None  # video frames per clip, uniform; None: the judge's own (registered checkpoints
    # bring their authors' policy; else 8)
    family: str | None = None  # prompt family; None: the registered checkpoint's own, else unireward's
    checkpoint: str | None = None  # openai backend: the registered checkpoint the server runs
    method: str | None = None  # "probs", "generate" or None (the model's default; auto)
    split: str | None = None  # dataset split (GenAI-Bench and VL-RewardBench: default "test")
    task: str | None = None  # pairs: the task of every record (default: from the record or inferred)
    swap: bool = True  # reference protocol: apply the published seeded swap where there was one
    fresh: bool = False  # ignore and replace earlier item records in `out`
    progress: bool = True  # show a progress bar over items
    shard: str | None = None  # "i/n": only the items whose id hashes to i, into out/shard-i-of-n; "auto": i/n =
    # RANK/WORLD_SIZE (torchrun, accelerate launch); `unireward bench merge` joins the shards

    def __post_init__(self) -> None:
        check_shard(self.shard)


def default_out(cfg: BenchConfig, name: str) -> str:
    """`runs/bench/<name>-<protocol>-<model>`: the model's folder name or hub id (`/` as `--`), or the served
    model's name, so that benchmarking a second judge never lands in the first one's resumable records."""
    model = cfg.served_model or cfg.checkpoint or cfg.model
    if not model:
        return f"runs/bench/{name}-{cfg.protocol}"
    if model.startswith(("http://", "https://")):
        model = model.split("://", 1)[1]
    local = Path(model)
    slug = local.name if local.exists() else model.strip("/").replace("/", "--")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", slug).strip("-") or "model"
    return f"runs/bench/{name}-{cfg.protocol}-{slug}"


def run_bench(cfg: BenchConfig, judge: Any = None) -> dict[str, Any]:
    """Run `cfg`; `judge` (a RewardModel) replaces loading `cfg.model`. Returns the results dict."""
    if cfg.protocol not in PROTOCOLS:
        raise ConfigError(f"protocol must be one of {PROTOCOLS}, got {cfg.protocol!r}")
    shard = parse_shard(cfg.shard)
    cfg = replace(cfg, shard=str(shard) if shard else None)
    bench = load_benchmark(cfg.name, cfg.data, cfg.split, cfg.task)
    items = bench.items[: cfg.limit] if cfg.limit is not None else bench.items
    rule = bench.swap_rule if cfg.protocol == "reference" and cfg.swap else None
    # drawn over the whole dataset in its order: --limit, a resumed run and every shard see a full run's swaps
    swaps = dict(zip((it.id for it in bench.items), reference_swaps(len(bench.items), cfg.seed, rule)))
    judge = judge or _load_judge(cfg, shard)
    out = Path(cfg.out or default_out(cfg, bench.name))
    manifest = _manifest(cfg, bench, items, judge, rule)  # of the whole run, a shard's too
    summary = summary_settings(cfg, bench)
    if shard is not None:
        out = out / shard.folder
        manifest["shard"] = str(shard)
        owned = shard.select(items, key=lambda it: it.id)
        if cfg.fresh:
            (out / SHARD_FILE).unlink(missing_ok=True)
        claim_folder(out, shard_manifest(shard, run_identity(manifest), [(p, it.id) for p, it in owned], len(items),
                                         summary=summary))
        items = [it for _, it in owned]
    out.mkdir(parents=True, exist_ok=True)
    path = out / ITEMS_FILE
    _check_resume(out, manifest, cfg.fresh)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    done = read_records(path)
    pending = [it for it in items if it.id not in done]
    with path.open("a", encoding="utf-8") as f, _progress(cfg, len(items), len(items) - len(pending)) as bar:
        for chunk in _chunks(pending, max(cfg.batch_size, 1)):
            for rec in judge_items(judge, chunk, cfg.protocol, swaps, cfg.template,
                                   both_separately=cfg.protocol == "reference" and bench.order_rule == "both"):
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                done[rec["id"]] = rec
            f.flush()
            bar.update(len(chunk))
    return write_results(out, [done[it.id] for it in items], manifest, summary)


def summary_settings(cfg: BenchConfig, bench: Benchmark) -> dict[str, Any]:
    """How `write_results` summarizes a run of `cfg` on `bench`: groupings, unparsed-as-tie, macro groupings, notes."""
    as_tie = cfg.protocol == "reference" and bench.unparsed_as_tie
    notes = list(bench.notes)
    if as_tie:
        notes.append("reference protocol: outputs without a verdict count as tie predictions, as in the published "
                     "script (they are still counted under 'unparsed')")
    return {"groupings": bench.groupings, "unparsed_as_tie": as_tie,
            "macro_groupings": list(bench.groupings) if bench.name == "vlrb" else [], "notes": notes,
            "published": bench.published}


def write_results(out: Path, records: list[dict], manifest: dict, summary: dict[str, Any]) -> dict[str, Any]:
    """Summarize item records (in dataset order) as `summary` says; write results.json, report.md, plot.png."""
    results = summarize(records, summary["groupings"], unparsed_as_tie=summary["unparsed_as_tie"],
                        macro_groupings=summary["macro_groupings"])
    if summary.get("published"):
        results["published"] = published_metric(summary["published"], records)
    results.update(manifest=manifest, n_items=len(records), notes=list(summary["notes"]))
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "report.md").write_text(markdown(results))
    plot(results, out / "plot.png")
    results["out"] = str(out)
    return results


def run_identity(manifest: dict) -> dict[str, Any]:
    """What makes item records comparable: the manifest and settings less those that change no record."""
    same = {k: v for k, v in manifest.items() if k not in FREE_ENTRIES}
    return {**same, "config": {k: v for k, v in manifest["config"].items() if k not in FREE_SETTINGS}}


def count_errors(results: dict[str, Any]) -> int:
    """Items whose record is an error (media that could not be read, a judge that failed)."""
    overall = results["overall"] or {}
    parts = [overall[k] for k in ("pair", "point") if overall.get(k)] if "n" not in overall else [overall]
    return sum(p.get("errors", 0) for p in parts)


def judge_items(judge: Any, chunk: list[Item], protocol: str, swaps: dict[str, bool],
                template: str | None = None, both_separately: bool = False) -> list[dict]:
    """Judge a batch of items (grouped by task); one record per item, in the chunk's order. `both_separately`:
    each pair is also judged swapped, as a judgement of its own, recorded in `orders` (dataset order: the
    verdict shown as given, then the swapped one mapped back); `winner` is the first. Items no task can judge
    (`Item.skip`) and items of a task the judge refuses (a scorer asked an understanding question) are
    recorded as skipped, with the reason."""
    from ..errors import TaskError
    from ..grouping import unswap
    from ..judge import PairRequest, PointRequest
    from ..tasks import get_task

    recs: dict[str, dict] = {}
    for task in dict.fromkeys(it.task for it in chunk):
        group = [it for it in chunk if it.task == task]
        t = get_task(task)
        fetched, ready = {}, []
        for it in group:
            if it.skip:
                recs[it.id] = _base(it, "pair" if t.is_pair else "point") | _error(t.is_pair, it.skip, "skipped")
                continue
            try:
                fetched[it.id] = it.fetch()
                ready.append(it)
            except (UnirewardError, OSError) as e:  # a broken row is an error record, not a crash
                recs[it.id] = _base(it, "pair" if t.is_pair else "point") | _error(t.is_pair, str(e))
        if t.is_pair:
            reqs = []
            for it in ready:
                a, b, media = fetched[it.id]
                if swaps.get(it.id):
                    a, b = b, a
                reqs.append(PairRequest(it.prompt, a, b, media))
            both = protocol == "clean"
            if both_separately:
                reqs += [PairRequest(r.prompt, r.b, r.a, r.media) for r in list(reqs)]
            try:
                results = judge.rank_batch(reqs, task=task, both_orders=both, template=template) if reqs else []
            except TaskError as e:
                results = []
                for it in ready:
                    recs[it.id] = _base(it, "pair") | _error(True, str(e), "skipped")
                ready = []
            for n, (it, res) in enumerate(zip(ready, results)):
                recs[it.id] = _base(it, "pair") | pair_record(res, bool(swaps.get(it.id)))
                if both_separately:
                    other = unswap(results[len(ready) + n].winner)
                    recs[it.id]["orders"] = [recs[it.id]["winner"], unswap(other) if swaps.get(it.id) else other]
        else:
            reqs = [PointRequest(it.prompt, *fetched[it.id]) for it in ready]
            try:
                results = judge.score_batch(reqs, task=task, template=template) if reqs else []
            except TaskError as e:
                results = []
                for it in ready:
                    recs[it.id] = _base(it, "point") | _error(False, str(e), "skipped")
            for it, res in zip(ready, results):
                recs[it.id] = _base(it, "point") | point_record(res)
    return [recs[it.id] for it in chunk]


def _base(it: Item, kind: str) -> dict:
    return {"id": it.id, "task": it.task, "kind": kind, "gold": it.gold, "groups": it.groups}


def _error(is_pair: bool, reason: str, status: str = "error") -> dict:
    if is_pair:
        return {"winner": None, "shown_winner": None, "swapped": False, "status": status, "consistent": None,
                "probs": None, "margin": None, "raw": [], "reason": reason, "method": ""}
    return {"score": None, "expected_score": None, "status": status, "raw": "", "reason": reason, "method": ""}


def read_records(path: Path) -> dict[str, dict]:
    """Item records already written, by id. A torn last line (a crash mid-write) is cut off the file so that
    appending continues on a clean line; a later duplicate id (never written by us) keeps the first record."""
    if not path.is_file():
        return {}
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        path.write_bytes(data)
    done: dict[str, dict] = {}
    for n, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise ConfigError(f"{path}:{n}: not a valid item record; remove the line or rerun with --fresh") from None
        done.setdefault(str(rec["id"]), rec)
    return done


def _manifest(cfg: BenchConfig, bench: Benchmark, items: list[Item], judge: Any, rule: str | None) -> dict:
    import unireward
    from ..tasks import get_task

    tasks = {}
    for name in dict.fromkeys(it.task for it in bench.items):
        kind = get_task(name).kind
        t = judge.task(name, kind, template=cfg.template)  # the judge's own spec decides family and variant
        tasks[t.key] = {"template": t.template_name, "template_hash": t.template_hash, "version": t.version}
    return {
        "benchmark": bench.name,
        "protocol": cfg.protocol,
        "seed": cfg.seed,
        "swap_rule": rule,
        "model": cfg.model or getattr(judge.backend, "model_id", None) or judge.backend.name,
        "backend": judge.backend.describe(),
        "method": judge.method,
        "family": judge.family,
        "judge_spec": {k: v for k, v in judge.spec.to_dict().items() if k not in ("model", "sources")},
        "tasks": tasks,
        "video_policy": judge.video_policy.to_dict(),
        "image_policy": judge.image_policy.to_dict(),
        "both_orders": cfg.protocol == "clean",
        "data": str(Path(cfg.data).expanduser().resolve()) if cfg.data else bench.source,
        "source": bench.source,
        "split": cfg.split,
        "limit": cfg.limit,
        "n_items": len(items),
        "unireward_version": unireward.__version__,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": asdict(cfg),
    }


def _check_resume(out: Path, manifest: dict, fresh: bool) -> None:
    old_path, items = out / "manifest.json", out / ITEMS_FILE
    if fresh:
        items.unlink(missing_ok=True)
        return
    if not items.is_file() or not old_path.is_file():
        return
    old = json.loads(old_path.read_text())
    diff = [k for k in IDENTITY if old.get(k) != manifest.get(k)]
    if diff:
        raise ConfigError(f"{out} holds results of a different run ({', '.join(diff)} differ); pass another "
                          "--out, or --fresh to replace them")


def _load_judge(cfg: BenchConfig, shard: Shard | None = None):
    from ..judge import RewardModel
    from ..media import VideoPolicy

    if not cfg.model:
        raise ConfigError("pass --model (a model folder or hub id, or a server URL with --backend openai)")
    kwargs: dict[str, Any] = {"method": cfg.method, "family": cfg.family, "checkpoint": cfg.checkpoint}
    if shard is not None and shard.local_rank is not None and cfg.backend == "hf":
        import torch

        if torch.cuda.is_available():  # one GPU per rank, as the launcher numbered them
            kwargs["device"] = f"cuda:{shard.local_rank}"
    if cfg.frames is not None:
        kwargs["video_policy"] = VideoPolicy(num_frames=cfg.frames, max_frames=max(32, cfg.frames))
    if cfg.backend == "openai" and cfg.served_model:
        kwargs["served_model"] = cfg.served_model
    return RewardModel.load(cfg.model, backend=cfg.backend, batch_size=cfg.batch_size, **kwargs)


def _chunks(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i: i + size]


def _progress(cfg: BenchConfig, total: int, initial: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=f"bench {cfg.name}", unit="item", disable=not cfg.progress)
