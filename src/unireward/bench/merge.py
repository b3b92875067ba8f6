"""Merge the shard folders of one benchmark run into the folder one unsharded run writes.

    unireward bench merge runs/bench/vlrb runs/bench/vlrb/shard-*
    python -c "from unireward.bench.merge import merge_bench as m; m('out', ['out/shard-0-of-2', 'out/shard-1-of-2'])"

`items.jsonl` gets every shard's item records byte for byte, in dataset order; `manifest.json` the run's manifest
without the shard; `results.json`, `report.md` and `plot.png` are computed from the merged records as one run
computes them; `merge.json` names the shards. Shards of different runs, a missing or repeated shard, an id in two
shards and an unfinished shard are refused with an error naming the folder (`unireward.shards.plan_merge`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from ..shards import check_merge_target, plan_merge, record_merge, write_merged_jsonl
from .runner import ITEMS_FILE, read_records, write_results


def merge_bench(out: str | Path, shard_dirs: Iterable[str | Path]) -> dict[str, Any]:
    """Merge the shard folders `shard_dirs` of one benchmark run into `out`; returns the results dict."""
    plan = plan_merge(shard_dirs)
    out = Path(out)
    check_merge_target(out, plan, ITEMS_FILE)
    manifest = json.loads((plan.folders[0] / "manifest.json").read_text())
    manifest.pop("shard", None)
    manifest["config"] = {**manifest["config"], "out": str(out), "shard": None}
    out.mkdir(parents=True, exist_ok=True)
    record_merge(out, plan)  # first: a merge that stops half way may be run again
    write_merged_jsonl(plan, ITEMS_FILE, out / ITEMS_FILE)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    records = list(read_records(out / ITEMS_FILE).values())
    return write_results(out, records, manifest, plan.manifests[0]["summary"])


__all__ = ["merge_bench"]
