"""A scripted backend: answers come from a Python function. For tests, examples and dry runs."""

from __future__ import annotations

from typing import Callable, Sequence

from .base import Backend, ChatInput


class ScriptedBackend(Backend):
    """`respond(input) -> str` gives the generated text; `probs(input, prefix, choices) -> list[float]` (optional)
    gives choice probabilities (`prefix`: the forced answer prefix, or for a judge that reasons first the text it
    wrote up to and including the stop). Without `probs`, the judge falls back to generation and parsing."""

    name = "scripted"

    def __init__(self, respond: Callable[[ChatInput], str],
                 probs: Callable[[ChatInput, str, Sequence[str]], Sequence[float]] | None = None):
        self.respond = respond
        self.probs = probs
        self.supports_probs = probs is not None
        self.calls = 0

    def generate(self, inputs, max_new_tokens=256, stop=None, prefix=""):
        self.calls += len(inputs)
        out = []
        for x in inputs:
            text = self.respond(x)
            if prefix and text.startswith(prefix):
                text = text[len(prefix):]
            out.append(text)
        return out

    def choice_probs(self, inputs, prefix, choices):
        if self.probs is None:
            return None
        self.calls += len(inputs)
        prefixes = [prefix] * len(inputs) if isinstance(prefix, str) else list(prefix)
        rows = []
        for x, pre in zip(inputs, prefixes):
            p = [float(v) for v in self.probs(x, pre, choices)]
            s = sum(p)
            rows.append([v / s for v in p])
        return rows
