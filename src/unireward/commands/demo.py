"""`unireward demo`: the offline sandbox, end to end (world -> judge -> evaluation -> preference data -> DPO ->
report). See `unireward.sandbox.demo` for what each step does.

    unireward demo                   # quick preset: the shipped judge and weak generator (minutes), in runs/demo
    unireward demo --from-scratch    # retrain both with the recipes recorded beside them (over an hour)
    unireward demo --preset full     # the ladder preset of sandbox/ladder, larger DPO budget
    unireward demo --preset smoke    # every step at seconds-size budgets (what the tests run)
    unireward demo --examples runs/examples   # only write example images, videos and JSONL files (seconds)

Presets: quick (default; the shipped judge is evaluated on 40 held-out samples per task, the shipped weak
generator gets 150 steps of Diffusion-DPO on pairs for 192 captions; ~5 min on 2 cores), full (trains the judge
with sandbox/ladder, ~30 min, then pretrains a generator and runs 300 DPO steps on 384 captions),
smoke (seconds; a check that every step runs, not a result).
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="run the offline sandbox demo end to end", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/demo", help="output and cache folder (default runs/demo)")
    p.add_argument("--preset", default="quick", choices=["quick", "full", "smoke"])
    p.add_argument("--from-scratch", action="store_true", help="delete cached stages and retrain all")
    p.add_argument("--examples", metavar="DIR", help="only write example media for trying the judge into DIR")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..sandbox.demo import config_from_args, run_demo, write_examples

    if args.no_progress:  # the model loading bars too
        from .judge import quiet_loading

        quiet_loading()
    if args.examples:
        for name, path in write_examples(args.examples).items():
            print(f"{name:10s} {path}")
        return 0
    run_demo(config_from_args(args))
    return 0
