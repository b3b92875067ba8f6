"""Examples for the base-model ladder: captioning (media -> caption) and text-only copy and matching.

Each generator returns a list of plain dicts, deterministic from `seed` and obeying the split rule of
`data.py` (train/val never show a held-out combination):

    {"images": [PIL.Image, ...], "video": bool, "prompt": str, "completion": str}

`images` holds one image, the frames of one video (`video` True), or nothing (text-only stages). The prompt is
the user turn, the completion the assistant turn the loss is taken on. The recipe that trains on them decides
how media are placed in the chat template.

- `captioning_examples`: "Describe the image." -> "a red circle at the top left" (videos: "a blue square moving
  right"; with `physics=True`, non-smooth videos read "..., teleporting" / "..., flickering").
- `text_copy_examples`: "Copy: <caption>" -> "<caption>".
- `text_match_examples`: the generation judge task with readings in place of media, e.g.
  "Prompt: a red circle at the top left\nImage 1 shows: ...\nImage 2 shows: ..." -> checklist +
  the registry's verdict ("Final Judgment: Image 1 is better than Image 2."), or the pointwise score line.
"""

from __future__ import annotations

import numpy as np

from ..tasks import get_task
from . import oracle
from .data import SPLITS, attributes, checklist, is_heldout, pair_label, pair_wrongs, perturb, scene_of
from .world import Scene, question, render_generated, render_image, render_video, sample_scene

PHYSICS_WORDS = {"teleport": "teleporting", "flicker": "flickering"}


def reading(scene: Scene) -> str:
    """What a perfect reader writes for a scene: its caption, plus the physics violation if any."""
    text = scene.caption()
    return text + (f", {PHYSICS_WORDS[scene.physics]}" if scene.physics != "smooth" else "")


def _rng(seed: int, split: str, stage: int) -> np.random.Generator:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}")
    return np.random.default_rng([seed, SPLITS.index(split), 100 + stage])


def _scene(rng: np.random.Generator, split: str, video: bool, physics: str = "smooth") -> Scene:
    want = split == "heldout"
    return sample_scene(rng, video=video, physics=physics, allowed=lambda s: is_heldout(s) == want)


def captioning_examples(n: int, seed: int = 0, split: str = "train", image_size: int = 32,
                        video: bool = False, video_frames: int = 8, physics: bool = False,
                        generated_share: float = 0.0) -> list[dict]:
    """Media -> caption examples (`physics=True`: videos may teleport or flicker, and say so;
    `generated_share` of the images are generator-like renders captioned with what the oracle reads)."""
    from PIL import Image

    rng, out = _rng(seed, split, 0 + video), []
    for _ in range(n):
        phys = str(rng.choice(["smooth", "teleport", "flicker"])) if video and physics else "smooth"
        scene = _scene(rng, split, video, phys)
        looks = not video and generated_share > 0 and rng.random() < generated_share
        seed_ = int(rng.integers(2**31))
        seen = _generated_reading(scene, split, seed_) if looks else None
        if seen is not None:
            scene, pix = seen[0], seen[1][None]
        else:
            pix = (render_video(scene, image_size, video_frames, seed_) if video
                   else render_image(scene, image_size, seed_)[None])
        out.append({"images": [Image.fromarray(f) for f in pix], "video": video,
                    "prompt": question("describe", video), "completion": reading(scene)})
    return out


def _generated_reading(scene: Scene, split: str, seed: int) -> tuple[Scene, np.ndarray] | None:
    """A generator-like render of `scene` and the scene the oracle reads in it; None when the reading is
    incomplete or crosses the split (a train render that reads as a held-out combination)."""
    image = render_generated(scene, seed)
    seen = scene_of(oracle.read_image(image))
    return (seen, image) if seen is not None and is_heldout(seen) == (split == "heldout") else None


def text_copy_examples(n: int, seed: int = 0, split: str = "train") -> list[dict]:
    """"Copy: <caption>" -> "<caption>", image and video captions mixed."""
    rng = _rng(seed, split, 2)
    caps = [_scene(rng, split, bool(rng.random() < 0.5)).caption() for _ in range(n)]
    return [{"images": [], "video": False, "prompt": f"Copy: {c}", "completion": c} for c in caps]


def text_match_examples(n: int, seed: int = 0, split: str = "train", kind: str = "pair",
                        rationale: bool = True) -> list[dict]:
    """Judge the readings of one or two candidates against a caption, in the gen task's answer format."""
    if kind not in ("pair", "point"):
        raise ValueError("kind must be 'pair' or 'point'")
    rng, out = _rng(seed, split, 3 if kind == "pair" else 4), []
    for _ in range(n):
        video = bool(rng.random() < 0.5)
        task = get_task(f"{'video' if video else 'image'}-gen/{kind}")
        scene, attrs = _scene(rng, split, video), attributes(video)
        wrongs = pair_wrongs(rng, len(attrs)) if kind == "pair" else [int(rng.integers(len(attrs) + 1))]
        cands = [perturb(scene, w, attrs, rng, split) for w in wrongs]
        if kind == "pair" and rng.random() < 0.5:
            cands = cands[::-1]
        req = oracle.required_facts(scene.caption())
        hits = [oracle.check(req, c) for c in cands]
        scores = [sum(h.values()) / len(h) for h in hits]
        noun = task.modality.capitalize()
        if kind == "pair":
            shows = "\n".join(f"{noun} {k + 1} shows: {reading(c)}" for k, c in enumerate(cands))
            label, lines = pair_label(scores), checklist(req, [c.facts() for c in cands], noun)
        else:
            shows, label = f"{noun} shows: {reading(cands[0])}", 1 + round(4 * scores[0])
            lines = checklist(req, [cands[0].facts()], None)
        out.append({"images": [], "video": False, "prompt": f"Prompt: {scene.caption()}\n{shows}",
                    "completion": task.target(label, rationale=lines if rationale else None), "label": label})
    return out


__all__ = ["captioning_examples", "text_copy_examples", "text_match_examples", "reading"]
