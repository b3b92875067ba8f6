"""Helpers shared by the dataset converters: reading rows, resolving media, ordering pairs, mapping scales.

Every converter yields unified `Sample`s whose targets come from the task registry (`make_sample` calls
`Sample.render_target`). Errors name the file and the row: `DataError("<file> row 3: missing column 'prompt'")`,
also for a score that is no number (`number`) and an image that does not decode in full (`MediaStore`).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import shutil
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from ...errors import ConfigError, DataError
from ..schema import Sample

VIDEO_EXTS = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".gif")
FRAME_EXTS = (".jpg", ".jpeg", ".png", ".webp")
IMAGE_EXTS = FRAME_EXTS + (".bmp", ".tif", ".tiff")  # files decoded in full before a sample names them
Row = tuple[str, dict]  # (where, row): where = "<file> row <i>"


# -- rows ---------------------------------------------------------------------------------------------------
def find_file(path: str | Path, candidates: Sequence[str], what: str) -> Path:
    """`path` itself if it is a file, else the first of `candidates` (globs allowed) inside the folder."""
    p = Path(path)
    if p.is_file():
        return p
    if not p.is_dir():
        raise DataError(f"{p}: no such file or folder ({what})")
    for c in candidates:
        hits = sorted(p.glob(c))
        if hits:
            return hits[0]
    raise DataError(f"{p}: found none of {list(candidates)} ({what})")


def iter_rows(path: str | Path, parquet_glob: str = "**/*.parquet", split: str | None = None) -> Iterator[Row]:
    """Rows of a JSON list, JSONL, CSV or parquet file, a folder of parquet shards, or a `save_to_disk` folder.

    Yields `(where, row)`; `where` names the file and the 0-based row index, for error messages.
    """
    p = Path(path)
    if p.is_dir():
        if (p / "dataset_info.json").is_file() or (p / "dataset_dict.json").is_file() or (p / "state.json").is_file():
            yield from _iter_saved(p, split)
            return
        shards = sorted(p.glob(parquet_glob))
        if not shards:
            raise DataError(f"{p}: no parquet files matching {parquet_glob!r} and not a saved dataset")
        for shard in shards:
            yield from _iter_file(shard)
        return
    if not p.is_file():
        raise DataError(f"{p}: no such file or folder")
    yield from _iter_file(p)


def _iter_file(p: Path) -> Iterator[Row]:
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        i = 0
        for batch in pq.ParquetFile(p).iter_batches(batch_size=512):
            for row in batch.to_pylist():
                yield f"{p} row {i}", row
                i += 1
    elif suffix == ".jsonl":
        with p.open(encoding="utf-8") as f:
            for i, line in enumerate(f):
                if line.strip():
                    try:
                        yield f"{p} row {i}", json.loads(line)
                    except json.JSONDecodeError as e:
                        raise DataError(f"{p} row {i}: not valid JSON ({e.msg})") from None
    elif suffix == ".json":
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataError(f"{p}: not valid JSON ({e.msg} at line {e.lineno})") from None
        if isinstance(data, dict):  # {"data": [...]} or {key: row}
            data = data.get("data", list(data.values()))
        if not isinstance(data, list):
            raise DataError(f"{p}: expected a JSON list of rows")
        for i, row in enumerate(data):
            yield f"{p} row {i}", row
    elif suffix == ".csv":
        import csv

        with p.open(encoding="utf-8", newline="") as f:
            for i, row in enumerate(csv.DictReader(f)):
                yield f"{p} row {i}", row
    else:
        raise DataError(f"{p}: unsupported file type {suffix!r} (json, jsonl, csv, parquet or a saved dataset)")


def _iter_saved(p: Path, split: str | None) -> Iterator[Row]:
    import datasets

    ds = datasets.load_from_disk(str(p))
    if isinstance(ds, datasets.DatasetDict):
        name = split or ("train" if "train" in ds else next(iter(ds)))
        if name not in ds:
            raise DataError(f"{p}: no split {name!r}; splits: {list(ds)}")
        ds = ds[name]
    for i, row in enumerate(ds):
        yield f"{p} row {i}", row


def need(row: dict, where: str, *cols: str) -> list[Any]:
    """The values of `cols`; a DataError naming the row and every missing column otherwise."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected an object, got {type(row).__name__}")
    missing = [c for c in cols if c not in row or row[c] is None]
    if missing:
        have = ", ".join(sorted(map(str, row))) or "none"
        raise DataError(f"{where}: missing column(s) {missing} (columns present: {have})")
    return [row[c] for c in cols]


def number(value: Any, where: str, column: str) -> float:
    """A finite number from a score column (numbers, or the numeric text CSV files hold); a DataError naming the
    row and the column for anything else: null, NaN, infinity, text, true/false."""
    if value is None or isinstance(value, bool):
        raise DataError(f"{where}: column {column!r} must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: column {column!r} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise DataError(f"{where}: column {column!r} must be a finite number, got {value!r}")
    return x


def check_image(src: Path | bytes, where: str, name: str) -> None:
    """A DataError naming the row and the image unless it decodes in full (a truncated or corrupt file would
    otherwise be found only when a training run reads it). JPEGs decode at 1/8 scale: all of the data, fast."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(src) if isinstance(src, bytes) else src) as im:
            im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
            im.load()
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, zlib and struct errors here
        raise DataError(f"{where}: image {name} does not decode ({type(e).__name__}: {e}); re-download it or drop "
                        "the row") from None


# -- media --------------------------------------------------------------------------------------------------
class MediaStore:
    """Resolves media referenced by a source and, when copying, places it under `out_dir/media/<source>/`.

    Without `out_dir` samples carry absolute paths to the source's files. With `out_dir` (and `copy=True`, the
    default then) files are copied and samples carry paths relative to `out_dir`, so the JSONL written there is
    relocatable. Media embedded as bytes (parquet image columns) always needs an `out_dir` to be written to.
    """

    def __init__(self, source: str, out_dir: str | Path | None = None, copy: bool | None = None):
        self.source = source
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.copy = (self.out_dir is not None) if copy is None else bool(copy)
        if self.copy and self.out_dir is None:
            raise ConfigError(f"{source}: copy_media needs an out_dir to copy the media into")

    def _dest(self, name: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "._-/" else "_" for c in name).strip("/").replace("..", "_")
        dest = self.out_dir / "media" / self.source / safe  # type: ignore[operator]
        dest.parent.mkdir(parents=True, exist_ok=True)
        return dest

    def _rel(self, dest: Path) -> str:
        return dest.relative_to(self.out_dir).as_posix()  # type: ignore[arg-type]

    def find(self, ref: str, roots: Iterable[str | Path], where: str, exts: Sequence[str] = ()) -> Path:
        """The first existing file or frame folder among `root/ref` (and `ref` itself when absolute)."""
        ref = str(ref)
        tried: list[str] = []
        q = Path(ref)
        bases = [q] if q.is_absolute() else [Path(r) / ref for r in roots]
        for base in bases:
            for cand in [base, *(base.with_name(base.name + e) for e in exts)]:
                tried.append(str(cand))
                if cand.is_file() or (cand.is_dir() and _frames(cand)):
                    return cand.resolve()
        raise DataError(f"{where}: media file {ref!r} not found (tried {', '.join(tried[:4])})")

    def file(self, ref: str, roots: Iterable[str | Path], where: str, exts: Sequence[str] = ()) -> Any:
        """A sample media item for a file (a path) or a folder of frames (a list of paths)."""
        found = self.find(ref, roots, where, exts)
        if found.is_dir():
            frames = _frames(found)
            for f in frames:
                check_image(f, where, str(f))
            return [self._place(f, f"{found.name}/{f.name}") for f in frames]
        if found.suffix.lower() in IMAGE_EXTS:
            check_image(found, where, str(found))
        return self._place(found, _short_name(found))

    def _place(self, src: Path, name: str) -> str:
        if not self.copy:
            return str(src)
        dest = self._dest(name)
        if not dest.exists():
            shutil.copy2(src, dest)
        return self._rel(dest)

    def image(self, value: Any, name: str, where: str, roots: Iterable[str | Path] = ()) -> str:
        """An image given as bytes, a `{"bytes", "path"}` struct (HF Image in parquet), a PIL image or a path."""
        if isinstance(value, dict):
            data, path = value.get("bytes"), value.get("path")
            if data:
                value = data
            elif path:
                return self.file(path, roots, where)
            else:
                raise DataError(f"{where}: image column holds neither bytes nor a path")
        if isinstance(value, str):
            return self.file(value, roots, where)
        if self.out_dir is None:
            raise ConfigError(f"{where}: the {self.source} source embeds its images; pass out_dir (CLI: --out) "
                              "so they can be written next to the output")
        if hasattr(value, "save"):  # a PIL image (datasets.load_from_disk decodes Image columns)
            buf = io.BytesIO()
            value.save(buf, format="PNG")
            value = buf.getvalue()
        if not isinstance(value, (bytes, bytearray)) or not value:
            raise DataError(f"{where}: image column is empty or not bytes")
        check_image(bytes(value), where, f"column {name!r}")
        dest = self._dest(name + _image_ext(bytes(value)))
        if not dest.exists():
            dest.write_bytes(value)
        return self._rel(dest)


def _frames(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.suffix.lower() in FRAME_EXTS)


def _short_name(p: Path) -> str:
    digest = hashlib.sha1(str(p.parent).encode()).hexdigest()[:8]
    return f"{digest}/{p.name}"


def _image_ext(data: bytes) -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if data[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return ".img"


# -- labels -------------------------------------------------------------------------------------------------
def place_pair(key: str, first: Any, second: Any, winner: int | str, order: str = "hash"):
    """Order a pair: `order="source"` keeps it; `"hash"` swaps about half the pairs by a stable hash of `key`,
    so the winner's position carries no signal. Returns (candidate 1, candidate 2, winner)."""
    if order not in ("hash", "source"):
        raise ConfigError(f"order must be 'hash' or 'source', got {order!r}")
    if order == "source" or not hashlib.sha256(key.encode()).digest()[0] & 1:
        return first, second, winner
    return second, first, {1: 2, 2: 1}.get(winner, winner)  # type: ignore[arg-type]


def rescale(x: float, src: Sequence[float], dst: Sequence[float]) -> float:
    """Linear map of `x` from the source range onto the task range, e.g. 1-4 -> 1-5: 1 + (x - 1) * 4 / 3."""
    (a, b), (c, d) = src, dst
    if not a <= x <= b:
        raise ValueError(f"{x} is outside the source scale {a}-{b}")
    return c + (x - a) * (d - c) / (b - a)


def to_label(x: float, decimals: bool = False) -> float | int:
    """A task label: rounded half-up to a whole number (the templates ask for whole numbers), or kept to two
    decimals with `decimals=True`."""
    return round(x, 2) if decimals else int(math.floor(x + 0.5))


def make_sample(where: str, **fields: Any) -> Sample:
    """A Sample with its target rendered by the task's answer format; rendering errors name the row."""
    sample = Sample(**fields)
    try:
        return sample.render_target()
    except (ValueError, KeyError) as e:
        raise DataError(f"{where}: cannot render a {sample.task} target for label {sample.label!r}: {e}") from None


def check_choice(name: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ConfigError(f"option {name} must be one of {list(allowed)}, got {value!r}")
    return value
