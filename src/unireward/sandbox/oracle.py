"""The sandbox oracle: exact truth about captions, answers and pixels.

Text side: `parse_caption` turns a caption back into facts, `required_facts` adds what a caption implies but
does not say (a generated video must move smoothly), `check` / `score` give which facts a scene satisfies and
the fraction satisfied, `parse_answer` / `answer_score` judge an answer to one of the world's questions.

Pixel side (no scene needed, so it also checks generator outputs): `read_image` takes an RGB array and finds
the background (median of the border pixels), the foreground (pixels far from it), labels each foreground pixel
with its nearest palette colour, and keeps the largest 4-connected single-colour region: colour = that palette
colour, position = the 3x3 cell of its bounding-box centre, shape = the best-matching template (square, circle,
triangle drawn at the bounding-box size, by IoU). `read_video` reads every frame and adds motion (dominant axis
of the centroid displacement from first to last seen frame) and physics ("flicker" if the object vanishes in
some frame, "teleport" if one step jumps much further than the typical step, else "smooth").
`score_media(caption, array)` is the fraction of the caption's required facts that the pixels show.

Edits: `parse_instruction` reads a world instruction ("Make the red circle blue."), `edit_targets` gives what a
faithful edit of a source shows (the instructed value, every other fact kept), `edit_check` / `edit_score` score
an edit against the source: score = (done + kept) / 2, where done = the instructed change is shown and kept = the
fraction of the source's other attributes left as they were. So faithful 1, over-edited (one more change) 0.75,
untouched (the source itself) 0.5, wrong attribute (another attribute changed instead) 0.25; with both other
attributes changed, over-edited 0.5 and wrong 0. `edit_weights` writes the same score as an integer tally (the
instructed attribute counts as much as all the others together): tally / (2 x others) = score.
"""

from __future__ import annotations

import re
from itertools import permutations

import numpy as np

from .world import (ANSWER_STYLES, COLOURS, DIRECTIONS, EDIT_INSTRUCTIONS, POSITIONS, QUESTIONS, SHAPES, VALUES,
                    Scene, shape_mask)

PALETTE = np.array(list(COLOURS.values()), dtype=np.int32)
FOREGROUND_DISTANCE = 50  # RGB distance from the background that counts as object
_OBJ = (rf"an? ({'|'.join(COLOURS)}) ({'|'.join(SHAPES)})"
        rf"(?: at the ({'|'.join(sorted(POSITIONS, key=len, reverse=True))}))?")
_CAPTION = re.compile(rf"^\s*{_OBJ}(?: and {_OBJ})?(?: moving ({'|'.join(DIRECTIONS)}))?\s*\.?\s*$", re.I)


# -- captions and facts -----------------------------------------------------------------------------------------
def parse_caption(text: str) -> dict[str, str] | None:
    """Caption -> facts (same keys as `Scene.facts`, without physics), or None if it is not a world caption."""
    m = _CAPTION.match(text)
    if not m:
        return None
    g = [x.lower() if x else None for x in m.groups()]
    out: dict[str, str] = {}
    for i, (c, s, p) in enumerate((g[0:3], g[3:6])):
        if c is None:
            continue
        sfx = "" if i == 0 else "_2"
        out["colour" + sfx], out["shape" + sfx] = c, s
        if p:
            out["position" + sfx] = p
    if g[6]:
        out["motion"] = g[6]
    return out


def required_facts(caption: str | dict) -> dict[str, str]:
    """What a candidate must show to match the caption: its facts, plus smooth physics for a video caption."""
    facts = parse_caption(caption) if isinstance(caption, str) else dict(caption)
    if facts is None:
        raise ValueError(f"not a sandbox caption: {caption!r}")
    if "motion" in facts:
        facts.setdefault("physics", "smooth")
    return facts


def check(caption: str | dict, shown: Scene | dict) -> dict[str, bool]:
    """Required fact -> whether the scene (or a facts dict, e.g. a pixel reading) satisfies it."""
    req = required_facts(caption)
    facts = shown.facts() if isinstance(shown, Scene) else shown
    if "colour_2" in req:  # two objects: compare as a set, best assignment
        return max((_check_objects(req, facts, perm) for perm in permutations(("", "_2"))),
                   key=lambda d: sum(d.values()))
    return {k: facts.get(k) == v for k, v in req.items()}


def _check_objects(req: dict, facts: dict, perm: tuple[str, str]) -> dict[str, bool]:
    out = {}
    for k, v in req.items():
        base, _, idx = k.partition("_")
        src = base + perm[int(idx or 1) - 1] if base in ("colour", "shape", "position") else k
        out[k] = facts.get(src) == v
    return out


def score(caption: str | dict, shown: Scene | dict) -> float:
    """Fraction of the caption's required facts that the scene (or reading) satisfies."""
    hits = check(caption, shown)
    return sum(hits.values()) / len(hits)


# -- questions and answers --------------------------------------------------------------------------------------
def question_attribute(q: str) -> str:
    """The attribute a world question asks about ("colour", ..., "describe")."""
    for attr, text in QUESTIONS.items():
        if q.strip().lower().startswith(text.split("{")[0].lower().strip()):
            return attr
    raise ValueError(f"not a sandbox question: {q!r}")


def parse_answer(q: str, text: str) -> dict[str, str]:
    """The facts an answer states about the question's attribute ({} if it states none, or several)."""
    attr = question_attribute(q)
    if attr == "describe":
        for style in ANSWER_STYLES["describe"]:
            pre, post = style.split("{v}")
            t = text.strip()
            if t.startswith(pre) and t.endswith(post):
                facts = parse_caption(t[len(pre):len(t) - len(post)] if post else t[len(pre):])
                if facts is not None:
                    return facts
        return {}
    values = sorted(VALUES[attr], key=len, reverse=True)
    found = re.findall(rf"\b({'|'.join(values)})\b", text.lower())
    return {attr: found[0]} if len(set(found)) == 1 else {}


def answer_score(q: str, text: str, scene: Scene) -> float:
    """Fraction of the asked facts the answer gets right (describe: all caption facts; unstated = wrong)."""
    attr = question_attribute(q)
    truth = scene.facts()
    keys = [k for k in truth if k != "physics"] if attr == "describe" else [attr]
    stated = parse_answer(q, text)
    return sum(stated.get(k) == truth[k] for k in keys) / len(keys)


def answer_is_right(q: str, text: str, scene: Scene) -> bool:
    return answer_score(q, text, scene) == 1.0


# -- edits ------------------------------------------------------------------------------------------------------
def _instruction_re(attr: str, template: str) -> re.Pattern:
    values = "|".join(sorted(VALUES[attr], key=len, reverse=True))
    obj = rf"({'|'.join(COLOURS)}) ({'|'.join(SHAPES)})"
    body = re.escape(template).replace(re.escape("{object}"), obj).replace(re.escape("{v}"), f"({values})")
    return re.compile(rf"^\s*{body}\s*$", re.I)


_INSTRUCTIONS = {attr: _instruction_re(attr, t) for attr, t in EDIT_INSTRUCTIONS.items()}


def parse_instruction(text: str) -> dict[str, str] | None:
    """"Make the red circle blue." -> {"attribute": "colour", "value": "blue", "colour": "red", "shape": "circle"}
    (the object named and the change asked), or None if it is not a world instruction."""
    for attr, pattern in _INSTRUCTIONS.items():
        m = pattern.match(text)
        if m:
            colour, shape, value = (g.lower() for g in m.groups())
            return {"attribute": attr, "value": value, "colour": colour, "shape": shape}
    return None


def _instruction(instruction: str | dict) -> dict[str, str]:
    parsed = parse_instruction(instruction) if isinstance(instruction, str) else instruction
    if parsed is None:
        raise ValueError(f"not a sandbox edit instruction: {instruction!r}")
    return parsed


def edit_targets(instruction: str | dict, source: Scene | dict) -> dict[str, str]:
    """What a faithful edit of `source` shows: the instructed attribute's new value first, then the source's
    other image facts (colour, shape, position) as they were."""
    ins = _instruction(instruction)
    facts = source.facts() if isinstance(source, Scene) else source
    out = {ins["attribute"]: ins["value"]}
    out.update({a: facts.get(a) for a in ("colour", "shape", "position") if a != ins["attribute"]})
    return out


def edit_weights(targets: dict[str, str]) -> dict[str, int]:
    """Tally weights: the instructed attribute (the first target) counts as much as all the others together."""
    first, *others = targets
    return {first: len(others), **{a: 1 for a in others}}


def edit_check(instruction: str | dict, source: Scene | dict, edited: Scene | dict) -> dict[str, bool]:
    """Target -> whether the edit shows it: the instructed change done, each other attribute kept."""
    facts = edited.facts() if isinstance(edited, Scene) else edited
    return {a: facts.get(a) == v for a, v in edit_targets(instruction, source).items()}


def edit_score(instruction: str | dict, source: Scene | dict, edited: Scene | dict) -> float:
    """(done + kept) / 2 in [0, 1] (see the module docstring): faithful 1 > over-edited > untouched > wrong."""
    hits = edit_check(instruction, source, edited)
    weights = edit_weights(hits)
    return sum(weights[a] for a, ok in hits.items() if ok) / (2 * (len(hits) - 1))


# -- pixels -----------------------------------------------------------------------------------------------------
def read_objects(img: np.ndarray, min_pixels: int = 4) -> list[dict]:
    """Single-colour regions, largest first: {"colour", "shape", "position", "centre": (y, x), "area"}."""
    a = np.asarray(img)[..., :3].astype(np.int32)
    h, w = a.shape[:2]
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    bg = np.median(border, axis=0)
    fg = ((a - bg) ** 2).sum(-1) > FOREGROUND_DISTANCE ** 2
    if not fg.any():
        return []
    nearest = ((a[:, :, None, :] - PALETTE) ** 2).sum(-1).argmin(-1)
    label = np.where(fg, nearest, -1)
    seen = np.zeros((h, w), bool)
    regions = []
    for y0, x0 in zip(*np.nonzero(fg)):
        if seen[y0, x0]:
            continue
        colour, stack, pix = label[y0, x0], [(y0, x0)], []
        seen[y0, x0] = True
        while stack:
            y, x = stack.pop()
            pix.append((y, x))
            for yy, xx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= yy < h and 0 <= xx < w and not seen[yy, xx] and label[yy, xx] == colour:
                    seen[yy, xx] = True
                    stack.append((yy, xx))
        if len(pix) >= min_pixels:
            regions.append(_describe(np.array(pix), int(colour), h, w))
    return sorted(regions, key=lambda r: -r["area"])


def _describe(pix: np.ndarray, colour: int, h: int, w: int) -> dict:
    (y0, x0), (y1, x1) = pix.min(0), pix.max(0)
    bh, bw = y1 - y0 + 1, x1 - x0 + 1
    box = np.zeros((bh, bw), bool)
    box[pix[:, 0] - y0, pix[:, 1] - x0] = True
    ious = {s: (box & shape_mask(s, bh, bw)).sum() / (box | shape_mask(s, bh, bw)).sum() for s in SHAPES}
    cy, cx = (y0 + y1 + 1) / 2, (x0 + x1 + 1) / 2
    cell = min(2, int(cy * 3 / h)) * 3 + min(2, int(cx * 3 / w))
    return {"colour": list(COLOURS)[colour], "shape": max(ious, key=ious.get), "position": POSITIONS[cell],
            "centre": (cy, cx), "area": len(pix)}


def read_image(img: np.ndarray, n_objects: int = 1) -> dict[str, str]:
    """Facts an image shows (keys as `Scene.facts`); missing keys when fewer objects are found."""
    out: dict[str, str] = {}
    for i, r in enumerate(read_objects(img)[:n_objects]):
        sfx = "" if i == 0 else f"_{i + 1}"
        out.update({k + sfx: r[k] for k in ("colour", "shape", "position")})
    return out


def read_video(frames: np.ndarray) -> dict[str, str]:
    """Facts a video (T, H, W, 3) shows: colour, shape (majority over frames), motion and physics."""
    frames = np.asarray(frames)
    h, w = frames.shape[1:3]
    found = [read_objects(f)[:1] for f in frames]
    seen = [r[0] for r in found if r]
    if not seen:
        return {}
    out = {k: max(set(v := [r[k] for r in seen]), key=v.count) for k in ("colour", "shape")}
    (y0, x0), (y1, x1) = seen[0]["centre"], seen[-1]["centre"]
    dy, dx = y1 - y0, x1 - x0
    if max(abs(dx), abs(dy)) >= 0.25 * max(h, w):
        out["motion"] = ("right" if dx > 0 else "left") if abs(dx) >= abs(dy) else ("down" if dy > 0 else "up")
    else:
        out["motion"] = "still"
    steps = [float(np.hypot(b["centre"][0] - a["centre"][0], b["centre"][1] - a["centre"][1]))
             for a, b in zip(seen, seen[1:])]
    if len(seen) < len(frames):
        out["physics"] = "flicker"
    elif steps and max(steps) > max(2.5 * float(np.median(steps)), 0.2 * max(h, w)):
        out["physics"] = "teleport"
    else:
        out["physics"] = "smooth"
    return out


def read_media(media: np.ndarray, n_objects: int = 1) -> dict[str, str]:
    """`read_image` for (H, W, 3) arrays, `read_video` for (T, H, W, 3) arrays."""
    media = np.asarray(media)
    return read_video(media) if media.ndim == 4 else read_image(media, n_objects)


def score_media(caption: str, media: np.ndarray) -> float:
    """Fraction of the caption's required facts the pixels show (the reward a perfect judge would give)."""
    n = 2 if "colour_2" in (parse_caption(caption) or {}) else 1
    return score(caption, read_media(media, n))
