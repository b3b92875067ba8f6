"""Deterministic shards of a run by item id, and their merge (core: imports nothing of unireward but `errors`).

`construct` and `bench` take `shard=i/n`: the process judges only the items whose id hashes to `i`, writes them
to its own folder `<output>/shard-i-of-n` (resumable on its own) with a `shard.json` saying which items it owns
and which run it is part of; `plan_merge` checks a set of such folders (one run, every shard once, no id twice)
and `write_merged_jsonl` writes their records back in the unsharded run's order.

    shard = parse_shard("3/8")          # or "auto": RANK and WORLD_SIZE, as torchrun and accelerate launch set them
    mine = shard.select(items, key=lambda it: it.id)   # [(position in the full list, item)] this shard owns

An id's shard is `shard_of(id, n)`: the first 8 bytes of SHA-1 of the id (UTF-8), big-endian, mod n. It is the
same on every machine, process and Python hash seed, and does not depend on the order of the items.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

from .errors import ConfigError, DataError

T = TypeVar("T")
SHARD_FILE = "shard.json"
MERGE_FILE = "merge.json"


def shard_of(item_id: str, count: int) -> int:
    """The shard (0..count-1) that owns `item_id`."""
    digest = hashlib.sha1(str(item_id).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`; `local_rank` is this process's GPU on its node when a launcher said (LOCAL_RANK)."""

    index: int
    count: int
    local_rank: int | None = None

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def folder(self) -> str:
        """The shard's own output folder name, under the run's output folder."""
        return f"shard-{self.index}-of-{self.count}"

    def owns(self, item_id: str) -> bool:
        return shard_of(item_id, self.count) == self.index

    def select(self, items: Sequence[T], key: Callable[[T], str]) -> list[tuple[int, T]]:
        """(position in `items`, item) of the items this shard owns, in the order of `items`."""
        return [(pos, it) for pos, it in enumerate(items) if self.owns(key(it))]


def parse_shard(text: str | None, env: Mapping[str, str] | None = None) -> Shard | None:
    """`"i/n"` -> Shard(i, n); `"auto"` -> RANK/WORLD_SIZE (and LOCAL_RANK) from `env` (default os.environ);
    None or "" -> None (no sharding)."""
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    if text == "auto":
        env = os.environ if env is None else env
        if "RANK" not in env or "WORLD_SIZE" not in env:
            raise ConfigError("shard=auto reads RANK and WORLD_SIZE, which torchrun and accelerate launch set, and "
                              "they are not set here; pass shard=i/n instead (e.g. shard=$SLURM_ARRAY_TASK_ID/8)")
        text, local = f"{env['RANK']}/{env['WORLD_SIZE']}", env.get("LOCAL_RANK")
    else:
        local = None
    i, sep, n = text.partition("/")
    try:
        index, count = int(i), int(n)
    except ValueError:
        index = count = -1
    if not sep or count < 1 or not 0 <= index < count:
        raise ConfigError(f"shard must be i/n with 0 <= i < n (e.g. 0/4), or auto, got {text!r}")
    return Shard(index, count, int(local) if local not in (None, "") else None)


def check_shard(text: str | None) -> None:
    """Raise a ConfigError if `text` is neither None, "auto" nor a valid "i/n" (does not read the environment)."""
    if text not in (None, "", "auto"):
        parse_shard(text)


# ---------------------------------------------------------------- shard.json


def shard_manifest(shard: Shard, run: dict[str, Any], owned: Sequence[tuple[int, str]], total: int,
                   **extra: Any) -> dict[str, Any]:
    """What a shard folder says of itself: its shard, the run it is part of (`run`: every setting that changes
    a record, equal in all shards), how many items the whole run has, and the (position, id) of the items it owns."""
    run = json.loads(json.dumps(run))  # as it reads back from shard.json (tuples as lists)
    return {"shard": str(shard), "index": shard.index, "count": shard.count, "run": run, "total": total,
            "positions": [p for p, _ in owned], "ids": [i for _, i in owned], **extra}


def claim_folder(folder: str | Path, manifest: dict[str, Any]) -> None:
    """Write `folder/shard.json`, refusing a folder that already holds another shard or another run's shard."""
    folder = Path(folder)
    path = folder / SHARD_FILE
    if path.is_file():
        old = json.loads(path.read_text())
        diff = _diff(old.get("run", {}), manifest["run"])
        if old.get("shard") != manifest["shard"] or diff or old.get("ids") != manifest["ids"]:
            what = f"settings {', '.join(diff)} differ" if diff else \
                f"shard {old.get('shard')} vs {manifest['shard']}" if old.get("shard") != manifest["shard"] \
                else "the items differ"
            raise ConfigError(f"{folder} holds a shard of another run ({what}); pass another output folder, or "
                              "delete this one to start the shard over")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(SHARD_FILE + ".tmp")
    tmp.write_text(json.dumps(manifest) + "\n")
    os.replace(tmp, path)


def read_shard_manifest(folder: str | Path) -> dict[str, Any]:
    """The `shard.json` of a shard folder; a ConfigError saying what to pass when there is none."""
    path = Path(folder) / SHARD_FILE
    if not path.is_file():
        raise ConfigError(f"{folder}: not a shard folder (no {SHARD_FILE}); pass the shard-i-of-n folders that "
                          "runs with shard=i/n wrote")
    return json.loads(path.read_text())


# ---------------------------------------------------------------- merge


@dataclass
class MergePlan:
    """Shard folders checked to form one whole run; `order` is (folder, id) in the unsharded run's order."""

    folders: list[Path]  # by shard index
    manifests: list[dict[str, Any]]  # their shard.json, in the same order
    order: list[tuple[Path, str]]


def plan_merge(folders: Iterable[str | Path]) -> MergePlan:
    """Check that `folders` are the n shards of one run (same settings, each shard once, no id in two) and
    put their ids in the unsharded run's order."""
    folders = [Path(f) for f in folders]
    if not folders:
        raise ConfigError("pass the shard folders to merge (e.g. out/shard-*)")
    manifests = [read_shard_manifest(f) for f in folders]
    first, ref = folders[0], manifests[0]
    by_index: dict[int, Path] = {}
    for folder, m in zip(folders, manifests):
        if m["count"] != ref["count"]:
            raise ConfigError(f"{folder} is shard {m['shard']} but {first} is shard {ref['shard']}: shards of "
                              "one run share their n")
        diff = _diff(ref["run"], m["run"])
        if diff or m["total"] != ref["total"]:
            raise ConfigError(f"{folder} is a shard of another run than {first} "
                              f"({', '.join(diff) or 'number of items'} differ); merge the shards of one run")
        if m["index"] in by_index:
            raise ConfigError(f"{folder} and {by_index[m['index']]} are both shard {m['shard']}; pass each shard "
                              "once")
        by_index[m["index"]] = folder
    missing = [f"{i}/{ref['count']}" for i in range(ref["count"]) if i not in by_index]
    if missing:
        raise ConfigError(f"shard{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing: run "
                          f"{'them' if len(missing) > 1 else 'it'} (shard=i/n, same settings) and pass "
                          f"{'their folders' if len(missing) > 1 else 'its folder'} too")
    order: list[tuple[Path, str] | None] = [None] * ref["total"]
    owner: dict[str, Path] = {}
    for folder, m in zip(folders, manifests):
        for pos, item_id in zip(m["positions"], m["ids"]):
            if item_id in owner:
                raise ConfigError(f"id {item_id!r} is in both {owner[item_id]} and {folder}; merge the shards of "
                                  "one run")
            if not 0 <= pos < ref["total"] or order[pos] is not None:
                raise ConfigError(f"{folder}: {SHARD_FILE} places {item_id!r} at {pos}, taken or outside the run")
            owner[item_id] = folder
            order[pos] = (folder, item_id)
    placed = [o for o in order if o is not None]
    if len(placed) != ref["total"]:
        raise ConfigError(f"the shards {', '.join(map(str, folders))} do not cover the run's {ref['total']} items")
    ranked = sorted(zip(folders, manifests), key=lambda fm: fm[1]["index"])
    return MergePlan([f for f, _ in ranked], [m for _, m in ranked], placed)


def check_merge_target(out: str | Path, plan: MergePlan, records: str) -> None:
    """Refuse to merge into a shard folder, or over a `records` file that no earlier merge wrote (a run's own)."""
    out = Path(out)
    if out.resolve() in {f.resolve() for f in plan.folders} or (out / SHARD_FILE).exists():
        raise ConfigError(f"{out} is a shard folder; merge into another folder (e.g. the shards' parent)")
    if (out / records).exists() and not (out / MERGE_FILE).exists():
        raise ConfigError(f"{out} already holds the {records} of a run, not of a merge; merge into another folder")


def record_merge(out: str | Path, plan: MergePlan) -> None:
    """Write `out/merge.json`: which shard folders the merge in `out` joined (a later merge may replace it)."""
    Path(out, MERGE_FILE).write_text(json.dumps({"shards": [str(f) for f in plan.folders]}, indent=2) + "\n")


def write_merged_jsonl(plan: MergePlan, name: str, out_path: str | Path) -> int:
    """Write the records (`name`, JSONL keyed by "id") of every shard folder to `out_path`, byte for byte, in the
    plan's order; a shard with a record missing is unfinished (a DataError says to rerun it). Returns the count."""
    index: dict[str, tuple[Path, int, int]] = {}
    for folder, m in zip(plan.folders, plan.manifests):
        where = _line_index(folder / name)
        missing = [i for i in m["ids"] if i not in where]
        if missing:
            raise DataError(f"{folder}: shard {m['shard']} is unfinished ({len(m['ids']) - len(missing)} of "
                            f"{len(m['ids'])} records; {missing[0]!r} is missing): run it again with the same "
                            "settings (it resumes), then merge")
        index.update((i, (folder / name, *where[i])) for i in m["ids"])
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    handles: dict[Path, Any] = {}
    try:
        with tmp.open("wb") as out:
            for _, item_id in plan.order:
                path, offset, length = index[item_id]
                f = handles.get(path) or handles.setdefault(path, path.open("rb"))
                f.seek(offset)
                out.write(f.read(length))
            out.flush()
            os.fsync(out.fileno())
    finally:
        for f in handles.values():
            f.close()
    os.replace(tmp, out_path)
    return len(plan.order)


def _line_index(path: Path) -> dict[str, tuple[int, int]]:
    """id -> (offset, length) of each complete line of a JSONL file (a torn last line is left out)."""
    if not path.is_file():
        return {}
    out: dict[str, tuple[int, int]] = {}
    offset = 0
    with path.open("rb") as f:
        for n, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                break
            if line.strip():
                try:
                    rec_id = str(json.loads(line)["id"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise DataError(f"{path}:{n}: not a record with an id") from None
                out.setdefault(rec_id, (offset, len(line)))
            offset += len(line)
    return out


def _diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


__all__ = ["MERGE_FILE", "MergePlan", "SHARD_FILE", "Shard", "check_merge_target", "check_shard", "claim_folder",
           "parse_shard", "plan_merge", "read_shard_manifest", "record_merge", "shard_manifest", "shard_of",
           "write_merged_jsonl"]
