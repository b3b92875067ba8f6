"""`unireward best-of-n`: pick the best of N candidates per prompt with a judge or a scorer (inference-time
selection, the same group rewards online RL uses).

    unireward best-of-n --model src/unireward/sandbox/judge --task image-gen/pair --input groups.jsonl
    unireward best-of-n --model pickscore --input groups.jsonl --out best.jsonl
    unireward best-of-n --model DIR --task image-gen/pair --prompt "a red circle" 1.png 2.png 3.png

Each input line is {"prompt", "candidates": [...], "media"?, "id"?} (media paths relative to the file; understanding
tasks: text candidates about `media`; editing tasks: edited images of the source `media`). Each output line is
{"id", "best": <index>, "rewards": [...], "mode", "task", "status", "reason"}: the best by win rate over all pairs,
both orders, for a pairwise judge; by score for a scorer (`--mode` chooses: win-rate, bradley-terry, point). A line
that cannot be read or judged is its own row with status "error" (best null) and the exit status is 1.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from .judge import add_common_options

    p = subparsers.add_parser("best-of-n", help="pick the best of N candidates per prompt (a judge or a scorer)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(p, "image-gen/pair")
    p.add_argument("--mode", choices=["win-rate", "bradley-terry", "point"], default=None,
                   help="how candidates are compared (default: win-rate for a judge, point for a scorer)")
    p.add_argument("--one-order", action="store_true", help="pairwise modes: judge each pair in one order only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the rows here (JSONL) instead of standard output")
    p.add_argument("candidates", nargs="*", help="with --prompt: the N candidates")
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    import sys
    from contextlib import nullcontext
    from pathlib import Path

    from ..rewards.best import BestOfN, best_of_n, default_mode
    from ..rewards.group import GroupRequest
    from .judge import context, load_judge, read_requests

    reqs = read_requests(args, None)
    rm = load_judge(args)
    mode = args.mode or default_mode(rm)
    rows: list[dict | None] = [None] * len(reqs)
    todo = []
    for i, r in enumerate(reqs):
        cands = r.get("candidates")
        if "error" in r:
            why = r["error"]
        elif not isinstance(cands, list) or len(cands) < (1 if mode == "point" else 2):
            why = f"row {r.get('id')!r}: \"candidates\" must be a list of at least {1 if mode == 'point' else 2}"
        else:
            todo.append(i)
            continue
        rows[i] = BestOfN(id=r.get("id"), best=None, rewards=[], mode=mode, status="error", reason=why).to_dict()
    groups = [GroupRequest(reqs[i].get("prompt"), reqs[i]["candidates"], context(reqs[i]), reqs[i].get("id"))
              for i in todo]
    batch = max(args.batch_size, 1)
    for start in range(0, len(groups), batch):
        chunk = todo[start: start + batch]
        picks = best_of_n(rm, groups[start: start + batch], task=args.task, mode=mode,
                          both_orders=not args.one_order, seed=args.seed)
        for i, p in zip(chunk, picks):
            rows[i] = p.to_dict()
    failed = sum(r["status"] == "error" for r in rows)
    with (open(args.out, "w", encoding="utf-8") if args.out else nullcontext(sys.stdout)) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=True) + "\n")
    if args.out:
        print(f"{len(rows)} row(s) written to {Path(args.out)}", file=sys.stderr)
    if failed:
        print(f"unireward best-of-n: {failed} of {len(rows)} line(s) failed (status \"error\")", file=sys.stderr)
    return 1 if failed else 0
