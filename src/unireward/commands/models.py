"""`unireward models`: list the registered judges, the scorers and the tasks.

    unireward models            # every registered judge (short name, hub id, prompt family, backbone, options),
                                # then every scorer (short name, hub id, library, units, pair-link temperature)
    unireward models --json     # the same, one JSON object per line ("kind": "judge" or "scorer")
    unireward models --tasks    # the task registry

`RewardModel.load(<short name | hub id | local copy>)` judges a registered checkpoint with its family's prompts
and its authors' settings (see models/registry.yaml and docs/released-judges.md), or runs a scorer
(models/scorers.yaml) through the same API: score, rank (P(A > B) = sigmoid((s_A - s_B) / T)), group_reward.
"""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("models", help="list registered judges and scorers (and tasks with --tasks)",
                              description=__doc__)
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
    from ..models.scorers import list_scorers

    for m in list_models():
        opts = m.options()
        if args.json:
            print(json.dumps({"name": m.name, "kind": "judge", "checkpoint": m.checkpoint, "family": m.family,
                              **opts}))
            continue
        video = f"{m.video_frames} frames as images" if m.video == "frames" else \
            (f"native {m.video_fps:g} fps" if m.video_fps else "native")
        shown = {"variant": m.variant, "video": video, "max_new_tokens": m.max_new_tokens,
                 "chat_template_kwargs": m.chat_template_kwargs or None}
        rest = "  ".join(f"{k}={v if isinstance(v, (str, int)) else json.dumps(v)}" for k, v in shown.items() if v)
        print(f"{m.name:32s} {m.checkpoint:42s} {m.family:9s} {m.backbone:10s} {rest}")
    if not args.json:
        print("\nscorers (RewardModel.load(name); P(A > B) = sigmoid((s_A - s_B) / T)):")
    for sc in list_scorers():
        if args.json:
            print(json.dumps({**sc.to_dict(), "kind": "scorer", "scorer_kind": sc.kind}))
            continue
        caption = "" if sc.prompted else "  (image only)"
        print(f"{sc.name:32s} {sc.checkpoint:42s} {LIBRARIES[sc.kind]:26s} T={sc.temperature:g}  {sc.units}{caption}")
    return 0


LIBRARIES = {"clip": "transformers CLIPModel", "open_clip": "open_clip", "imagereward": "transformers BLIP + head",
             "aesthetic": "transformers CLIP + MLP"}
