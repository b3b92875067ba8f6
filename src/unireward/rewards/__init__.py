"""Rewards for online RL: group rewards (win rate, Bradley-Terry, expected score), reward specs that combine
several rewards with per-group normalised advantages, and adapters for the trainers people run (TRL GRPO,
flow_grpo-style reward functions), in process or over HTTP.

    from unireward.rewards import connect, flow_grpo_reward, trl_reward
    judge = connect("http://judge-host:8000")                  # or a RewardModel, or kind="openai" for vLLM
    fn = flow_grpo_reward(judge, mode="win-rate")              # fn(images, prompts, metadata) -> (scores, info)
"""

from .group import MODES, GroupRequest, GroupReward, group_rewards, group_rows, resolve_task
from .adapters import flow_grpo_reward, trl_reward
from .client import LocalJudge, RemoteJudge, RewardClientError, connect
from .spec import RewardSpec, RewardTerm, SpecResult, group_advantages

__all__ = ["MODES", "GroupRequest", "GroupReward", "group_rewards", "group_rows", "resolve_task",
           "RewardSpec", "RewardTerm", "SpecResult", "group_advantages", "flow_grpo_reward", "trl_reward",
           "LocalJudge", "RemoteJudge", "RewardClientError", "connect"]
