"""`unireward models`: list the registered judges and the tasks.

    unireward models            # every registered judge: short name, hub id, prompt family, backbone, options
    unireward models --json     # the same, one JSON object per line
    unireward models --tasks    # the task registry

`RewardModel.load(<short name | hub id | local copy>)` judges a registered checkpoint with its family's prompts
and its authors' settings (see models/registry.yaml and docs/released-judges.md).
"""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("models", help="list registered judges (and tasks with --tasks)", description=__doc__)
    p.add_argument("--tasks", action="store_true", help="list the tasks instead")
    p.add_argument("--json", action="store_true", help="one JSON object per judge")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.tasks:
        from ..tasks import get_task, list_tasks

        for name in list_tasks():
            t = get_task(name)
            scale = f"scale {t.answer.low}-{t.answer.high}" if not t.is_pair else "winner 1/2/tie"
            dims = f", dimensions: {', '.join(t.available_dimensions)}" if t.available_dimensions else ""
            print(f"{name:18s} v{t.version}  {t.template_name:16s} {scale}{dims}")
        return 0
    import json

    from ..models.registry import list_models

    for m in list_models():
        opts = m.options()
        if args.json:
            print(json.dumps({"name": m.name, "checkpoint": m.checkpoint, "family": m.family, **opts}))
            continue
        video = f"{m.video_frames} frames as images" if m.video == "frames" else \
            (f"native {m.video_fps:g} fps" if m.video_fps else "native")
        shown = {"variant": m.variant, "video": video, "max_new_tokens": m.max_new_tokens,
                 "chat_template_kwargs": m.chat_template_kwargs or None}
        rest = "  ".join(f"{k}={v if isinstance(v, (str, int)) else json.dumps(v)}" for k, v in shown.items() if v)
        print(f"{m.name:32s} {m.checkpoint:42s} {m.family:9s} {m.backbone:10s} {rest}")
    return 0
