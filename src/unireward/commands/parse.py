"""`unireward parse`: parse raw judge outputs into verdicts, one JSON object per input line.

    unireward parse --task image-gen/pair outputs.jsonl
    echo '"Final Score: 7"' | unireward parse --task image-und/point --strict

Each input line is a JSON string (the raw output) or a JSON object with a `text` field; the object's other
fields (such as `id`) are passed through. Each output line carries `winner` (1, 2, "tie" or null) for pair
tasks or `score` (a number or null) for point tasks, `dimensions` when any were parsed, and `reason` when the
output did not parse. A line that is not usable JSON gives {"line": N, "error": ...} and the exit code is 1.
Blank lines are skipped.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("parse", help="parse raw judge outputs (JSONL) into verdicts",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, help="task name, e.g. image-gen/pair or image-gen/point+dims")
    p.add_argument("--strict", action="store_true", help="accept only the exact lines the answer format writes")
    p.add_argument("file", nargs="?", help="JSONL file of outputs (default: standard input)")
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    import sys
    from pathlib import Path

    from ..errors import ConfigError
    from ..tasks import get_task

    task = get_task(args.task)
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise ConfigError(f"{path}: no such file; pass a JSONL file of judge outputs or pipe them on stdin")
        stream = path.open(encoding="utf-8")
    else:
        stream = sys.stdin
    bad = 0
    with stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                out = parse_line(line, task, args.strict)
            except ValueError as e:
                bad += 1
                out = {"line": number, "error": f"line {number}: {e}"}
            print(json.dumps(out, ensure_ascii=False), flush=True)
    return 1 if bad else 0


def parse_line(line: str, task, strict: bool = False) -> dict:
    """One output record for one input line; ValueError when the line is not a JSON string or object with text."""
    import json

    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON ({e.msg} at column {e.colno})") from None
    if isinstance(record, str):
        record = {"text": record}
    elif not isinstance(record, dict):
        raise ValueError(f"expected a JSON string or object, got {type(record).__name__}")
    elif not isinstance(record.get("text"), str):
        raise ValueError("the object has no string field 'text'")
    out = {k: v for k, v in record.items() if k != "text"}
    verdict = task.parse(record["text"], strict=strict)
    if task.is_pair:
        out["winner"] = verdict.winner
    else:
        out["score"] = verdict.score
    if verdict.dimensions:
        out["dimensions"] = verdict.dimensions
    else:
        out.pop("dimensions", None)
    if verdict.reason is not None:
        out["reason"] = verdict.reason
    else:
        out.pop("reason", None)
    return out
