"""Scorers: the classic reward models users run beside a judge (CLIPScore, PickScore, HPSv2 / v2.1, ImageReward,
the LAION aesthetic predictor), by short name, each loaded through the library that has its model.

    spec = resolve_scorer("pickscore")                  # the registry (models/scorers.yaml)
    scorer = load_scorer("pickscore", device="cpu")     # or a hub id, or a local copy (folder or weights file)
    scorer.score(["a red circle"], [image])             # -> [float], in the scorer's units

| scorer      | library                                   | local copy                                          |
|-------------|-------------------------------------------|-----------------------------------------------------|
| clipscore   | transformers CLIPModel                    | save_pretrained folder                              |
| pickscore   | transformers CLIPModel                    | save_pretrained folder (processor: CLIP-ViT-H-14)  |
| hpsv2(.1)   | open_clip ViT-H-14 + the authors' .pt     | HPS_v2.1_compressed.pt (or its folder)              |
| imagereward | transformers BLIP + our MLP head          | ImageReward.pt + med_config.json                    |
| aesthetic   | transformers CLIPModel + our MLP head     | sac+logos+ava1-l14-linearMSE.pth (+ CLIP in clip/)  |

`backends.scorer` wraps a scorer for `RewardModel`; nothing here knows tasks or results. Importing this package
loads no model library (the loaders import torch, transformers or open_clip when called).
"""

from .base import Scorer, load_scorer
from .registry import ScorerSpec, find_scorer, identify_scorer, list_scorers, resolve_scorer

__all__ = ["Scorer", "ScorerSpec", "find_scorer", "identify_scorer", "list_scorers", "load_scorer",
           "resolve_scorer"]
