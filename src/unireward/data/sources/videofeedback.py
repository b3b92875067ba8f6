"""VideoFeedback (HF dataset `TIGER-Lab/VideoFeedback`, the VideoScore training set) -> video-gen/point.

Published layout (local copy of the dataset repo):

    <root>/annotated/train-*.parquet   (config "annotated"; older revisions: <root>/train/data_annotated.json)
    <root>/videos/<id>.mp4             (videos_annotated_train.zip unzipped; `videos_dir` overrides)
    <root>/frames/...                  (frames_annotated.zip; used with media="frames")

Columns: `id`, `images` (frame paths), `text prompt`, `video link`, and five integer 1-4 ratings:
`visual quality`, `temporal consistency`, `dynamic degree`, `text-to-video alignment`, `factual consistency`.

Scale: each 1-4 rating maps linearly onto the 1-5 video-gen/point scale, r -> 1 + (r - 1) * 4 / 3; the label is
the mean of the five mapped ratings, rounded to a whole number unless `decimals=True`. Dimensions (same map):
alignment <- text-to-video alignment, physics <- factual consistency, style <- visual quality. The raw 1-4
ratings are kept in `meta["ratings"]`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ...errors import DataError
from ..schema import Sample
from ._common import (VIDEO_EXTS, MediaStore, check_choice, iter_rows, make_sample, need, number, rescale,
                      to_label)

NAME = "videofeedback"
RATINGS = ["visual quality", "temporal consistency", "dynamic degree", "text-to-video alignment",
           "factual consistency"]
DIMS = {"alignment": "text-to-video alignment", "physics": "factual consistency", "style": "visual quality"}
SRC, DST = (1, 4), (1, 5)


def convert(path, out_dir=None, *, subset: str = "annotated", split: str = "train", media: str = "video",
            videos_dir: str = "videos", frames_dir: str = ".", decimals: bool = False, dimensions: bool = False,
            copy_media: bool | None = None) -> Iterator[Sample]:
    check_choice("media", media, ("video", "frames"))
    p = Path(path)
    root = p if p.is_dir() else p.parent
    source = p
    if p.is_dir() and not list(p.glob(f"{subset}/{split}-*.parquet")) and (p / split / f"data_{subset}.json").is_file():
        source = p / split / f"data_{subset}.json"
    rows = iter_rows(source, parquet_glob=f"{subset}/{split}-*.parquet")
    store = MediaStore(NAME, out_dir, copy_media)
    for where, row in rows:
        vid, prompt, *scores = need(row, where, "id", "text prompt", *RATINGS)
        try:
            mapped = {k: rescale(number(s, where, k), SRC, DST) for k, s in zip(RATINGS, scores)}
        except ValueError as e:
            raise DataError(f"{where}: {e}") from None
        if media == "video":
            item = store.file(str(vid), [Path(root) / videos_dir], where, VIDEO_EXTS)
        else:
            (frames,) = need(row, where, "images")
            item = [store.file(f, [Path(root) / frames_dir], where) for f in frames]
        label = to_label(sum(mapped.values()) / len(mapped), decimals)
        yield make_sample(
            where, id=f"{NAME}/{subset}/{vid}", task="video-gen/point+dims" if dimensions else "video-gen/point",
            prompt=str(prompt), media=[item], label=label, source=NAME,
            dimensions={d: to_label(mapped[k], decimals) for d, k in DIMS.items()},
            meta={"ratings": dict(zip(RATINGS, scores)), "video_link": row.get("video link")},
        )
