"""Pick-a-Pic v2 (HF dataset `yuvalkirstain/pickapic_v2`) -> image-gen/pair, with ties.

Published layout: parquet shards (`data/train-*.parquet`, or a `save_to_disk` folder) with columns
`caption`, `jpg_0`, `jpg_1` (JPEG bytes), `label_0`, `label_1` (1/0, or 0.5/0.5 for a tie), `has_label`,
`are_different`, `image_0_uid`, `image_1_uid`, `model_0`, `model_1`, `ranking_id`, `user_id`, ...

The images are embedded, so they are written under `out_dir/media/pickapic/` (out_dir is required).
Rows without a label or with identical images are skipped. label_0 > label_1 -> image 0 wins; equal -> tie
(`ties="drop"` drops them).
"""

from __future__ import annotations

from typing import Iterator

from ..schema import Sample
from ._common import MediaStore, check_choice, iter_rows, make_sample, need, number, place_pair

NAME = "pickapic"
EMBEDS_MEDIA = True


def convert(path, out_dir=None, *, split: str | None = None, ties: str = "keep", order: str = "hash",
            copy_media: bool | None = None) -> Iterator[Sample]:
    check_choice("ties", ties, ("drop", "keep"))
    media = MediaStore(NAME, out_dir, copy_media)
    for where, row in iter_rows(path, split=split):
        caption, jpg0, jpg1, l0, l1 = need(row, where, "caption", "jpg_0", "jpg_1", "label_0", "label_1")
        if row.get("has_label") is False or row.get("are_different") is False:
            continue
        l0, l1 = number(l0, where, "label_0"), number(l1, where, "label_1")
        winner = 1 if l0 > l1 else 2 if l1 > l0 else "tie"
        if winner == "tie" and ties == "drop":
            continue
        uid0 = str(row.get("image_0_uid") or f"{where.rsplit(' ', 1)[1]}_0")
        uid1 = str(row.get("image_1_uid") or f"{where.rsplit(' ', 1)[1]}_1")
        sid = f"{NAME}/{row.get('ranking_id', uid0 + '-' + uid1)}"
        img0, img1 = media.image(jpg0, uid0, where), media.image(jpg1, uid1, where)
        a, b, label = place_pair(sid, img0, img1, winner, order)
        yield make_sample(where, id=sid, task="image-gen/pair", prompt=str(caption), media=[a, b], label=label,
                          source=NAME, meta={"labels": [l0, l1], "models": [row.get("model_0"), row.get("model_1")],
                                             "swapped": a is not img0})
