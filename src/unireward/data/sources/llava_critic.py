"""LLaVA-Critic-113k (HF dataset `lmms-lab/llava-critic-113k`) -> image-und/pair and image-und/point, with
the critic's rationales.

Published layout: parquet shards `pairwise/train-*.parquet` and `pointwise/train-*.parquet` with columns
`id`, `source`, `conversations` ([{"from": "human"|"gpt", "value": str}]) and `image` (HF Image struct
`{"bytes", "path"}`). The images are embedded, so they are written under `out_dir/media/llava_critic/`.

The human turn holds the question and the response(s) in one of the judge prompt formats below; the gpt turn
is the critique (kept as the rationale, minus its verdict line):
- "Question: [..] Response 1: [..] Response 2: [..]" + "The better response: [first|second|1|2|A|B]" or
  "... equally good" -> pair (tie);
- "<|User Prompt|> .. <|The Start of Assistant A's Answer|> .." + "[[A>B]]"-style verdicts -> pair (A=B tie);
- "[Question] .. [Assistant 1] .. [End of Assistant 1] [Assistant 2] .." + first line "s1 s2" (1-10 each)
  -> pair, plus one point per answer (1-10, kept; no rationale, the critique covers both answers);
- "... Text Caption: <caption> ... From 0 to 100, ..." + "Final Score: N" -> point, 0-100 mapped onto 1-10 as
  1 + N * 9 / 100 (the caption is the answer, the question asks for a description).
Rows in other formats are skipped and counted in `convert.skipped` (the last run's counts by subset).
The candidate order is the source's when rationales are kept (they name the positions).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Iterator

from ...errors import DataError
from ..schema import Sample
from ._common import MediaStore, iter_rows, make_sample, need, place_pair, rescale, to_label

NAME = "llava_critic"
EMBEDS_MEDIA = True
CAPTION_QUESTION = "Describe the image in detail."

_BRACKET = re.compile(r"Question:\s*\[(.*?)\]\s*(?:Response 1|Response A|The first response):\s*\[(.*?)\]\s*"
                      r"(?:Response 2|Response B|The second response):\s*\[(.*)\]", re.S)
_BETTER = re.compile(r"^.*The better response:\s*\[?\s*(?:Response\s*)?(\w+)\s*\]?.*$", re.M | re.I)
_EQUAL = re.compile(r"equally (?:good|bad|helpful)", re.I)
_ARENA = re.compile(r"<\|User Prompt\|>\s*(.*?)\s*<\|The Start of Assistant A's Answer\|>\s*(.*?)\s*"
                    r"<\|The End of Assistant A's Answer\|>\s*<\|The Start of Assistant B's Answer\|>\s*(.*?)\s*"
                    r"<\|The End of Assistant B's Answer\|>", re.S)
_VERDICT = re.compile(r"^.*\[\[(A>>B|A>B|A=B|B>A|B>>A)\]\].*$", re.M)
_BENCH = re.compile(r"\[Question\]\s*(.*?)\s*\[Assistant 1\]\s*(.*?)\s*\[End of Assistant 1\]\s*"
                    r"\[Assistant 2\]\s*(.*?)\s*\[End of Assistant 2\]", re.S)
_TWO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s+(\d+(?:\.\d+)?)\s*(?:\n|$)")
_CAPTION = re.compile(r"Text Caption:\s*(.*?)\s*\n\s*From 0 to 100", re.S)
_FINAL = re.compile(r"^.*Final Score:\s*(\d+(?:\.\d+)?).*$", re.M)


def convert(path, out_dir=None, *, subsets=("pairwise", "pointwise"), rationale: bool = True,
            order: str | None = None, decimals: bool = False, copy_media: bool | None = None) -> Iterator[Sample]:
    p = Path(path)
    media = MediaStore(NAME, out_dir, copy_media)
    order = order or ("source" if rationale else "hash")
    convert.skipped = Counter()
    sources = [(s, p / s) for s in subsets if (p / s).is_dir()] if p.is_dir() else [(p.parent.name, p)]
    if not sources:
        raise DataError(f"{p}: none of the subset folders {list(subsets)} found")
    for subset, src in sources:
        for where, row in iter_rows(src):
            rid, conv, image = need(row, where, "id", "conversations", "image")
            human = next((t["value"] for t in conv if t.get("from") in ("human", "user")), None)
            gpt = next((t["value"] for t in conv if t.get("from") in ("gpt", "assistant")), None)
            if human is None or gpt is None:
                raise DataError(f"{where}: 'conversations' needs a human and a gpt turn")
            parsed = _parse(human.replace("<image>", "").strip(), gpt)
            if parsed is None:
                convert.skipped[subset] += 1
                continue
            img = media.image(image, f"{subset}_{rid}", where)
            base = {"source": NAME, "media": [img], "meta": {"subset": subset, "upstream": row.get("source")}}
            why = _strip_verdict(gpt) if rationale else None
            kind = parsed[0]
            if kind == "pair":
                _, q, r1, r2, winner, scores = parsed
                sid = f"{NAME}/{subset}/{rid}"
                a, b, label = place_pair(sid, r1, r2, winner, order)
                yield make_sample(where, id=sid, task="image-und/pair", prompt=q, answers=[a, b], label=label,
                                  rationale=why if a == r1 else None, **base)
                for i, (ans, score) in enumerate(zip((r1, r2), scores or ())):
                    yield make_sample(where, id=f"{sid}/point{i + 1}", task="image-und/point", prompt=q,
                                      answers=[ans], label=to_label(score, decimals), **base)
            else:
                _, caption, score = parsed
                yield make_sample(where, id=f"{NAME}/{subset}/{rid}", task="image-und/point",
                                  prompt=CAPTION_QUESTION, answers=[caption],
                                  label=to_label(rescale(score, (0, 100), (1, 10)), decimals), rationale=why, **base)


convert.skipped = Counter()


def _parse(human: str, gpt: str):
    """("pair", question, answer 1, answer 2, winner, (score1, score2) | None) | ("point", caption, 0-100) | None"""
    m = _BRACKET.search(human)
    if m:
        b = _BETTER.search(gpt)
        choice = b.group(1).lower() if b else ""
        winner = {"first": 1, "1": 1, "a": 1, "second": 2, "2": 2, "b": 2}.get(choice)
        if winner is None and _EQUAL.search(gpt[-300:]):
            winner = "tie"
        return None if winner is None else ("pair", m.group(1).strip(), m.group(2).strip(), m.group(3).strip(),
                                            winner, None)
    m = _ARENA.search(human)
    if m:
        v = _VERDICT.findall(gpt)
        if not v:
            return None
        winner = {"A>>B": 1, "A>B": 1, "A=B": "tie", "B>A": 2, "B>>A": 2}[v[-1]]
        return "pair", m.group(1).strip(), m.group(2).strip(), m.group(3).strip(), winner, None
    m = _BENCH.search(human)
    if m:
        s = _TWO.match(gpt)
        if not s:
            return None
        s1, s2 = float(s.group(1)), float(s.group(2))
        if not (1 <= s1 <= 10 and 1 <= s2 <= 10):
            return None
        winner = 1 if s1 > s2 else 2 if s2 > s1 else "tie"
        return "pair", m.group(1).strip(), m.group(2).strip(), m.group(3).strip(), winner, (s1, s2)
    m = _CAPTION.search(human)
    finals = _FINAL.findall(gpt)
    if m and finals:
        score = float(finals[-1])
        if 0 <= score <= 100:
            return "point", m.group(1).strip(), score
    return None


def _strip_verdict(gpt: str) -> str | None:
    text = _TWO.sub("", gpt, count=1)
    for rx in (_BETTER, _VERDICT, _FINAL):
        text = rx.sub("", text)
    text = text.strip()
    return text or None
