"""Judging: the resolved judge spec (`spec`), the one renderer from requests to chat inputs (`render`) and group
judging (`groups`). `unireward.judge.RewardModel` runs them over a backend."""

from .groups import MODES, GroupRequest, GroupReward, group_rewards, resolve_task
from .render import PairRequest, PointRequest, Prepared, input_problem, prepare, render, text_problem
from .spec import THINK, JudgeSpec, resolve_spec

__all__ = ["MODES", "THINK", "GroupRequest", "GroupReward", "JudgeSpec", "PairRequest", "PointRequest", "Prepared",
           "group_rewards", "input_problem", "prepare", "render", "resolve_spec", "resolve_task", "text_problem"]
