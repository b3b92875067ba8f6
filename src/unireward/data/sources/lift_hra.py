"""LiFT-HRA (HF datasets `Fudan-FUXI/LiFT-HRA-20K` / `-10K`, code `CodeGoat24/LiFT`) -> video-gen/point.

Published layout:

    <root>/LiFT-HRA-data.json
    <root>/videos/...            (HRA_part*.zip unzipped)

Each record names a `video` (resolved against <root>/videos, then <root>) and its prompt (`caption`/`prompt`,
or the human turn of LLaVA-style `conversations`), and rates three aspects as "Good|Normal|Bad. <reason>":
`semantic consistency`, `fidelity issues`, `motion issues` (flat keys as in LiFT-Critic's outputs, or
"<Aspect>: <Level>. <reason>" lines in the gpt turn of `conversations`). The exact record shape of the JSON
could not be confirmed from public pages; both shapes are accepted.

Scale: Bad = 1, Normal = 3, Good = 5 per aspect on the 1-5 video-gen/point scale; the label is the mean of the
rated aspects (whole number unless `decimals=True`). Dimensions: alignment <- semantic consistency,
physics <- motion, style <- fidelity. The reasons are kept as the rationale (`rationale=False` drops them).
"""

from __future__ import annotations

import re
from typing import Iterator

from ...errors import DataError
from ..schema import Sample
from ._common import VIDEO_EXTS, MediaStore, find_file, iter_rows, make_sample, to_label

NAME = "lift_hra"
LEVELS = {"bad": 1, "normal": 3, "good": 5}
ASPECTS = {  # source key -> (our dimension, display name)
    "semantic consistency": ("alignment", "Semantic consistency"),
    "motion issues": ("physics", "Motion"),
    "fidelity issues": ("style", "Fidelity"),
}
_LINE = re.compile(r"^\s*(semantic consistency|motion(?: issues)?|fidelity(?: issues)?)\s*[:\-]\s*(.+)$", re.I | re.M)


def convert(path, out_dir=None, *, decimals: bool = False, dimensions: bool = False, rationale: bool = True,
            copy_media: bool | None = None) -> Iterator[Sample]:
    file = find_file(path, ["LiFT-HRA-data.json", "*.json"], "LiFT-HRA annotation file")
    roots = [file.parent / "videos", file.parent]
    media = MediaStore(NAME, out_dir, copy_media)
    for where, row in iter_rows(file):
        if not isinstance(row, dict) or "video" not in row:
            raise DataError(f"{where}: missing column(s) ['video']")
        prompt, ratings = _prompt(row, where), _ratings(row)
        if not ratings:
            raise DataError(f"{where}: missing column(s) {list(ASPECTS)} (no Good/Normal/Bad ratings found)")
        dims = {ASPECTS[k][0]: LEVELS[level] for k, (level, _) in ratings.items()}
        label = to_label(sum(dims.values()) / len(dims), decimals)
        why = "\n".join(f"{ASPECTS[k][1]}: {level.capitalize()}. {reason}".strip()
                        for k, (level, reason) in ratings.items()) if rationale else None
        yield make_sample(
            where, id=f"{NAME}/{row.get('id', row.get('video_id', row['video']))}",
            task="video-gen/point+dims" if dimensions else "video-gen/point", prompt=prompt,
            media=[media.file(str(row["video"]), roots, where, VIDEO_EXTS)], label=label, rationale=why,
            dimensions=dims, source=NAME, meta={"levels": {k: v[0] for k, v in ratings.items()}},
        )


def _prompt(row: dict, where: str) -> str:
    for key in ("caption", "prompt", "text"):
        if row.get(key):
            return str(row[key])
    for turn in row.get("conversations") or []:
        if turn.get("from") in ("human", "user"):
            text = re.sub(r"<video>|<image>", "", str(turn.get("value", ""))).strip()
            m = re.search(r"(?:caption|prompt)[^:\n]*:\s*(.+)", text, re.I)
            return (m.group(1) if m else text).strip().strip('"')
    raise DataError(f"{where}: missing column(s) ['caption'] (no prompt in the record)")


def _ratings(row: dict) -> dict[str, tuple[str, str]]:
    """{source aspect: (level, reason)} from flat keys or from the gpt turn."""
    texts = {k: str(row[k]) for k in ASPECTS if row.get(k)}
    if not texts:
        for turn in row.get("conversations") or []:
            if turn.get("from") in ("gpt", "assistant"):
                for m in _LINE.finditer(str(turn.get("value", ""))):
                    name = m.group(1).lower()
                    key = next(k for k in ASPECTS if k.startswith(name.split()[0]))
                    texts[key] = m.group(2)
    out = {}
    for key, text in texts.items():
        m = re.match(r"\s*(good|normal|bad)\b[.,:;]?\s*(.*)", text, re.I | re.S)
        if m:
            out[key] = (m.group(1).lower(), m.group(2).strip())
    return out
