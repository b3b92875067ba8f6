"""Helpers of the engine tier (tests/engine): the engine environment's interpreter, vLLM's OpenAI server as a
subprocess on a free loopback port (health-checked with a deadline, stopped by its process id), and the remote
judge as the tests build it."""

from __future__ import annotations

import functools
import io
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
JUDGE = ROOT / "src" / "unireward" / "sandbox" / "judge"
CHAT_TEMPLATES = ROOT / "tests" / "fixtures" / "chat_templates"
VLLM_PYTHON = Path(os.environ.get("UNIREWARD_VLLM_PYTHON") or ROOT / ".venv-vllm" / "bin" / "python")
START_TIMEOUT_S = float(os.environ.get("UNIREWARD_VLLM_START_TIMEOUT", "600"))  # 85-120 s measured on 2 cores
# vLLM's CPU engine: 1 GiB of KV cache; one core for the engine, one left to the API front end (2-3x faster)
ENGINE_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "auto", "HF_HUB_OFFLINE": "1"}


def engine_python() -> Path:
    """The engine environment's interpreter; skips the calling test (saying why) where there is none, or where
    vLLM does not import in it (a half-built environment)."""
    problem = _engine_problem()
    if problem:
        pytest.skip(problem)
    return VLLM_PYTHON


@functools.cache
def _engine_problem() -> str | None:
    if not VLLM_PYTHON.exists():
        return f"no engine environment ({VLLM_PYTHON} is missing): make it with `bash install.sh --engine vllm`"
    out = subprocess.run([str(VLLM_PYTHON), "-c", "import torchvision, vllm, unireward"],
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        return f"the engine environment at {VLLM_PYTHON} is incomplete ({last}): rerun `bash install.sh --engine vllm`"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(proc: subprocess.Popen, url: str, log: Path, what: str, timeout_s: float) -> None:
    """Poll `url` until it answers 200; fail with the log's tail if the process exits or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with status {proc.returncode} while starting:\n{tail(log)}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    stop(proc)
    pytest.fail(f"{what} did not answer {url} within {timeout_s:.0f} s:\n{tail(log)}")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server (it shuts its engine process down), then SIGKILL to whatever is left of the process
    group it leads (started with start_new_session)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def tail(log: Path, n: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-n:]) if log.exists() else "(no log)"


@dataclass
class Served:
    url: str  # the OpenAI base URL, http://127.0.0.1:PORT/v1
    name: str  # the served model name
    model: Path
    log: Path


class VLLMServers:
    """At most one live vLLM OpenAI server; asking for another model stops the current one first."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.key: tuple | None = None
        self.proc: subprocess.Popen | None = None
        self.served: Served | None = None
        self.startups: list[tuple[str, float]] = []  # (model, seconds to healthy)

    def get(self, model: Path, name: str, limits: dict[str, int], eager: bool = False) -> Served:
        """The server of `model` (started unless it is the live one). `eager`: skip vLLM's compile warm-up (about
        60 s of a start-up), for models that are only asked a few short questions."""
        key = (str(model), name, json.dumps(limits, sort_keys=True), eager)
        if self.key == key and self.proc is not None and self.proc.poll() is None:
            return self.served  # type: ignore[return-value]
        self.close()
        python = engine_python()
        port = free_port()
        log = self.logs / f"vllm-{Path(model).name}-{port}.log"
        cmd = [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
               "--served-model-name", name, "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
               "--max-model-len", "4096", "--max-num-seqs", "16", "--max-num-batched-tokens", "4096",
               "--limit-mm-per-prompt", json.dumps(limits),
               "--media-io-kwargs", json.dumps({"video": {"num_frames": -1}})]  # keep every frame we send
        cmd += ["--enforce-eager"] if eager else []
        env = {**os.environ, **{k: os.environ.get(k, v) for k, v in ENGINE_ENV.items()}}
        start = time.monotonic()
        with log.open("w") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                         start_new_session=True)
        wait_healthy(self.proc, f"http://127.0.0.1:{port}/health", log, f"vLLM serving {model}", START_TIMEOUT_S)
        self.startups.append((Path(model).name, time.monotonic() - start))
        self.key, self.served = key, Served(f"http://127.0.0.1:{port}/v1", name, Path(model), log)
        return self.served

    def close(self) -> None:
        if self.proc is not None:
            stop(self.proc)
        self.key = self.proc = self.served = None


def remote_judge(url: str, folder: Path | str = JUDGE, served_model: str = "judge", **kwargs):
    """The judge in `folder` as served at `url`: named by its folder, its unireward.json (reasoning first, token
    budget) is resolved exactly as `RewardModel.load(folder)` resolves it in process."""
    from unireward import RewardModel

    return RewardModel.load(url, backend="openai", served_model=served_model, checkpoint=str(folder), **kwargs)


def jpeg(im: Image.Image, quality: int = 95) -> Image.Image:
    """What the server decodes from the OpenAI backend's JPEG of `im` (RGB, quality 95)."""
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
