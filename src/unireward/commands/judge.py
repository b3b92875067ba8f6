"""`unireward rank`, `unireward score`, `unireward rank-group`: judge from the command line, JSON lines out.

    unireward rank --model DIR --task image-gen/pair --prompt "a red circle" a.png b.png --both-orders
    unireward rank --model DIR --task image-und/pair --media scene.png --prompt "What colour?" "Red." "Blue."
    unireward score --model DIR --task video-gen/point --prompt "a ball rolling" clip.mp4
    unireward rank-group --model DIR --task image-gen/pair --prompt "a cat" 1.png 2.png 3.png 4.png
    unireward rank --model DIR --task image-gen/pair --input requests.jsonl > verdicts.jsonl
    unireward rank --model unifiedreward-edit-qwen3vl-8b --task image-edit/pair --source in.png \
        --prompt "make the car red" edit1.png edit2.png

With --input, each line is a JSON object: rank {"prompt", "a", "b", "media"?, "id"?}; score {"prompt",
"candidate", "media"?, "id"?}; rank-group {"prompt", "candidates": [...], "media"?, "id"?}. Relative media paths
are resolved against the input file's folder. Lines are UTF-8 (a byte-order mark is skipped) of at most a million
characters; a line that cannot be read or judged gets its own error row and the others are judged. Generation
tasks take media as candidates; understanding tasks take text answers as candidates and the image or video as
--media / "media"; edit tasks take the edited images as candidates and the source image as --source / "source". A registered checkpoint (`unireward models`) is
judged with its own prompt family; --family and --variant choose another.
"""

from __future__ import annotations

import argparse

MAX_LINE_CHARS = 1_000_000  # per --input line: texts and media paths (a judge's context is far shorter)


def add_judge_choice(p: argparse.ArgumentParser) -> None:
    """How the judge is run, shared by the judging commands and `serve`: prompt family, variant, the checkpoint
    behind a server, decision method, reasoning first or not."""
    p.add_argument("--family", default=None, help="prompt family (1.0, 2.0, think, edit, flex, unireward); "
                   "default: the registered checkpoint's own, else unireward")
    p.add_argument("--variant", default=None, help="a non-default prompt of the family, by name")
    p.add_argument("--checkpoint", default=None, help="--backend openai: the registered checkpoint the server runs "
                   "(its family and chat template options)")
    p.add_argument("--method", default=None, choices=["auto", "probs", "generate"],
                   help="probs: read the decision from token probabilities; generate: generate and parse")
    p.add_argument("--reasoning", default=None, action=argparse.BooleanOptionalAction,
                   help="the judge writes its reasoning (Think, a checklist) before the verdict: generate it, then "
                        "read the verdict; default: what the family or the folder's unireward.json says")


def judge_choice(args) -> dict:
    return {"family": args.family, "variant": args.variant, "checkpoint": args.checkpoint, "method": args.method,
            "reasoning": args.reasoning}


def add_common_options(p: argparse.ArgumentParser, default_task: str, model_required: bool = True) -> None:
    p.add_argument("--model", required=model_required, help="judge: a short name from `unireward models`, a hub "
                   "id, a local directory, or a server URL with --backend openai")
    add_judge_choice(p)
    p.add_argument("--backend", default="hf", choices=["hf", "openai", "vllm"],
                   help="transformers in process, an OpenAI-compatible server (vLLM, SGLang, unireward serve), "
                        "or vLLM's engine in process")
    p.add_argument("--served-model", default=None, help="model name on the server (--backend openai)")
    p.add_argument("--task", default=default_task, help=f"task name (default {default_task}); see `unireward models --tasks`")
    p.add_argument("--prompt", help="caption (generation tasks) or question (understanding tasks)")
    p.add_argument("--media", help="the image or video that understanding tasks ask about")
    p.add_argument("--source", help="edit tasks: the source image that was edited (same as --media)")
    p.add_argument("--input", help="JSONL file of requests instead of --prompt and candidates")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--template", help="a Jinja template file to use instead of the task's own")
    p.add_argument("--dimensions", action="store_true", help="ask for per-dimension judgements (generation tasks)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="generation budget (default 512)")
    p.add_argument("--frames", type=int, default=None, help="video frames sampled uniformly (default 8)")
    p.add_argument("--fps", type=float, default=None, help="sample videos at this rate instead of a frame count")
    p.add_argument("--max-pixels", type=int, default=None, help="pixel budget per image or video frame")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default="auto")
    p.add_argument("--allow-urls", action="store_true", help="allow http(s) media (off by default)")
    p.add_argument("--no-progress", action="store_true")


def register(subparsers) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser("rank", help="judge which of two candidates is better", description=__doc__,
                              formatter_class=fmt)
    add_common_options(p, "image-gen/pair")
    p.add_argument("--both-orders", action="store_true", help="judge both orders and combine (position debiasing)")
    p.add_argument("candidates", nargs="*", help="two candidates (media paths or answer texts)")
    p.set_defaults(func=run_rank)
    p = subparsers.add_parser("score", help="score one candidate", description=__doc__, formatter_class=fmt)
    add_common_options(p, "image-gen/point")
    p.add_argument("candidates", nargs="*", help="one candidate (media path or answer text)")
    p.set_defaults(func=run_score)
    p = subparsers.add_parser("rank-group", help="rank N candidates (Bradley-Terry over pairwise judgements)",
                              description=__doc__, formatter_class=fmt)
    add_common_options(p, "image-gen/pair")
    p.add_argument("--both-orders", action="store_true")
    p.add_argument("--schedule", default="auto", choices=["auto", "round-robin", "sparse"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("candidates", nargs="*", help="N candidates (media paths or answer texts)")
    p.set_defaults(func=run_group)


def load_judge(args):
    from ..judge import RewardModel
    from ..media import ImagePolicy, VideoPolicy

    kwargs = ({"served_model": args.served_model} if args.backend == "openai" else {"dtype": args.dtype}
              if args.backend == "vllm" else {"device": args.device, "dtype": args.dtype})
    if args.no_progress:  # also the "Loading weights" bars of transformers and the hub's download bars
        quiet_loading()
    return RewardModel.load(args.model, backend=args.backend, batch_size=args.batch_size,
                            **judge_options(args, ImagePolicy, VideoPolicy), **kwargs)


def judge_options(args, image_policy_cls, video_policy_cls) -> dict:
    """The judge's keyword arguments from the common options; media policies only when an option sets them
    (a registered checkpoint otherwise brings its own)."""
    vp: dict = {}
    if args.fps is not None:
        vp.update(fps=args.fps, num_frames=None)
    elif args.frames is not None:
        vp.update(num_frames=args.frames, max_frames=max(args.frames, video_policy_cls().max_frames))
    if args.max_pixels:
        vp["max_pixels"] = args.max_pixels
    return {"image_policy": image_policy_cls(max_pixels=args.max_pixels) if args.max_pixels else None,
            "video_policy": video_policy_cls(**vp) if vp else None, "max_new_tokens": args.max_new_tokens,
            "allow_urls": args.allow_urls, **judge_choice(args)}


def quiet_loading() -> None:
    """Hide the progress bars that loading a model draws (transformers' "Loading weights", hub downloads)."""
    import os

    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def read_requests(args, need: int | None) -> list[dict]:
    """Requests from --input (JSONL) or from --prompt and positional candidates."""
    import json
    from pathlib import Path

    from ..errors import ConfigError

    if args.input:
        path = Path(args.input)
        if not path.is_file():
            raise ConfigError(f"--input {path}: no such file")
        out = []
        for i, line in _lines(path):
            if line is None:
                out.append({"id": str(i), "error": f"{path}:{i}: the line is over the limit of {MAX_LINE_CHARS:,} "
                                                  "characters (texts and media paths, never media data)"})
                continue
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:  # this row is an error line; the others are judged
                out.append({"id": str(i), "error": f"{path}:{i}: not valid JSON ({e.msg})"})
                continue
            if not isinstance(d, dict):
                out.append({"id": str(i), "error": f"{path}:{i}: expected a JSON object, got {type(d).__name__}"})
                continue
            d = {k: _resolve(v, path.parent) if k in ("a", "b", "candidate", "candidates", "media", "source") else v
                 for k, v in d.items()}
            d.setdefault("id", str(i))
            out.append(d)
        return out
    if args.prompt is None:
        raise ConfigError("pass --prompt and the candidates, or --input FILE.jsonl")
    if need is not None and len(args.candidates) != need:
        raise ConfigError(f"expected {need} candidate(s), got {len(args.candidates)}")
    return [{"prompt": args.prompt, "candidates": list(args.candidates), "media": args.media,
             "source": getattr(args, "source", None), "id": "0"}]


def _lines(path):
    """(number, line) of a JSONL file, split at line breaks only (not at U+2028 and the like, which JSON strings
    may hold raw); UTF-8 with an optional byte-order mark. A line over MAX_LINE_CHARS is skipped unread: None."""
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline=None) as f:
        i = 0
        while line := f.readline(MAX_LINE_CHARS + 1):
            i += 1
            if len(line) > MAX_LINE_CHARS and not line.endswith("\n"):
                while line and not line.endswith("\n"):  # the rest of it, a chunk at a time
                    line = f.readline(1 << 20)
                yield i, None
                continue
            yield i, line


def context(req: dict):
    """The request's media beside the candidates: an edit's source image, or what an answer is about."""
    return req.get("source") or req.get("media")


def _resolve(v, root):
    from pathlib import Path

    if isinstance(v, list):
        return [_resolve(x, root) for x in v]
    if isinstance(v, str) and not Path(v).is_absolute() and (Path(root) / v).exists():
        return str(Path(root) / v)
    return v


def _emit(req: dict, result: dict) -> bool:
    """Print one result line; True when the item failed (status "error")."""
    import json

    line = json.dumps({"id": req.get("id"), **result}, ensure_ascii=True)
    print(line, flush=True)
    return result.get("status") == "error"


def _finish(reqs: list[dict], results: list[dict]) -> int:
    """Exit status: 1 when any item failed (its line has status "error" and the reason), else 0. Unparsed
    verdicts are results (status "unparsed") and do not fail the command."""
    failed = sum(_emit(r, res) for r, res in zip(reqs, results))
    if failed:
        import sys

        print(f"unireward: {failed} of {len(results)} item(s) failed (status \"error\")", file=sys.stderr)
    return 1 if failed else 0


def request_candidates(r: dict, fields: list[str], need: int) -> list:
    """The row's candidates: its "candidates" list, else its named fields (None where one is missing)."""
    given = r.get("candidates")
    if isinstance(given, list) and len(given) == need:
        return given
    return [r.get(f) for f in fields]


def _judge_rows(reqs: list[dict], judge_ok) -> list[dict]:
    """Judge the well-formed rows in one batch; rows that could not be read keep their error, and a row the judge
    fails on gets its own (the batch is split until the row at fault is found; the others are judged)."""
    from ..serve.batcher import run_isolated

    ok = [r for r in reqs if "error" not in r]
    done = iter(run_isolated(judge_ok, ok) if ok else [])
    out = []
    for r in reqs:
        res = {"status": "error", "reason": r["error"]} if "error" in r else next(done)
        out.append(_failed(res) if isinstance(res, Exception) else res if isinstance(res, dict) else res.to_dict())
    return out


def _failed(e: Exception) -> dict:
    return {"status": "error", "reason": f"{type(e).__name__}: {e}"}


def run_rank(args) -> int:
    from ..judge import PairRequest

    reqs = read_requests(args, 2)
    rm = load_judge(args)
    results = _judge_rows(reqs, lambda ok: rm.rank_batch(
        [PairRequest(r.get("prompt"), *request_candidates(r, ["a", "b"], 2), media=context(r), id=r.get("id"))
         for r in ok], task=args.task, both_orders=args.both_orders, dimensions=args.dimensions,
        template=args.template, progress=not args.no_progress, variant=args.variant))
    return _finish(reqs, results)


def run_score(args) -> int:
    from ..judge import PointRequest

    reqs = read_requests(args, 1)
    rm = load_judge(args)
    results = _judge_rows(reqs, lambda ok: rm.score_batch(
        [PointRequest(r.get("prompt"), request_candidates(r, ["candidate"], 1)[0], media=context(r), id=r.get("id"))
         for r in ok], task=args.task, dimensions=args.dimensions, template=args.template,
        progress=not args.no_progress, variant=args.variant))
    return _finish(reqs, results)


def run_group(args) -> int:
    from tqdm.auto import tqdm

    reqs = read_requests(args, None)
    rm = load_judge(args)
    results = []
    for r in tqdm(reqs, desc="groups", disable=args.no_progress or len(reqs) < 2):
        if "error" in r:
            results.append({"status": "error", "reason": r["error"]})
            continue
        try:  # one group's failure is its own row
            results.append(rm.rank_group(r.get("prompt"), r.get("candidates"), task=args.task, media=context(r),
                                         schedule=args.schedule, both_orders=args.both_orders,
                                         seed=args.seed).to_dict())
        except Exception as e:  # noqa: BLE001 - e.g. an input the model's processor refuses
            results.append(_failed(e))
    return _finish(reqs, results)
