"""EvalMuse-40K (HF dataset `DY-Evalab/EvalMuse`, code `DYEvaLab/EvalMuse`) -> image-gen/pair and image-gen/point.

Published layout (local copy; `images.zip.part-*` concatenated and unzipped):

    <root>/train_list.json  [{"prompt_id": str, "prompt": str, "type": str, "img_path": str,
                              "total_score": [int 1-5 per annotator], "element_score": {element: [0/1, ...]},
                              "promt_meaningless": [...], "split_confidence": [...], "attribute_confidence": [...]}]
    <root>/images/...       (img_path is resolved against <root>, then <root>/images)

Points: the mean of the annotators' 1-5 ratings (rows with fewer than `min_ratings` ratings are skipped) on the
1-5 image-gen/point scale, unchanged (1-5 -> 1-5), rounded to a whole number unless `decimals=True`. EvalMuse
rates text-image alignment, so the score is also recorded as the `alignment` dimension. Per element, the mean of
its 0/1 annotations and present/absent (mean >= 0.5) are kept in `meta["elements"]`.

Pairs: per prompt_id, the image with the highest mean rating against the one with the lowest; prompts whose
best and worst means are equal are skipped. `mode` = "both" | "pair" | "point".
"""

from __future__ import annotations

import json
from typing import Iterator

from ...errors import DataError
from ..schema import Sample
from ._common import (MediaStore, check_choice, find_file, iter_rows, make_sample, need, number, place_pair,
                      to_label)

NAME = "evalmuse"


def convert(path, out_dir=None, *, mode: str = "both", min_ratings: int = 3, decimals: bool = False,
            dimensions: bool = False, order: str = "hash", copy_media: bool | None = None) -> Iterator[Sample]:
    check_choice("mode", mode, ("both", "pair", "point"))
    file = find_file(path, ["train_list.json", "*.json"], "EvalMuse annotation file")
    roots = [file.parent, file.parent / "images"]
    media = MediaStore(NAME, out_dir, copy_media)
    groups: dict[str, list[tuple[str, float, str, str]]] = {}
    for where, row in iter_rows(file):
        pid, prompt, img, ratings = need(row, where, "prompt_id", "prompt", "img_path", "total_score")
        ratings = [number(r, where, "total_score") for r in (ratings if isinstance(ratings, list) else [ratings])]
        if len(ratings) < min_ratings:
            continue
        mean = sum(ratings) / len(ratings)
        image = media.file(img, roots, where)
        groups.setdefault(str(pid), []).append((where, mean, image, str(prompt)))
        if mode == "pair":
            continue
        label = to_label(mean, decimals)
        yield make_sample(
            where, id=f"{NAME}/point/{pid}/{img}", task="image-gen/point+dims" if dimensions else "image-gen/point",
            prompt=str(prompt), media=[image], label=label, dimensions={"alignment": label}, source=NAME,
            meta={"mean_rating": round(mean, 4), "ratings": ratings, "type": row.get("type"),
                  "elements": _elements(row.get("element_score"), where)},
        )
    if mode == "point":
        return
    for pid, items in groups.items():
        if len(items) < 2:
            continue
        best = max(items, key=lambda t: t[1])
        worst = min(items, key=lambda t: t[1])
        if best[1] == worst[1]:
            continue
        sid = f"{NAME}/pair/{pid}"
        a, b, label = place_pair(sid, best, worst, 1, order)
        yield make_sample(
            best[0], id=sid, task="image-gen/pair", prompt=best[3], media=[a[2], b[2]], label=label, source=NAME,
            meta={"mean_ratings": [round(a[1], 4), round(b[1], 4)], "images_of_prompt": len(items)},
        )


def _elements(value, where: str) -> dict:
    """{element: {"score": mean of 0/1 annotations, "present": mean >= 0.5}}; the card types it as a string."""
    if value in (None, "", {}):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise DataError(f"{where}: column 'element_score' is not a JSON object") from None
    if not isinstance(value, dict):
        raise DataError(f"{where}: column 'element_score' must map elements to annotations")
    out = {}
    for element, marks in value.items():
        marks = marks if isinstance(marks, list) else [marks]
        if marks:
            mean = sum(number(m, where, f"element_score[{element!r}]") for m in marks) / len(marks)
            out[element] = {"score": round(mean, 4), "present": mean >= 0.5}
    return out
