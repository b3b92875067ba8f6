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
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers) -> None:
    from .judge import _common

    p = subparsers.add_parser("prompt", help="print the requests a judge would receive (dry run, JSONL)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(p, "image-gen/pair", model_required=False)
    p.add_argument("--both-orders", action="store_true", help="also print each pair in the swapped order")
    p.add_argument("candidates", nargs="*", help="the candidates (media paths or answer texts)")
    p.set_defaults(func=run)


def dry_judge(args):
    """A RewardModel resolved exactly as `rank` / `score` would load it, with a backend that refuses to run."""
    from ..judge import judge_settings
    from ..media import ImagePolicy, VideoPolicy
    from .judge import judge_options

    options = judge_options(args, ImagePolicy, VideoPolicy)
    family = options.pop("family")
    checkpoint = options.pop("checkpoint")
    kwargs: dict[str, Any] = {"served_model": args.served_model} if args.backend == "openai" else {}
    settings = judge_settings(args.model or "", backend=args.backend, family=family, checkpoint=checkpoint,
                              **options, **kwargs)
    return _DryRun(settings.family, settings.judge_kwargs), settings.backend_kwargs.get("chat_template_kwargs") or {}


def run(args) -> int:
    import json

    from ..errors import ConfigError, UnirewardError
    from ..tasks import get_task
    from .judge import _candidates, _requests, context

    if not args.model and not args.family:
        raise ConfigError("pass --model (a registered checkpoint or a model folder) or --family")
    rm, template_kwargs = dry_judge(args)
    kind = get_task(args.task).kind
    reqs = _requests(args, 2 if kind == "pair" else 1)
    bad = 0
    for r in reqs:
        try:
            if "error" in r:  # a row of --input that could not be read
                raise ConfigError(r["error"])
            cands = _candidates(r, ["a", "b"] if kind == "pair" else ["candidate"], 2 if kind == "pair" else 1)
            for swap in ([False, True] if args.both_orders and kind == "pair" else [False]):
                line = rm.describe_request(args.task, kind, r.get("prompt"), cands, context(r), swap, args)
                print(json.dumps({"id": r.get("id"), **line, "chat_template_kwargs": template_kwargs},
                                 ensure_ascii=False), flush=True)
        except UnirewardError as e:
            bad += 1
            print(json.dumps({"id": r.get("id"), "error": str(e)}, ensure_ascii=False), flush=True)
    return 1 if bad else 0


def _label(src: Any) -> str:
    from pathlib import Path

    if isinstance(src, (str, Path)):
        return str(src)
    return f"<{type(src).__name__}>"


class _DryRun:
    """Builds requests through the judge's own preparation and rendering, remembering where each image, frame and
    video came from so that the printed messages name their files."""

    def __init__(self, family: str, judge_kwargs: dict):
        from ..backends.base import Backend
        from ..judge import RewardModel

        class NoBackend(Backend):
            name = "dry-run"
            supports_probs = True  # show the request as a judge with probabilities would make it

            def generate(self, inputs, max_new_tokens=256, stop=None, prefix=""):
                raise RuntimeError("unireward prompt never runs a model")

            def choice_probs(self, inputs, prefix, choices):
                raise RuntimeError("unireward prompt never runs a model")

        labels: dict[int, str] = {}
        keep: list[Any] = []  # the loaded objects stay alive so that their ids stay unique

        class Recording(RewardModel):
            def _load(self, t, src, *args, **kwargs):
                from ..media import Video

                obj = super()._load(t, src, *args, **kwargs)
                keep.append(obj)
                labels[id(obj)] = _label(src)
                if isinstance(obj, Video):
                    for frame, index in zip(obj.frames, obj.indices):
                        labels[id(frame)] = f"{_label(src)}#frame={index}"
                return obj

        self.rm = Recording(NoBackend(), family=family, **judge_kwargs)
        self.labels = labels

    def describe_request(self, task: str, kind: str, prompt: str, candidates: list, media: Any, swap: bool,
                         args) -> dict:
        from ..errors import TaskError

        rm = self.rm
        t = rm._task(task, kind, args.dimensions, args.template, args.variant)
        prepared = rm._prepare(t, prompt, list(candidates), media)
        if prepared.error is not None:
            raise TaskError(prepared.error)
        chat = rm._render(t, prepared, swap)
        return {"family": getattr(t, "family", rm.family), "variant": getattr(t, "variant", rm.variant),
                "task": t.key, **({"order": "swapped"} if swap else {}),
                "messages": [{"role": "user", "content": [self._part(p) for p in chat.parts]}],
                "generation": self._generation(t)}

    def _part(self, p: Any) -> dict:
        from PIL import Image

        from ..media import Video

        if isinstance(p, str):
            return {"type": "text", "text": p}
        kind = "video" if isinstance(p, Video) else "image" if isinstance(p, Image.Image) else type(p).__name__
        return {"type": kind, "source": self.labels.get(id(p), "<unnamed>")}

    def _generation(self, t) -> dict:
        """How the judge would decode: greedy always; the answer prefix and choices it reads, or the budget and
        stop strings when it generates."""
        fmt = t.answer
        rm = self.rm
        readable = getattr(fmt, "readable", True) and not fmt.dimensions
        out: dict[str, Any] = {"method": rm.method if readable else "generate", "temperature": 0,
                               "max_new_tokens": rm.max_new_tokens}
        if readable and rm.method != "generate":  # where the choice is read, and the choices
            out["answer_prefix"] = fmt.prefix
            out["choices"] = list(fmt.choices().values())
            stop = getattr(fmt, "reasoning_stop", None)
            if stop:
                out["reasoning_stop"] = stop
        return out
