"""Reading local copies of hub datasets, lazily: a `save_to_disk` folder, parquet files, JSON, JSONL or CSV.

    table = read_hf("~/data/VL-RewardBench", split="test")          # parquet snapshot or saved dataset
    len(table), table.row(0)                                           # a plain dict, media as bytes/paths

Rows are decoded one at a time, so a benchmark of thousands of images is never held in memory at once.
Image columns come back as their bytes (or a path when the dataset stores paths), never decoded here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from ..errors import DataError

_URL_PREFIXES = ("http://", "https://")


class Table:
    """Rows of a tabular dataset, fetched lazily by index."""

    def __init__(self, n: int, get: Callable[[int], dict], column: Callable[[str], list], root: Path,
                 columns: list[str], source: str):
        self._n, self._get, self._column = n, get, column
        self.root, self.columns, self.source = root, columns, source

    def __len__(self) -> int:
        return self._n

    def row(self, i: int) -> dict[str, Any]:
        return self._get(i)

    def rows(self, *names: str) -> list[dict[str, Any]]:
        """All rows restricted to `names` (light columns read in bulk, without touching media columns)."""
        cols = [self._column(n) for n in names]
        return [dict(zip(names, vals)) for vals in zip(*cols)] if cols else []

    def require(self, *names: str) -> None:
        missing = [c for c in names if c not in self.columns]
        if missing:
            raise DataError(f"{self.source}: missing column(s) {missing}; found {self.columns}. Is this the "
                            "benchmark's published layout?")


def read_hf(path: str | Path, split: str | None = None, config: str | None = None) -> Table:
    """A hub dataset saved locally: a `save_to_disk` folder (Dataset or DatasetDict), one parquet file, or a
    folder of parquet files as in a hub snapshot (`<config>/<split>-00000-of-00001.parquet`,
    `data/<split>-*.parquet`, ...). `config` narrows a multi-config snapshot to its sub-folder."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{p}: no such file or folder; pass the local copy of the benchmark")
    if p.is_dir() and config and (p / config).is_dir() and not _is_saved(p):
        p = p / config
    if p.is_dir() and _is_saved(p):
        return _saved_table(p, split)
    files = [p] if p.is_file() else sorted(p.rglob("*.parquet"))
    if not files:
        raise DataError(f"{p}: neither a saved dataset (dataset_dict.json / state.json) nor parquet files")
    if split and p.is_dir():
        chosen = [f for f in files if f.stem == split or f.stem.startswith(split + "-") or
                  split in [q.name for q in f.relative_to(p).parents]]
        if not chosen:
            raise DataError(f"{p}: no parquet file for split {split!r} among {[str(f.relative_to(p)) for f in files]}")
        files = chosen
    return _parquet_table(files, root=p if p.is_dir() else p.parent)


def _is_saved(p: Path) -> bool:
    return (p / "dataset_dict.json").is_file() or (p / "state.json").is_file()


def _saved_table(p: Path, split: str | None) -> Table:
    import datasets

    ds = datasets.load_from_disk(str(p))
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise DataError(f"{p}: no split {split!r}; the saved dataset has {list(ds)}")
        ds = ds[split]
    for name, feature in ds.features.items():  # keep media undecoded: bytes or paths
        for kind in ("Image", "Video"):
            cls = getattr(datasets, kind, None)
            if cls is not None and isinstance(feature, cls):
                ds = ds.cast_column(name, cls(decode=False))
    return Table(len(ds), lambda i: ds[i], lambda c: list(ds[c]), p, list(ds.column_names), str(p))


def _parquet_table(files: list[Path], root: Path) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.concat_tables([pq.read_table(f, memory_map=True) for f in files])
    return Table(table.num_rows, lambda i: table.slice(i, 1).to_pylist()[0],
                 lambda c: table.column(c).to_pylist(), root, table.column_names, ", ".join(str(f) for f in files))


def read_records(path: Path) -> Table:
    """A JSON list, a JSONL file or a CSV file as a Table."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.suffix == ".csv":
        import pandas as pd

        frame = pd.read_csv(path, keep_default_na=False)
        rows = frame.to_dict("records")
    elif path.suffix == ".jsonl":
        rows = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{n}: not valid JSON ({e.msg})") from None
    else:
        try:
            rows = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: not valid JSON ({e.msg})") from None
        if not isinstance(rows, list):
            raise DataError(f"{path}: expected a JSON list of records")
    columns = sorted({k for r in rows for k in r}) if rows else []
    return Table(len(rows), rows.__getitem__, lambda c: [r.get(c) for r in rows], path.parent, columns, str(path))


def media_value(value: Any, root: Path) -> Any:
    """A dataset cell holding media -> something `unireward.media` loads: bytes, a resolved path, or a URL."""
    if isinstance(value, dict):
        if value.get("bytes"):
            return value["bytes"]
        value = value.get("path")
    if value is None:
        raise DataError("a media cell is empty")
    if isinstance(value, str):
        if value.startswith(_URL_PREFIXES):
            return value
        q = Path(value)
        return str(q if q.is_absolute() else root / q)
    return value  # bytes, PIL images, arrays


def is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(_URL_PREFIXES)
