"""Task registry, answer formats and parsers."""

from .formats import TIE, PairFormat, PointFormat
from .parsing import PairVerdict, PointVerdict, parse_pair, parse_point
from .registry import Task, get_task, list_tasks

__all__ = ["TIE", "PairFormat", "PointFormat", "PairVerdict", "PointVerdict", "Task", "get_task", "list_tasks",
           "parse_pair", "parse_point"]
