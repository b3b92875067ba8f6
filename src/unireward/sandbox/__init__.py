"""The sandbox: a small synthetic world with an exact oracle, where the whole method runs on a laptop CPU.

- `world`: scenes (one coloured shape on a 3x3 grid, or moving in a short video), captions, questions, renders.
- `oracle`: exact truth from facts (captions, answers) and from pixels alone (`read_image`, `read_video`).
- `data`: unified `Sample` records for all eight tasks, split train / val / heldout (`generate_dataset`).
- `ladder_data`: captioning and text-only copy / matching examples for training a base model first.

Importing this package loads numpy only; the generator and training code import torch when used.
"""

from .data import HELDOUT_COMBOS, generate_dataset, is_heldout
from .oracle import read_image, read_media, read_video, score, score_media
from .world import Scene, render_image, render_video, sample_scene

__all__ = ["HELDOUT_COMBOS", "Scene", "generate_dataset", "is_heldout", "read_image", "read_media",
           "read_video", "render_image", "render_video", "sample_scene", "score", "score_media"]
