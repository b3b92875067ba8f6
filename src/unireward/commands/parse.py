"""`unireward parse`: parse raw judge outputs into verdicts, one JSON object per input line.

    unireward parse --task image-gen/pair outputs.jsonl
    echo '"Final Score: 7"' | unireward parse --task image-und/point --strict
    unireward parse --model unifiedreward-2.0-qwen3vl-8b --task image-gen/pair outputs.jsonl
    unireward parse --family edit --task image-edit/point outputs.jsonl

Each input line is a JSON string (the raw output) or a JSON object with a `text` field; the object's other
fields (such as `id`) are passed through. Outputs are read with the prompt family's parser: --family, else
the family of the registered checkpoint --model names (a short name, hub id or local folder; no weights are
loaded), else unireward's own. Each output line carries `winner` (1, 2, "tie" or null) for pair tasks or `score`
(a number or null) for point tasks, and when the family gives them `dimensions` (name -> winner or number, or
[n1, n2] for pair scores; null where that dimension did not parse), `scores` (e.g. an edit's two axes),
`category_winners` (Flex), `reward` (the family's scalar for RL), and `reason` when (part of) the output did not
parse. A line that is not usable JSON gives {"line": N, "error": ...} and the exit code is 1.
Blank lines are skipped.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("parse", help="parse raw judge outputs (JSONL) into verdicts",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, help="task name, e.g. image-gen/pair or image-gen/point+dims")
    p.add_argument("--model", help="a registered checkpoint or local judge folder whose prompt family to read with")
    p.add_argument("--family", help="prompt family: 1.0, 2.0, think, edit, flex or unireward (default)")
    p.add_argument("--variant", help="a non-default prompt of the family, by name")
    p.add_argument("--strict", action="store_true", help="accept only the exact lines the answer format writes")
    p.add_argument("file", nargs="?", help="JSONL file of outputs (default: standard input)")
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    import sys
    from pathlib import Path

    from ..errors import ConfigError

    task = parse_task(args)
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
    out = {k: v for k, v in record.items() if k not in ("text", *_OPTIONAL)}
    verdict = task.parse(record["text"], strict=strict)
    if task.is_pair:
        out["winner"] = verdict.winner
    else:
        out["score"] = verdict.score
    for key in _OPTIONAL:  # what the family's verdict carries; stale input fields of these names are dropped
        value = getattr(verdict, key, None)
        if value is not None and value != {} and value != []:
            out[key] = value
    return out


_OPTIONAL = ("dimensions", "scores", "category_winners", "reward", "reason")


def parse_task(args):
    """The task whose parser reads the outputs: --family, else the family of --model's registered checkpoint."""
    from ..tasks import get_task

    family, variant = args.family, args.variant
    if args.model and family is None:
        from ..judging.spec import resolve_spec

        spec = resolve_spec(args.model)
        family = spec.family
        variant = variant or spec.variant
    if family is None:
        return get_task(args.task)
    return get_task(args.task, family=family, variant=variant)
