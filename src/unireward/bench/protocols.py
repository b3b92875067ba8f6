"""Evaluation protocols: which order the judge sees each pair in, and how a verdict maps back to the data.

- `reference` reproduces how published UnifiedReward numbers were computed: one order per item, a seeded swap
  where the published script swapped (VL-RewardBench: `random.seed(0)`, one `random.random()` per item in
  dataset order, the responses swapped iff the draw is >= 0.5; GenAI-Bench: a 50% swap, which we seed, swapped
  iff the draw is < 0.5, as `random.choices([True, False])` does), no swap elsewhere.
- `clean` is the protocol we stand behind: both candidate orders (`RewardModel(both_orders=True)`), explicit ties,
  unparsed outputs counted apart, the position-consistency rate reported.

Everything a record stores is in dataset order: candidate 1 is the dataset's first candidate (left / A /
response[0] / Output1), whatever order the judge was shown.
"""

from __future__ import annotations

import random
from typing import Any

from ..grouping import swap_probs, unswap

PROTOCOLS = ("reference", "clean")
SWAP_RULES = {
    # name -> swapped(draw); one draw of random.Random(seed).random() per item, in dataset order
    "ge": lambda u: u >= 0.5,  # VL-RewardBench (UnifiedReward scripts): keep the order iff random() < 0.5
    "lt": lambda u: u < 0.5,  # GenAI-Bench (UnifiedReward scripts): random.choices([True, False])[0] -> swap
}


def reference_swaps(n: int, seed: int = 0, rule: str | None = "ge") -> list[bool]:
    """Whether each of the first `n` items (dataset order) is shown swapped under the reference protocol.

    The whole sequence is drawn from the start of the dataset, so `--limit` and resumed runs see the same
    swaps as a full run. `rule=None` means no swap.
    """
    if rule is None:
        return [False] * n
    swapped = SWAP_RULES[rule]
    rng = random.Random(seed)
    return [swapped(rng.random()) for _ in range(n)]


def pair_record(result, swapped: bool) -> dict[str, Any]:
    """The item-level fields of a judged pair, mapped back to dataset order."""
    probs = result.probs
    if probs and swapped:
        probs = swap_probs(probs)
    margin = probs["1"] - probs["2"] if probs else None
    return {
        "winner": unswap(result.winner) if swapped else result.winner,
        "shown_winner": result.winner,
        "swapped": swapped,
        "status": result.status,
        "consistent": result.consistent,
        "probs": probs,
        "margin": margin,
        "raw": list(result.raw),
        "reason": result.reason,
        "method": result.method,
    }


def point_record(result) -> dict[str, Any]:
    return {
        "score": result.score,
        "expected_score": result.expected_score,
        "status": result.status,
        "raw": result.raw,
        "reason": result.reason,
        "method": result.method,
    }
