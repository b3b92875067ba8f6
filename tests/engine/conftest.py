"""The engine tier: a real vLLM (its CPU build, in `.venv-vllm` from `bash install.sh --engine vllm`) serves judges
on loopback, and unireward's OpenAI backend must agree with in-process judging.

    .venv/bin/python -m pytest -q -m engine tests/engine      # `.ci/run` does this after the main suite

Without the engine environment every test here skips and says why (UNIREWARD_VLLM_PYTHON names another
interpreter). vLLM runs as a subprocess of that interpreter; one server at a time (2 cores), each model's server
started once and kept for the tests that follow it (modules are grouped by model), stopped by its process id.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from vllm_engine import JUDGE, Served, VLLMServers


@pytest.fixture(scope="session")
def vllm_servers(tmp_path_factory):
    servers = VLLMServers(tmp_path_factory.mktemp("vllm-logs"))
    yield servers
    servers.close()
    if servers.startups:
        print("\nvLLM start-ups: " + ", ".join(f"{m} {s:.0f} s" for m, s in servers.startups))


@pytest.fixture(scope="session")
def judge_server(vllm_servers) -> Served:
    """The shipped sandbox judge on vLLM, served as "judge" (a name that says nothing about the checkpoint)."""
    return vllm_servers.get(JUDGE, "judge", {"image": 8, "video": 2})


@pytest.fixture(scope="session")
def local_judge():
    """The shipped judge in process, float32 as vLLM serves it."""
    from unireward import RewardModel

    return RewardModel.load(str(JUDGE), dtype="float32")


@pytest.fixture(scope="session")
def examples(tmp_path_factory) -> dict[str, Path]:
    """The README's example media at the shipped judge's sizes (56 px images, 8-frame 56 px videos)."""
    from unireward.sandbox.demo import write_examples

    return write_examples(tmp_path_factory.mktemp("examples"))
