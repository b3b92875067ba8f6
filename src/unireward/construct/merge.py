"""Merge the shard folders of one construction run into the folder one unsharded run writes.

    unireward construct merge outputs/construct/sdxl outputs/construct/sdxl/shard-*
    python -c "from unireward.construct.merge import merge_construct as m; m('out', ['out/shard-0-of-2', ...])"

`records.jsonl` gets every shard's records byte for byte, in the order of the prompts (as one run writes them);
`media/` the generated candidates (hard links where the file system allows, else copies); `construct_config.yaml`
the run's config without the shard; the exports are rebuilt from the merged records; `merge.json` names the
shards. Shards of different runs, a missing or repeated shard, an id in two shards and an unfinished shard are
refused with an error naming the folder (`unireward.shards.plan_merge`).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterable

from ..shards import check_merge_target, plan_merge, record_merge, write_merged_jsonl
from .run import CONFIG_FILE, RECORDS, ConstructConfig, ConstructResult


def merge_construct(out: str | Path, shard_dirs: Iterable[str | Path]) -> ConstructResult:
    """Merge the shard folders `shard_dirs` of one run into `out` (records, media, config, exports)."""
    from ..config import dump_config, load_config
    from ..data.records import read_records
    from .export import export_records

    start = time.perf_counter()
    plan = plan_merge(shard_dirs)
    out = Path(out)
    check_merge_target(out, plan, RECORDS)
    config = load_config(ConstructConfig, plan.folders[0] / CONFIG_FILE)
    out.mkdir(parents=True, exist_ok=True)
    record_merge(out, plan)  # first: a merge that stops half way may be run again
    n = write_merged_jsonl(plan, RECORDS, out / RECORDS)
    for folder in plan.folders:
        link_tree(folder / "media", out / "media")
    dump_config(replace(config, shard=None, output_dir=str(out)), out / CONFIG_FILE)
    counts = {"kept": 0, "dropped": 0, "error": 0}
    for rec in read_records(out / RECORDS):
        status = rec.get("status", "")
        counts[status] = counts.get(status, 0) + 1
    result = ConstructResult(out, out / RECORDS, n, n, counts["kept"], counts["dropped"], counts["error"],
                             runtime_s=time.perf_counter() - start)
    if config.export:
        result.exports = {k: str(v) for k, v in export_records(out / RECORDS, out).items()}
    return result


def link_tree(src: Path, dst: Path) -> int:
    """Hard-link (else copy) every file under `src` to the same place under `dst`; returns the file count."""
    n = 0
    if not src.is_dir():
        return n
    for path in sorted(src.rglob("*")):
        if not path.is_file():
            continue
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and os.path.samefile(path, target):
            continue
        tmp = target.with_name(target.name + ".tmp")
        tmp.unlink(missing_ok=True)
        try:
            os.link(path, tmp)
        except OSError:
            shutil.copy2(path, tmp)
        os.replace(tmp, target)
        n += 1
    return n


__all__ = ["link_tree", "merge_construct"]
