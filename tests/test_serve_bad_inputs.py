"""`unireward serve` given broken inputs (issue 16, defects 4-8 and 10): a real server on a loopback port over the
tiny judge; each bad item gets its own clear answer, never its neighbours' failure.

Bad inputs are real files made here: a truncated PNG, a 16000 x 16000 PNG header bomb, a frame folder whose
frames are symlinks out of the allowed root, text holding a lone surrogate.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from unireward.serve import ServeConfig, ServerThread

from test_bad_inputs import bomb_png


def _png(path: Path, seed: int) -> Path:
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(path)
    return path


def _url(path: Path, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("allowed")
    outside = tmp_path_factory.mktemp("outside")
    for i in range(3):
        _png(root / f"{i}.png", i)
        _png(outside / f"{i}.png", 10 + i)
    data = (root / "0.png").read_bytes()
    (root / "truncated.png").write_bytes(data[: len(data) // 2])
    (root / "frames").mkdir()
    for i in range(3):
        _png(root / "frames" / f"{i:04d}.png", 20 + i)
    (root / "escape").mkdir()  # a frame folder inside the root whose frames live outside it
    for i in range(3):
        (root / "escape" / f"{i:04d}.png").symlink_to(outside / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def server(tiny_judge, root):
    cfg = ServeConfig(port=0, allowed_roots=[str(root)], max_new_tokens=16, max_wait_ms=300, max_batch_size=8)
    with ServerThread(tiny_judge, cfg) as srv:
        yield srv


def _post(server, path: str, body: dict) -> httpx.Response:
    # json.dumps escapes a lone surrogate as \udce9 (valid JSON text), which httpx's own encoder cannot send
    return httpx.post(server.url + path, content=json.dumps(body).encode(), timeout=60,
                      headers={"content-type": "application/json"})


def test_a_bad_item_of_a_batch_gets_its_own_error(server, root):
    items = [{"prompt": "a red circle", "a": _url(root / "0.png"), "b": _url(root / "1.png"), "id": "good-1"},
             {"prompt": "a red circle", "a": _url(root / "0.png"), "b": _url(root / "truncated.png"), "id": "bad"},
             {"prompt": "a red circle", "a": str(root / "missing.png"), "b": _url(root / "1.png")},
             {"prompt": "caf\udce9", "a": _url(root / "0.png"), "b": _url(root / "1.png")},
             {"prompt": "a blue square", "a": _url(root / "1.png"), "b": _url(root / "2.png"), "id": "good-2"}]
    r = _post(server, "/v1/rank", {"task": "image-gen/pair", "items": items})
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert [x["status"] for x in res] == ["ok", "error", "error", "error", "ok"]
    assert res[0]["id"] == "good-1" and res[1]["id"] == "bad" and res[4]["id"] == "good-2"
    assert "truncated" in res[1]["reason"] and res[1]["code"] == 422
    assert "no such file" in res[2]["reason"] and "lone surrogate" in res[3]["reason"]
    single = _post(server, "/v1/rank", {"task": "image-gen/pair", **items[1]})  # alone: the request's own status
    assert single.status_code == 422 and "truncated" in single.json()["error"]["message"]


def test_a_lone_surrogate_never_takes_down_the_requests_batched_with_it(server, root):
    good = {"task": "image-gen/pair", "a": _url(root / "0.png"), "b": _url(root / "1.png")}
    bodies = [{**good, "prompt": f"a red circle number {i}"} for i in range(6)]
    bodies.insert(3, {**good, "prompt": "caf\udce9"})
    with ThreadPoolExecutor(7) as pool:  # sent together: the server's 300 ms batching window groups them
        codes = [r.status_code for r in pool.map(lambda b: _post(server, "/v1/rank", b), bodies)]
    assert codes == [200, 200, 200, 422, 200, 200, 200]
    chat = _post(server, "/v1/chat/completions", {"messages": [{"role": "user", "content": "caf\udce9"}]})
    assert chat.status_code == 422 and "lone surrogate" in chat.json()["error"]["message"]


def test_a_header_bomb_is_refused_before_decoding_on_video_tasks(server, root, tmp_path, monkeypatch):
    import av

    opened = []
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    bomb = _url(bomb_png(tmp_path / "bomb.png"))
    for task in ("video-gen/pair", "image-gen/pair"):
        r = _post(server, "/v1/rank", {"task": task, "prompt": "a ball", "a": bomb, "b": _url(root / "0.png")})
        assert r.status_code == 413 and "pixels" in r.json()["error"]["message"], r.text
    still = _post(server, "/v1/rank", {"task": "video-gen/pair", "prompt": "a ball", "a": _url(root / "0.png"),
                                       "b": _url(root / "1.png")})
    assert still.status_code == 422 and "still image" in still.json()["error"]["message"]
    assert opened == []  # no video decoder saw either


def test_frame_folders_are_checked_frame_by_frame_against_the_allowed_root(server, root):
    body = {"task": "video-gen/pair", "prompt": "a ball rolling", "b": str(root / "frames")}
    ok = _post(server, "/v1/rank", {**body, "a": str(root / "frames")})
    assert ok.status_code == 200 and ok.json()["result"]["status"] == "ok", ok.text
    escaped = _post(server, "/v1/rank", {**body, "a": str(root / "escape")})
    assert escaped.status_code == 403 and "outside the allowed roots" in escaped.json()["error"]["message"]


def test_max_tokens_over_the_budget_is_capped_and_said(server):
    msg = [{"role": "user", "content": "Which image is better?"}]
    r = _post(server, "/v1/chat/completions", {"messages": msg, "max_tokens": 4096})  # as vllm_request.py sends
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["usage"]["completion_tokens"] <= 16
    assert any("max_tokens=4096 was capped" in w and "16" in w for w in out["warnings"])
    within = _post(server, "/v1/chat/completions", {"messages": msg, "max_tokens": 4}).json()
    assert "warnings" not in within and within["usage"]["completion_tokens"] <= 4
    for bad in (0, -1, "8", True):
        r = _post(server, "/v1/chat/completions", {"messages": msg, "max_tokens": bad})
        assert r.status_code == 422 and "positive integer" in r.json()["error"]["message"]


def test_serve_exits_0_after_a_clean_sigterm_drain(tiny_model_dir):
    from unireward.serve.server import free_port

    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "unireward", "serve", "--model", tiny_model_dir("qwen2-vl"),
                             "--port", str(port), "--max-new-tokens", "4096", "--no-progress",
                             "--log-level", "warning"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("the server did not come up: " + proc.stderr.read1().decode())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert b"Loading weights" not in proc.stderr.read()  # --no-progress hides the loading bars
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_10000x1_image_fails_its_own_group_and_no_other_client(server, root):
    """Issue 24, defect 3, on the real processor (Qwen2-VL refuses aspect ratios over 200)."""
    thin = Image.new("RGB", (10000, 1), (200, 10, 10))
    thin.save(root / "thin.png")
    good = {"prompt": "a red circle", "candidates": [_url(root / "0.png"), _url(root / "1.png")]}
    bad = {"prompt": "a red circle", "candidates": [_url(root / "0.png"), _url(root / "thin.png")]}
    bodies = [{"groups": [good, bad]}, {"groups": [dict(good, prompt="another client")]}]
    with ThreadPoolExecutor(2) as pool:  # within the server's 300 ms batching window
        mixed, other = pool.map(lambda b: _post(server, "/v1/reward", b), bodies)
    assert mixed.status_code == 200 and other.status_code == 200, (mixed.text, other.text)
    ok, refused = mixed.json()["results"]
    assert ok["status"] == "ok" and other.json()["results"][0]["status"] == "ok"
    assert refused["status"] == "error" and "groups[1].candidates[1]" in refused["reason"]
    assert "10000x1" in refused["reason"] and "max_aspect_ratio" in refused["reason"]
    many = [{"prompt": "a red circle", "a": _url(root / "0.png"), "b": _url(root / n)}
            for n in ("1.png", "thin.png", "2.png")]
    r = _post(server, "/v1/rank", {"task": "image-gen/pair", "items": many})
    assert [x["status"] for x in r.json()["results"]] == ["ok", "error", "ok"]


def test_sigterm_under_load_exits_promptly(tiny_model_dir, root):
    """Issue 24, defect 4: a full queue does not hold the server past its grace period plus one model call."""
    from unireward.serve.server import free_port

    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "unireward", "serve", "--model", tiny_model_dir("qwen2-vl"),
                             "--port", str(port), "--no-progress", "--log-level", "error", "--max-pairs", "300",
                             "--graceful-timeout", "2", "--max-batch-size", "64"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not come up"
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        cands = [_url(root / f"{i % 3}.png") for i in range(16)]  # 120 pairs, both orders: 240 per request
        body = {"task": "image-gen/pair", "schedule": "round-robin", "both_orders": True, "candidates": cands}

        def send(i):
            try:
                return httpx.post(url + "/v1/rank-group", json={**body, "prompt": f"load {i}"}, timeout=120)
            except httpx.HTTPError:
                return None

        with ThreadPoolExecutor(40) as pool:
            pending = [pool.submit(send, i) for i in range(40)]  # 9,600 orders: a minute or more of judging here
            time.sleep(3)
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(60)
            took = time.monotonic() - sent
            answered = [f.result() for f in pending]
        assert code == 0 and took < 30, (code, took)  # 2 s of grace, one model call, the interpreter's exit
        assert all(r is None or r.status_code in (200, 503) for r in answered), [
            r and (r.status_code, r.text[:80]) for r in answered]
    finally:
        if proc.poll() is None:
            proc.kill()
