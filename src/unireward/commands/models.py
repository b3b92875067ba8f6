"""`unireward models`: list the registered judges and the tasks.

    unireward models            # short names -> checkpoints
    unireward models --tasks    # the task registry
"""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("models", help="list registered judges (and tasks with --tasks)", description=__doc__)
    p.add_argument("--tasks", action="store_true", help="list the tasks instead")
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
    from ..models.registry import list_models

    for m in list_models():
        print(f"{m.name:28s} {m.checkpoint:42s} {m.family:11s} method={m.method}")
    return 0
