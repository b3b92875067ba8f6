"""Every command the README shows is run here, taken from the README itself so the two cannot drift apart.

Commands come from the README's ```bash blocks (continuation lines joined, comments dropped) and code from its
```python blocks. Each is either in RUN (run offline, at tiny size where OVERRIDES says how) or in SKIP (with
the reason: a GPU, a hub download, a dataset copy, or a run of an hour); a README command in neither, or a
stale entry, fails `test_every_readme_command_is_run_or_skipped`. They run in README order in one workspace (a
temporary folder that links the repository's src/, tests/, benchmarks/ and README.md), so files one
command writes (runs/examples, runs/judge, ...) are there for the next. `unireward` commands run in process
(`unireward.cli.main`), `python` scripts and `unireward serve` as subprocesses; every one must exit 0.
The demo is not run here: its quick preset (the first README command, after install.sh) takes ~5 min, and
tests/test_demo.py runs the README's `demo --preset smoke` (every step at seconds-size budgets) already.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()
UNIREWARD = ".venv/bin/unireward"
PYTHON = ".venv/bin/python"

# command (as the README writes it, comment dropped, spaces collapsed) -> extra arguments for the tiny-size run
OVERRIDES = {
    ".venv/bin/unireward train sft --config sft/tiny": ["max_steps=2", "save_steps=2", "progress=false"],
    ".venv/bin/unireward bench sandbox --model runs/judge --data runs/sft-world --out runs/bench/sft-tiny":
        ["--limit", "8", "--no-progress"],
    ".venv/bin/unireward bench sandbox --model src/unireward/sandbox/judge": ["--limit", "8", "--no-progress"],
    ".venv/bin/python benchmarks/judge_throughput.py": ["--n", "4", "--repeat", "1"],
    ".venv/bin/python benchmarks/group_throughput.py": ["--group", "3", "--image-size", "112", "--repeat", "1"],
    ".venv/bin/python benchmarks/scorer_throughput.py": ["--n", "4", "--repeat", "1", "--scorers", "pickscore,hpsv2.1"],
    ".venv/bin/unireward bench mmrb2 --model src/unireward/sandbox/judge --data tests/fixtures/bench/mmrb2 --protocol "
    "reference --table docs/benchmarks.md": ["--no-progress"],
}
SLOW = {'python: rm = RewardModel.load("src/unireward/sandbox/judge")',
        ".venv/bin/unireward train sft --config sft/tiny",
        ".venv/bin/unireward bench sandbox --model src/unireward/sandbox/judge",
        ".venv/bin/python benchmarks/judge_throughput.py",
        "UNIREWARD_API_KEY=secret .venv/bin/unireward serve --model src/unireward/sandbox/judge --allowed-root "
        "runs/examples"}

HUB = "downloads a released checkpoint from the hub (a GPU in practice)"
SHARDS = (", GPUs and SDXL-Turbo from the hub; 2 shards (one with shard=auto) + merge of the shipped "
          "construct/sandbox_generator preset equal one run in tests/test_shards.py")
SKIP = {
    "bash install.sh && .venv/bin/unireward demo": "installs packages from the network (.ci/run runs install.sh on "
        "a clean clone); the demo's steps run in tests/test_demo.py at the smoke preset and `demo --preset smoke`",
    ".venv/bin/python -m pytest -q": "the test suite itself",
    ".venv/bin/python benchmarks/serve_load.py": "starts two servers and loads each for 20 s; micro-batching, "
        "overload, timeouts and graceful restarts are tested in tests/test_serve.py",
    ".venv/bin/unireward demo --preset smoke": "tests/test_demo.py runs this preset end to end (run_demo, 1-2 min "
        "on 2 cores), the same code path as this command",
    ".venv/bin/unireward demo --preset full": "~30 min of judge training, then the generator loop; its stages run "
        "at smoke size in tests/test_demo.py and tests/test_sandbox_ladder.py",
    ".venv/bin/unireward demo --from-scratch": "over 80 min on 2 cores; its stages run at smoke size in "
        "tests/test_demo.py and tests/test_sandbox_ladder.py",
    "accelerate launch --config_file src/unireward/configs/accelerate/zero2.yaml -m unireward train sft --config "
    "sft/qwen2_5_vl_7b": "8 GPUs and a hub download (Qwen2.5-VL-7B); the recipe runs on tiny models in "
        "tests/test_sft.py",
    "DATA_ROOT=~/data .venv/bin/unireward data mix data/unified_corpus --out corpus.jsonl":
        "needs local copies of the nine published datasets; the same code runs on data/fixtures above",
    ".venv/bin/unireward construct --config construct/sdxl_turbo": "downloads SDXL-Turbo (a GPU in "
        "practice); construction runs offline in the demo and tests/test_construct.py",
    ".venv/bin/unireward train diffusion-dpo --config diffusion_dpo/sdxl_turbo": "needs SDXL-Turbo and the pairs "
        "of the command above; Diffusion-DPO runs on the sandbox generator in tests/test_diffusion_dpo.py",
    ".venv/bin/unireward construct --config construct/llava_ov_7b": "downloads LLaVA-OneVision-7B (a "
        "GPU in practice); the VLM sampler runs on tiny models in tests/test_construct.py",
    "accelerate launch --config_file src/unireward/configs/accelerate/zero2.yaml -m unireward train dpo --config "
    "dpo/llava_ov_7b": "8 GPUs and a hub download; DPO runs on tiny models in tests/test_dpo.py",
    ".venv/bin/unireward bench genai-image --model unifiedreward-qwen-7b --data ~/data/GenAI-Bench --protocol "
    "reference": HUB + " and needs a local copy of GenAI-Bench; the fixture copy runs above",
    ".venv/bin/unireward bench mmrb2 --model unifiedreward-2.0-qwen3vl-8b --data ~/data/MMRB2/benchmark --protocol "
    "reference --table docs/benchmarks.md": HUB + " and needs the MMRB2 release; the fixture copy runs above",
    ".venv/bin/unireward bench editreward --model unifiedreward-edit-qwen3vl-8b --data ~/data/EditReward-Bench --table "
    "docs/benchmarks.md": HUB + " and needs a local copy of EditReward-Bench; tests/test_bench_2026.py runs the "
    "fixture copy",
    ".venv/bin/unireward bench vlrb --model unifiedreward-qwen-7b --data ~/data/VL-RewardBench --protocol clean":
        HUB + " and needs a local copy of VL-RewardBench; tests/test_bench.py runs the fixture copy",
    ".venv/bin/unireward bench videogen --model unifiedreward-qwen-7b --data ~/data/VideoGen-RewardBench --frames 8":
        HUB + " and needs a local copy of VideoGen-RewardBench; tests/test_bench.py runs the fixture copy",
    "vllm serve CodeGoat24/UnifiedReward-qwen-7b --served-model-name judge --tensor-parallel-size 2 "
    "--data-parallel-size 4 --limit-mm-per-prompt '{\"image\": 2, \"video\": 2}' --media-io-kwargs "
    "'{\"video\": {\"num_frames\": -1}}' --max-logprobs 20 --port 8000": "vLLM on GPUs, and a hub download",
    "vllm serve CodeGoat24/UnifiedReward-2.0-qwen3vl-8b --served-model-name UnifiedReward --limit-mm-per-prompt.image "
    "32 --enable-prefix-caching": "vLLM on GPUs, and a hub download",
    ".venv/bin/unireward serve --model CodeGoat24/UnifiedReward-qwen-7b --host 0.0.0.0 --port 8000 --api-key $KEY "
    "--timeout 600": HUB + "; /v1/reward is tested on a loopback server in tests/test_reward_server.py",
    "python -m sglang.launch_server --model-path CodeGoat24/UnifiedReward-qwen-7b --served-model-name judge --port "
    "8000": "SGLang on a GPU, and a hub download",
    ".venv/bin/unireward serve --model http://gpu1:8000/v1,http://gpu2:8000/v1 --backend openai --served-model "
    "judge --checkpoint unifiedreward-qwen-7b --port 9000": "needs the vLLM or SGLang servers above; the openai "
    "backend is tested against a loopback server in tests/test_serve.py",
    ".venv/bin/unireward construct --config construct/sdxl_turbo output_dir=/shared/sdxl_turbo "
    "shard=$SLURM_ARRAY_TASK_ID/8": "needs a Slurm cluster" + SHARDS,
    "torchrun --nproc_per_node=8 -m unireward construct --config construct/sdxl_turbo output_dir=/shared/sdxl_turbo "
    "shard=auto": "needs torchrun on 8 GPUs" + SHARDS,
    "accelerate launch --multi_gpu --num_processes 8 -m unireward construct --config construct/sdxl_turbo "
    "output_dir=/shared/sdxl_turbo shard=auto": "needs accelerate on 8 GPUs" + SHARDS,
    "for i in 0 1 2 3 4 5 6 7; do ray job submit --no-wait --entrypoint-num-gpus 1 -- unireward construct --config "
    "construct/sdxl_turbo output_dir=/shared/sdxl_turbo shard=$i/8; done": "needs a Ray cluster" + SHARDS,
    ".venv/bin/unireward construct merge /shared/sdxl_turbo /shared/sdxl_turbo/shard-*": "needs the shards of the "
    "launches above" + SHARDS,
}
# python blocks, by a line each one holds: "run", "server" (run against the README's `unireward serve`), or a skip
PYTHON_BLOCKS = {
    'rm = RewardModel.load("CodeGoat24/UnifiedReward-2.0-qwen3vl-8b")': "skip: " + HUB + "; family selection runs "
        "on tiny models in tests/test_model_zoo.py and the prompts in tests/test_families.py",
    'rm = RewardModel.load("http://gpu1:8080/v1", backend="openai", served_model="UnifiedReward",':
        "skip: needs a vLLM server; the request bodies are tested in tests/test_openai_backend.py",
    'judge = RewardModel.load("src/unireward/sandbox/judge")': "skip: needs a generator's images; group rewards "
        "run on the scripted and sandbox judges in tests/test_rewards*.py",
    "from unireward.rewards import RewardSpec": "skip: needs a policy's samples and PickScore and HPSv2 from the "
        "hub; reward specs are tested in tests/test_rewards_spec.py, with scorers (tiny copies) in "
        "tests/test_scorers.py",
    'rm = RewardModel.load("pickscore")': "skip: downloads PickScore from the hub; every scorer runs on a tiny "
        "copy in its checkpoint's layout in tests/test_scorers.py",
    "from unireward.rewards import connect, flow_grpo_reward": "skip: runs inside flow_grpo against a served judge; "
        "the adapter is called from a thread pool in tests/test_rewards_adapters.py",
    'rm = RewardModel.load("src/unireward/sandbox/judge")': "run",
    'r = httpx.post("http://127.0.0.1:8000/v1/rank", headers=auth, timeout=120,': "server",
    "from openai import OpenAI": "server",
    'rm = RewardModel.load("http://gpu1:8000/v1,http://gpu2:8000/v1", backend="openai",':
        "skip: needs the vLLM or SGLang servers above",
    'rm = RewardModel.load("CodeGoat24/UnifiedReward-2.0-qwen3vl-8b", backend="vllm", tensor_parallel_size=2)':
        "skip: " + HUB + " and 2 GPUs; backend='vllm' runs on the shipped judge in "
        "tests/engine/test_vllm_in_process.py (engine tier)",
}
# what a python block must print (a line each, in order), where the README states it
PRINTS = {
    'rm = RewardModel.load("src/unireward/sandbox/judge")': ["1 True"],
    'r = httpx.post("http://127.0.0.1:8000/v1/rank", headers=auth, timeout=120,': ["1", "['ok', 'error']"],
}


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", README, re.S | re.M)


def readme_commands() -> list[str]:
    out = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+", " ", re.sub(r"\s+#\s.*$", "", line)).strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


def readme_python() -> list[tuple[str, str]]:
    """(key, code) of each python block; the key is the PYTHON_BLOCKS line it holds."""
    out = []
    for code in _blocks("python"):
        keys = [k for k in PYTHON_BLOCKS if k in code]
        out.append((keys[0] if len(keys) == 1 else f"<no single key: {code.splitlines()[0]}>", code))
    return out


def test_every_readme_command_is_run_or_skipped():
    commands = readme_commands()
    assert len(commands) == len(set(commands)), "a README command is shown twice"
    run = [c for c in commands if c not in SKIP]
    unknown = [c for c in run if not (c.startswith(UNIREWARD + " ") or c.startswith(PYTHON + " ")
                                      or c.startswith("UNIREWARD_API_KEY="))]
    assert unknown == [], f"README commands neither runnable here nor in SKIP: {unknown}"
    assert sorted(set(SKIP) - set(commands)) == [], "SKIP names commands the README no longer shows"
    assert sorted(set(OVERRIDES) - set(commands)) == [], "OVERRIDES names commands the README no longer shows"
    keys = [k for k, _ in readme_python()]
    assert all(k in PYTHON_BLOCKS for k in keys), f"python blocks without exactly one PYTHON_BLOCKS line: {keys}"
    assert sorted(set(PYTHON_BLOCKS) - set(keys)) == [], "PYTHON_BLOCKS names code the README no longer shows"
    top = commands[:2]  # the README opens with exactly two commands: install + demo, and the test suite
    assert top == ["bash install.sh && .venv/bin/unireward demo", ".venv/bin/python -m pytest -q"]
    for c in commands:  # the .venv prefix everywhere (accelerate, vllm and sglang are other programs)
        if "sglang" not in c:
            assert c.split()[0] not in ("unireward", "python"), f"use the .venv/bin/ prefix: {c}"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    ws = tmp_path_factory.mktemp("readme")
    for name in ("src", "tests", "benchmarks", "README.md"):
        (ws / name).symlink_to(ROOT / name)
    return ws


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "HF_HUB_OFFLINE": "1"}


class _Server:
    def __init__(self):
        self.proc = None
        self.port = None


@pytest.fixture(scope="module")
def server():
    s = _Server()
    yield s
    if s.proc is not None and s.proc.poll() is None:
        s.proc.send_signal(signal.SIGTERM)
        try:
            s.proc.wait(60)
        except subprocess.TimeoutExpired:
            s.proc.kill()


def _cases():
    """Bash commands and python blocks, in the order the README shows them."""
    cases = []
    for c in readme_commands():
        marks = [pytest.mark.slow] if c in SLOW else []
        if c in SKIP:
            marks.append(pytest.mark.skip(reason=SKIP[c]))
        cases.append((_position(c), pytest.param("bash", c, marks=marks, id=c[:70])))
    for key, code in readme_python():
        what = PYTHON_BLOCKS.get(key, "run")
        marks = [pytest.mark.skip(reason=what[6:])] if what.startswith("skip: ") else []
        if f"python: {key}" in SLOW:
            marks.append(pytest.mark.slow)
        cases.append((README.index(code), pytest.param("python", key, marks=marks, id="python: " + key[:60])))
    return [case for _, case in sorted(cases, key=lambda x: x[0])]


def _position(command: str) -> int:
    words = command.split(" ")[:4]
    m = re.search(r"\s+(?:\\\n\s*)?".join(re.escape(w) for w in words), README)
    return m.start() if m else len(README)


def _run_cli(argv: list[str], stdout_path: str | None) -> int:
    from unireward.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(argv)
    if stdout_path:
        Path(stdout_path).write_text(buf.getvalue())
    return code


def _start_server(server: _Server, command: str, ws: Path) -> None:
    from unireward.serve.server import free_port

    env = _env()
    words = shlex.split(command)
    while "=" in words[0] and not words[0].startswith("."):
        k, v = words.pop(0).split("=", 1)
        env[k] = v
    server.port = free_port()
    argv = [sys.executable, "-m", "unireward", *words[1:], "--port", str(server.port), "--no-progress",
            "--log-level", "warning"]
    server.proc = subprocess.Popen(argv, cwd=ws, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    import httpx

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            pytest.fail(f"the README's serve command exited: {server.proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{server.port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    pytest.fail("the README's serve command did not come up within 180 s")


@pytest.mark.parametrize("kind, command", _cases())
def test_readme_command(kind, command, workspace, server, monkeypatch, capsys):
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if kind == "python":
        code = dict(readme_python())[command]
        if PYTHON_BLOCKS[command] == "server":
            if server.proc is None:
                pytest.fail("the README's `unireward serve` command must run before its client examples")
            if "from openai import" in code:
                pytest.importorskip("openai", reason="the openai extra is not installed (pip install -e '.[openai]')")
            code = code.replace("127.0.0.1:8000", f"127.0.0.1:{server.port}")
        capsys.readouterr()
        exec(compile(code, f"README.md python block ({command[:40]})", "exec"), {"__name__": "__readme__"})
        printed = capsys.readouterr().out.splitlines()
        for want, got in zip(PRINTS.get(command, []), printed):
            assert got.startswith(want), (want, printed)
        return
    if command.startswith("UNIREWARD_API_KEY="):
        _start_server(server, command, workspace)
        return
    head, _, redirect = command.partition(" > ")
    extra = OVERRIDES.get(command, [])
    words = shlex.split(head)
    if words[0] == UNIREWARD:
        assert _run_cli(words[1:] + extra, redirect or None) == 0, command
    else:
        assert words[0] == PYTHON, command
        proc = subprocess.run([sys.executable, *words[1:], *extra], cwd=workspace, env=_env(), capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, (command, proc.stdout[-2000:], proc.stderr[-3000:])


def test_the_readme_says_what_a_newcomer_needs():
    """Issue 16, defect 12: the demo's presets, Chromium for the report test, the venv's size and the CPU-only
    story, and an installable `openai` package for the OpenAI-client example."""
    import tomllib

    from unireward.sandbox.demo import PRESETS

    for preset in PRESETS:
        assert f"| `{preset}`" in README, f"the README's preset table lacks {preset}"
    assert "Chromium" in README and "apt-get install chromium" in README
    assert "6.4 GB" in README and "CPU-only" in README
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.startswith("openai") for req in extras["openai"]) and "openai" in extras["dev"][1]
    assert any("from openai import OpenAI" in code for _, code in readme_python())
