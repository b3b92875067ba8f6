"""`unireward prompt`: a dry run printing exactly what a judge would receive, one JSON line per request.

    unireward prompt --model unifiedreward-2.0-qwen3vl-8b --task image-gen/pair --prompt "a red circle" a.png b.png
    unireward prompt --family think --task video-gen/pair --prompt "a ball rolls" v1.mp4 v2.mp4
    unireward prompt --model unifiedreward-edit-qwen35-9b --task image-edit/point --source in.png \\
        --prompt "make the car red" edit.png
    unireward prompt --model DIR --task image-und/pair --input requests.jsonl

Each line: {"id", "family", "variant", "task", "messages": [{"role": "user", "content": [{"type": "text",
"text"} | {"type": "image", "source"} | {"type": "video", "source"}]}], "chat_template_kwargs", "generation"}.
A video sent as frames is one image part per frame, its source naming the file and the frame's index in it
("clip.mp4#frame=12"). The options are those of `rank` / `score` (the task decides how many candidates);
--model names a registered checkpoint or a local folder, whose registry entry and unireward.json are read but
whose weights are not loaded; without --model, --family picks the prompts. Media files are opened (frames are
sampled as the judge would). A request that cannot be built gives {"id", "error"}; the exit code is then 1.
"generation" is how the judge would decode (`JudgeSpec.generation`, the same rule the judge runs: "method" is
probs, think+probs or generate, as over a backend that reads token probabilities); "warnings" lists the
fallbacks the spec took (e.g. a served model that names no registered checkpoint).
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers) -> None:
    from .judge import add_common_options

    p = subparsers.add_parser("prompt", help="print the requests a judge would receive (dry run, JSONL)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(p, "image-gen/pair", model_required=False)
    p.add_argument("--both-orders", action="store_true", help="also print each pair in the swapped order")
    p.add_argument("candidates", nargs="*", help="the candidates (media paths or answer texts)")
    p.set_defaults(func=run)


def dry_spec(args):
    """The judge spec resolved exactly as `rank` / `score` would resolve it (no weights loaded)."""
    from ..judging.spec import resolve_spec
    from ..media import ImagePolicy, VideoPolicy
    from .judge import judge_options

    options = judge_options(args, ImagePolicy, VideoPolicy)
    family = options.pop("family")
    checkpoint = options.pop("checkpoint")
    served = args.served_model if args.backend == "openai" else None
    return resolve_spec(args.model or "", backend=args.backend, family=family, checkpoint=checkpoint,
                        served_model=served, **options)


def run(args) -> int:
    import json

    from ..errors import ConfigError, UnirewardError
    from ..tasks import get_task
    from .judge import context, read_requests, request_candidates

    if not args.model and not args.family:
        raise ConfigError("pass --model (a registered checkpoint or a model folder) or --family")
    spec = dry_spec(args)
    kind = get_task(args.task).kind
    reqs = read_requests(args, 2 if kind == "pair" else 1)
    bad = 0
    for r in reqs:
        try:
            if "error" in r:  # a row of --input that could not be read
                raise ConfigError(r["error"])
            cands = request_candidates(r, ["a", "b"] if kind == "pair" else ["candidate"], 2 if kind == "pair" else 1)
            for swap in ([False, True] if args.both_orders and kind == "pair" else [False]):
                line = describe_request(spec, args.task, kind, r.get("prompt"), cands, context(r), swap,
                                        dimensions=args.dimensions, template=args.template, variant=args.variant)
                print(json.dumps({"id": r.get("id"), **line}, ensure_ascii=False), flush=True)
        except UnirewardError as e:
            bad += 1
            print(json.dumps({"id": r.get("id"), "error": str(e)}, ensure_ascii=False), flush=True)
    return 1 if bad else 0


def _label(src: Any) -> str:
    from pathlib import Path

    if isinstance(src, (str, Path)):
        return str(src)
    return f"<{type(src).__name__}>"


def describe_request(spec, task: str, kind: str, prompt: Any, candidates: list, media: Any, swap: bool = False,
                     dimensions: bool = False, template: str | None = None, variant: str | None = None) -> dict:
    """One request as the judge of `spec` would receive it, through the judge's own preparation and renderer;
    each image, frame and video is named by the file it came from."""
    from PIL import Image

    from ..errors import TaskError
    from ..judging.render import load, prepare, render
    from ..media import Video

    labels: dict[int, str] = {}
    keep: list[Any] = []  # the loaded objects stay alive so that their ids stay unique

    def recording(spec_, t_, src):
        obj = load(spec_, t_, src)
        keep.append(obj)
        labels[id(obj)] = _label(src)
        if isinstance(obj, Video):
            for frame, index in zip(obj.frames, obj.indices):
                labels[id(frame)] = f"{_label(src)}#frame={index}"
        return obj

    def part(p: Any) -> dict:
        what = "video" if isinstance(p, Video) else "image" if isinstance(p, Image.Image) else type(p).__name__
        return {"type": what, "source": labels.get(id(p), "<unnamed>")}

    t = spec.task(task, kind, dimensions, template, variant)
    prepared = prepare(spec, t, prompt, list(candidates), media, loader=recording)
    if prepared.error is not None:
        raise TaskError(prepared.error)
    chat = render(t, prepared, swap)
    # greedy always; the method is the judge's own rule, as over a backend that reads token probabilities
    return {"family": t.family, "variant": t.variant, "task": t.key, **({"order": "swapped"} if swap else {}),
            "messages": chat.messages(media=part), "chat_template_kwargs": dict(spec.chat_template_kwargs),
            "generation": spec.generation(t), **({"warnings": list(spec.warnings)} if spec.warnings else {})}
