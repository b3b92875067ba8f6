"""HPDv2 (Human Preference Dataset v2; HF dataset `ymhao/HPDv2`, code `tgxs002/HPSv2`) -> image-gen/pair.

Published layout (local copy of the dataset repo):

    <root>/train.json   [{"prompt": str, "file_path": [str, ...], "human_preference": [int, ...]}, ...]
    <root>/test.json    [{"prompt": str, "image_path": [str, ...], "rank": [int, ...], "raw_annotations": [...]}]
    <root>/train/*.jpg, <root>/test/*.jpg

`human_preference` marks the preferred image(s) with 1 (votes); `rank` is the averaged ranking (1 = best).
Image paths are resolved against the root, then against `<root>/<split>/`.

Label: the image with more votes (or the best rank) wins against the one with the fewest votes (worst rank);
equal votes are a tie, dropped by default (`ties="keep"` keeps them). Pair order: see `_common.place_pair`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ...errors import DataError
from ..schema import Sample
from ._common import MediaStore, check_choice, find_file, iter_rows, make_sample, need, number, place_pair

NAME = "hpd"


def convert(path, out_dir=None, *, split: str = "train", ties: str = "drop", order: str = "hash",
            copy_media: bool | None = None) -> Iterator[Sample]:
    check_choice("ties", ties, ("drop", "keep"))
    file = find_file(path, [f"{split}.json", "*.json"], "HPDv2 annotation file")
    roots = [file.parent, file.parent / split]
    media = MediaStore(NAME, out_dir, copy_media)
    for where, row in iter_rows(file):
        (prompt,) = need(row, where, "prompt")
        if "human_preference" in row:
            paths, votes = need(row, where, "file_path", "human_preference")
            raw, kind = votes, "votes"
            scores = [number(v, where, "human_preference") for v in _listed(votes, where, "human_preference")]
        elif "rank" in row:
            paths, ranks = need(row, where, "image_path", "rank")
            raw, kind = ranks, "rank"
            scores = [-number(r, where, "rank") for r in _listed(ranks, where, "rank")]  # rank 1 is best
        else:
            raise DataError(f"{where}: missing column(s) ['human_preference' or 'rank']")
        if len(paths) < 2 or len(paths) != len(scores):
            raise DataError(f"{where}: needs >= 2 images with one vote/rank each, got {len(paths)} and {len(scores)}")
        best = max(range(len(scores)), key=lambda i: scores[i])
        worst = min(range(len(scores)), key=lambda i: scores[i])
        if scores[best] == scores[worst]:
            if ties == "drop":
                continue
            best, worst, winner = 0, 1, "tie"
        else:
            winner = 1
        first, second = (best, worst) if best < worst else (worst, best)  # keep the source order, then place
        winner = winner if winner == "tie" else (1 if first == best else 2)
        sid = f"{NAME}/{split}/{Path(where.rsplit(' row ', 1)[0]).stem}-{where.rsplit(' ', 1)[1]}"
        a, b, label = place_pair(sid, first, second, winner, order)
        yield make_sample(
            where, id=sid, task="image-gen/pair", prompt=str(prompt),
            media=[media.file(paths[a], roots, where), media.file(paths[b], roots, where)],
            label=label, source=NAME,
            meta={"split": split, kind: [raw[a], raw[b]], "source_index": [a, b]},
        )


def _listed(values, where: str, column: str) -> list:
    if not isinstance(values, list):
        raise DataError(f"{where}: column {column!r} must be a list with one entry per image, got {values!r}")
    return values
