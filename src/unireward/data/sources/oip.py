"""Open Image Preferences (OIP; HF dataset `data-is-better-together/open-image-preferences-v1-binarized`)
-> image-gen/pair.

Published layout: parquet shards `data/train-*.parquet` (or a `save_to_disk` folder) with columns `prompt`,
`chosen` and `rejected` (HF Image structs `{"bytes", "path"}`), plus `chosen_model`, `rejected_model`, `id`.
Column names can be overridden (`prompt_col`, `chosen_col`, `rejected_col`).

The images are embedded, so they are written under `out_dir/media/oip/` (out_dir is required unless the image
structs hold paths to existing files). chosen wins; the pair order is hashed (see `_common.place_pair`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..schema import Sample
from ._common import MediaStore, iter_rows, make_sample, need, place_pair

NAME = "oip"
EMBEDS_MEDIA = True


def convert(path, out_dir=None, *, split: str | None = None, prompt_col: str = "prompt",
            chosen_col: str = "chosen", rejected_col: str = "rejected", order: str = "hash",
            copy_media: bool | None = None) -> Iterator[Sample]:
    media = MediaStore(NAME, out_dir, copy_media)
    root = Path(path) if Path(path).is_dir() else Path(path).parent
    for where, row in iter_rows(path, split=split):
        prompt, chosen, rejected = need(row, where, prompt_col, chosen_col, rejected_col)
        key = str(row.get("id") or where.rsplit(" ", 1)[1])
        sid = f"{NAME}/{key}"
        c = media.image(chosen, f"{key}_chosen", where, roots=[root])
        r = media.image(rejected, f"{key}_rejected", where, roots=[root])
        a, b, label = place_pair(sid, c, r, 1, order)
        yield make_sample(where, id=sid, task="image-gen/pair", prompt=str(prompt), media=[a, b], label=label,
                          source=NAME, meta={"models": [row.get("chosen_model"), row.get("rejected_model")]})
