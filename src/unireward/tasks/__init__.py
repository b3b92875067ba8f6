"""Task registry, answer formats and parsers; the released judge families (families.yaml)."""

from .families import family_tasks, list_families
from .formats import TIE, PairFormat, PointFormat
from .parsing import PairVerdict, PointVerdict, parse_pair, parse_point
from .registry import Task, get_task, list_tasks

__all__ = ["TIE", "PairFormat", "PointFormat", "PairVerdict", "PointVerdict", "Task", "family_tasks", "get_task",
           "list_families", "list_tasks", "parse_pair", "parse_point"]
