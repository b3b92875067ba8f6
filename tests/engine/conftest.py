"""The engine tier: a real vLLM (its CPU build, in `.venv-vllm` from `bash install.sh --engine vllm`) serves judges
on loopback, and unireward's OpenAI backend must agree with in-process judging.

    .venv/bin/python -m pytest -q -m engine tests/engine      # `.ci/run` does this after the main suite

Without the engine environment every test here skips and says why (UNIREWARD_VLLM_PYTHON names another
interpreter). vLLM runs as a subprocess of that interpreter; one server at a time (2 cores), each model's server
started once and kept for its module's tests (each model's tests live in one module), stopped by its process
id when the module ends.
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


@pytest.fixture(scope="module", autouse=True)
def one_engine_at_a_time(vllm_servers):
    """A module's vLLM server stops when the module ends (each model's tests live in one module), so the next
    module's engine (a server, or vLLM in process) never runs beside an idle one on the 2 cores."""
    yield
    vllm_servers.close()


@pytest.fixture(scope="module")
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
