"""Rewards for online RL: group rewards (win rate, Bradley-Terry, expected score), reward specs that combine
several rewards with per-group normalised advantages, and adapters for the trainers people run (TRL GRPO,
flow_grpo-style reward functions), in process or over HTTP."""

from .group import MODES, GroupRequest, GroupReward, group_rewards, group_rows, resolve_task
from .spec import RewardSpec, RewardTerm, SpecResult, group_advantages

__all__ = ["MODES", "GroupRequest", "GroupReward", "group_rewards", "group_rows", "resolve_task",
           "RewardSpec", "RewardTerm", "SpecResult", "group_advantages"]
