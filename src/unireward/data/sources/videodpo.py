"""VideoDPO (CVPR 2025, code `CIntellifusion/VideoDPO`) -> video-gen/pair.

Published layout (what `OmniScore/select_pairs.py` writes and the released 10K set ships):

    <root>/pair.json      [{"video1": int, "video2": int, "label": 0|1, "frame_caption": str}, ...]
    <root>/metadata.json  [{"basic": {"clip_path": str, "clip_duration": float, "globalidx": int},
                            "misc": {"frame_caption": [str]}}, ...]
    <root>/winvideos/000001.mp4, <root>/losevideos/000001.mp4

`video1`/`video2` index metadata.json. `label` 0 means video1 is preferred (the release writes the winning
video first with label 0), 1 means video2. `clip_path` may be absolute on the authors' machine; it is
resolved as given, against the root, then as `<root>/<its folder name>/<file name>`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ...errors import DataError
from ..schema import Sample
from ._common import MediaStore, find_file, iter_rows, make_sample, need, place_pair

NAME = "videodpo"


def convert(path, out_dir=None, *, order: str = "hash", copy_media: bool | None = None) -> Iterator[Sample]:
    pair_file = find_file(path, ["pair.json"], "VideoDPO pair.json")
    root = pair_file.parent
    meta_file = find_file(root, ["metadata.json"], "VideoDPO metadata.json")
    videos = [row for _, row in iter_rows(meta_file)]
    media = MediaStore(NAME, out_dir, copy_media)
    for where, row in iter_rows(pair_file):
        i1, i2, label = need(row, where, "video1", "video2", "label")
        items = []
        for idx in (i1, i2):
            if not isinstance(idx, int) or not 0 <= idx < len(videos):
                raise DataError(f"{where}: video index {idx!r} is not in {meta_file} ({len(videos)} entries)")
            vwhere = f"{meta_file} row {idx}"
            (basic,) = need(videos[idx], vwhere, "basic")
            (clip,) = need(basic, vwhere, "clip_path")
            items.append((clip, videos[idx]))
        if label not in (0, 1):
            raise DataError(f"{where}: label must be 0 (video1 preferred) or 1 (video2), got {label!r}")
        prompt = row.get("frame_caption") or (items[0][1].get("misc", {}).get("frame_caption") or [None])[0]
        if not prompt:
            raise DataError(f"{where}: missing column(s) ['frame_caption']")
        paths = []
        for clip, _ in items:
            c = Path(clip)
            paths.append(media.file(clip if not c.is_absolute() or c.exists() else f"{c.parent.name}/{c.name}",
                                    [root], where))
        sid = f"{NAME}/{Path(str(items[0][0])).stem}-{i1}-{i2}"
        a, b, winner = place_pair(sid, paths[0], paths[1], 1 if label == 0 else 2, order)
        yield make_sample(where, id=sid, task="video-gen/pair", prompt=str(prompt), media=[a, b], label=winner,
                          source=NAME, meta={"source_label": label})
