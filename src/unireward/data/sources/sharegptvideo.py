"""ShareGPTVideo DPO 17K (LLaVA-Hound; HF dataset `ShareGPTVideo/train_video_and_instruction`, file
`video_instruction/train/dpo/sft_dpo_17k.jsonl`) -> video-und/pair and video-und/point.

Published layout:

    <root>/sft_dpo_17k.jsonl   {"id", "video", "prompt", "answer", "chosen", "rejected",
                                "chosen_score", "rejected_score"} per line
    <root>/<videos_dir>/<video>   a folder of frames (the released train_300k frames) or a video file

`video` is resolved against `<root>/<videos_dir>` (default "videos"), then `<root>`; a folder of frames becomes
a frame list, a name without extension also matches `<name>.mp4` etc.

Pairs: chosen vs rejected (order hashed). Points: one per answer, its score mapped from the source scale
(`score_scale`, default 1-5, the language-model reward's scale) onto the 1-10 video-und/point scale,
s -> 1 + (s - 1) * 9 / 4, rounded unless `decimals=True`. `mode` = "both" | "pair" | "point".
"""

from __future__ import annotations

from typing import Iterator

from ...errors import DataError
from ..schema import Sample
from ._common import (VIDEO_EXTS, MediaStore, check_choice, find_file, iter_rows, make_sample, need, number,
                      place_pair, rescale, to_label)

NAME = "sharegptvideo_dpo"


def convert(path, out_dir=None, *, mode: str = "both", videos_dir: str = "videos", score_scale=(1, 5),
            decimals: bool = False, order: str = "hash", copy_media: bool | None = None) -> Iterator[Sample]:
    check_choice("mode", mode, ("both", "pair", "point"))
    file = find_file(path, ["sft_dpo_17k.jsonl", "*.jsonl"], "ShareGPTVideo DPO jsonl")
    roots = [file.parent / videos_dir, file.parent]
    media = MediaStore(NAME, out_dir, copy_media)
    for where, row in iter_rows(file):
        rid, video, prompt, chosen, rejected = need(row, where, "id", "video", "prompt", "chosen", "rejected")
        prompt = str(prompt).replace("<video>\n", "").replace("<video>", "").strip()
        item = media.file(str(video), roots, where, VIDEO_EXTS)
        sid = f"{NAME}/{rid}"
        if mode in ("both", "pair"):
            a, b, label = place_pair(sid, str(chosen), str(rejected), 1, order)
            yield make_sample(where, id=sid, task="video-und/pair", prompt=prompt, media=[item], answers=[a, b],
                              label=label, source=NAME, meta={"video": video})
        if mode in ("both", "point"):
            cs, rs = need(row, where, "chosen_score", "rejected_score")
            for tag, answer, score in (("chosen", chosen, cs), ("rejected", rejected, rs)):
                try:
                    value = rescale(number(score, where, f"{tag}_score"), score_scale, (1, 10))
                except ValueError as e:
                    raise DataError(f"{where}: {tag}_score: {e}") from None
                yield make_sample(where, id=f"{sid}/{tag}", task="video-und/point", prompt=prompt, media=[item],
                                  answers=[str(answer)], label=to_label(value, decimals), source=NAME,
                                  meta={"video": video, "source_score": score})
