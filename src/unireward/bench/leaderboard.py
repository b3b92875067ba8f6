"""Results tables a user extends with their own runs: `unireward bench ... --table docs/benchmarks.md` writes this
run's row into the benchmark's table in that Markdown file (added, or updated when the same model, protocol and
data were run before).

A table is the block between `<!-- results: NAME -->` and `<!-- /results -->` (NAME: the benchmark, e.g. mmrb2):
columns model | protocol | data | <the benchmark's headline metrics> | items | source. Rows written by hand (the
published records, citing where they come from) are never changed; a file without the benchmark's block gets one
appended under a heading. The data column says what was run: a fixture copy or the sandbox's synthetic split is
named as such, so such rows are never mistaken for benchmark results.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError

START, END = "<!-- results: {} -->", "<!-- /results -->"
TITLES = {"mmrb2": "Multimodal RewardBench 2 (MMRB2)", "editreward": "EditReward-Bench", "vlrb": "VL-RewardBench",
          "videogen": "VideoGen-RewardBench", "genai-image": "GenAI-Bench (image generation)",
          "genai-video": "GenAI-Bench (video generation)", "mmrb": "Multimodal RewardBench",
          "sandbox": "Sandbox held-out split"}


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def _mmrb2(r: dict) -> dict[str, str]:
    pub = r["published"]
    cells = {k: _pct(pub["tasks"].get(k, {}).get("accuracy")) for k in ("t2i", "edit", "interleaved", "reasoning")}
    return {**cells, "average": _pct(pub["average"])}


def _editreward(r: dict) -> dict[str, str]:
    k = r["published"]["k"]
    return {"2pair": _pct(k.get("2pair", {}).get("accuracy")), "3pair": _pct(k.get("3pair", {}).get("accuracy")),
            "4pair": _pct(k.get("4pair", {}).get("accuracy")),
            "3pair groups": _pct(k.get("3pair", {}).get("group_accuracy")),
            "4pair groups": _pct(k.get("4pair", {}).get("group_accuracy")), "overall": _pct(r["published"]["overall"])}


def _vlrb(r: dict) -> dict[str, str]:
    mm = r.get("macro", {}).get("official", {})
    return {"overall accuracy": _pct(mm.get("overall")), "macro accuracy": _pct(mm.get("macro"))}


def _videogen(r: dict) -> dict[str, str]:
    o = r["overall"] or {}
    return {"w/o ties": _pct(o.get("vg_without_ties")), "w/ ties": _pct(o.get("vg_with_ties")),
            "acc (tau)": _pct(o.get("accuracy"))}


def _pairs(r: dict) -> dict[str, str]:
    o = r["overall"] or {}
    o = o.get("pair", o)
    return {"acc (tau)": _pct(o.get("accuracy")), "diff": _pct(o.get("diff"))}


HEADLINES: dict[str, Callable[[dict], dict[str, str]]] = {"mmrb2": _mmrb2, "editreward": _editreward,
                                                          "vlrb": _vlrb, "videogen": _videogen}


def data_label(results: dict) -> str:
    """What was run: a fixture copy and the sandbox are named as what they are."""
    man = results["manifest"]
    data = str(man.get("data") or "")
    n = results["n_items"]
    if man["benchmark"] == "sandbox":
        return f"sandbox held-out split, synthetic ({n} items)"
    if "/tests/fixtures/" in data.replace("\\", "/") + "/":
        return f"fixture copy, not the benchmark ({n} items)"
    return f"{Path(data).name or data} ({n} items)"


def model_label(results: dict) -> str:
    man = results["manifest"]
    model = str(man.get("model") or "?")
    p = Path(model)
    if p.is_absolute():
        model = p.name
    scorer = (man.get("backend") or {}).get("scorer")
    return f"{model} (scorer {scorer})" if scorer and scorer != model else model


def row_for(results: dict, label: str | None = None) -> tuple[list[str], list[str]]:
    """(columns, cells) of a run's row."""
    man = results["manifest"]
    metrics = HEADLINES.get(man["benchmark"], _pairs)(results)
    source = f"unireward bench, {time.strftime('%Y-%m-%d')}"
    columns = ["model", "protocol", "data", *metrics, "items", "source"]
    cells = [model_label(results), man["protocol"], label or data_label(results), *metrics.values(),
             str(results["n_items"]), source]
    return columns, [c.replace("|", "\\|") for c in cells]


def _split(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def update_table(path: str | Path, results: dict, label: str | None = None) -> str:
    """Add (or replace) this run's row in the benchmark's table of the Markdown file `path` (created if absent);
    returns the row."""
    name = results["manifest"]["benchmark"]
    columns, cells = row_for(results, label)
    row = "| " + " | ".join(cells) + " |"
    p = Path(path)
    text = p.read_text(encoding="utf-8") if p.is_file() else ""
    start = START.format(name)
    if start not in text:
        p.parent.mkdir(parents=True, exist_ok=True)
        block = [f"## {TITLES.get(name, name)}", "", start, "| " + " | ".join(columns) + " |",
                 "|" + "---|" * len(columns), row, END]
        p.write_text(text.rstrip("\n") + ("\n\n" if text.strip() else "") + "\n".join(block) + "\n", encoding="utf-8")
        return row
    head, rest = text.split(start, 1)
    if END not in rest:
        raise ConfigError(f"{p}: the {name} table starts with {start} but has no {END}; close it")
    body, tail = rest.split(END, 1)
    lines = [x for x in body.strip("\n").splitlines() if x.strip()]
    if len(lines) < 2 or _split(lines[0]) != columns:
        raise ConfigError(f"{p}: the {name} table's columns are {(_split(lines[0]) if lines else [])}, expected "
                          f"{columns}; restore them (or remove the block to start a new table)")
    key = cells[:3]
    rows = [x for x in lines[2:]]
    for i, line in enumerate(rows):
        got = _split(line)
        if got[:3] == key and got[-1].startswith("unireward bench"):
            rows[i] = row
            break
    else:
        rows.append(row)
    new_body = "\n".join(lines[:2] + rows)
    p.write_text(head + start + "\n" + new_body + "\n" + END + tail, encoding="utf-8")
    return row
