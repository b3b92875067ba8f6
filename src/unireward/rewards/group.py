"""Group rewards for online RL: the judging of groups (`judging.groups`: GroupRequest, GroupReward, the modes and
their aggregation) and the helpers trainers need around it: `group_rows` forms groups per prompt from a flat
batch in any order, `media_key` says which rows share the media their answers are about.

    rm.group_reward("a red circle", [img1, ..., img8], mode="win-rate")          # Pref-GRPO style
    rm.group_reward_batch([GroupRequest(p, imgs) for p, imgs in groups], mode="point")
"""

from __future__ import annotations

from typing import Any, Hashable, Sequence

from ..judging.groups import MODES, GroupRequest, GroupReward, group_rewards, order_score, resolve_task

__all__ = ["MODES", "GroupRequest", "GroupReward", "group_rewards", "group_rows", "media_key", "order_score",
           "resolve_task"]


def group_rows(keys: Sequence[Hashable]) -> list[list[int]]:
    """Row indices grouped by key (e.g. the prompt), groups in order of first appearance, rows in batch order."""
    groups: dict[Hashable, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    return list(groups.values())


def media_key(m: Any) -> Hashable:
    """What identifies the media a group's answers are about: a string as is, else a content hash (so two
    decodes of the same dataset image fall in one group)."""
    if m is None or isinstance(m, str):
        return m
    from ..media import content_hash

    return content_hash(m)
