"""Crash-safe, append-only JSONL of records keyed by id (construction's prompts, rejection sampling's samples).

    writer = RecordWriter("out/records.jsonl")     # recovers what an earlier (possibly killed) run wrote
    if prompt_id not in writer.done: ...; writer.append(record)

Each record is one line, written whole with a single `write`, flushed and fsync'd before `append` returns, so a
record either is on disk entirely or, if the process died mid-write, is a torn last line without a newline.
On open, a torn tail is cut off (and the prompt is redone); every complete line must parse. A prompt id that
is already recorded is never written again, whether the record says kept, dropped or error, so a restarted run
neither loses nor duplicates prompts. Media files are written (atomically, via rename) before their record.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

from ..errors import DataError


class RecordWriter:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.recovered_bytes = 0  # size of a torn tail cut off on open
        self.done: dict[str, str] = {}  # prompt id -> status
        self._recover()
        self._file = self.path.open("ab")
        _fsync_dir(self.path.parent)

    def _recover(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a torn last line from a killed run: drop it
            self.recovered_bytes = len(data) - end
            with self.path.open("r+b") as f:
                f.truncate(end)
                f.flush()
                os.fsync(f.fileno())
        for i, line in enumerate(data[:end].splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{self.path}:{i}: not valid JSON ({e.msg}); the file was edited or corrupted "
                                "in the middle, not just at a torn end") from None
            if rec.get("id") in self.done:
                raise DataError(f"{self.path}:{i}: prompt id {rec.get('id')!r} is recorded twice")
            self.done[rec["id"]] = rec.get("status", "")

    def append(self, record: dict[str, Any]) -> None:
        pid = record["id"]
        if pid in self.done:
            raise DataError(f"{self.path}: prompt id {pid!r} is already recorded")
        line = (json.dumps(record, ensure_ascii=False, default=_default) + "\n").encode()
        self._file.write(line)
        self._file.flush()
        os.fsync(self._file.fileno())
        self.done[pid] = record.get("status", "")

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> "RecordWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """The complete records of a records file (a torn last line is ignored)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such records file")
    with path.open("rb") as f:
        for i, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                return
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{i}: not valid JSON ({e.msg})") from None


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write a file via a temporary name and rename, so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"cannot write {type(o).__name__} to a record")


__all__ = ["RecordWriter", "atomic_write_bytes", "read_records"]
