"""POST /v1/reward on a real server (loopback port): HTTP rewards = in-process rewards, concurrent groups share
micro-batches, idempotency keys, per-group media errors, and the server's auth, path and size rules."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from PIL import Image

from unireward.backends.scripted import ScriptedBackend
from unireward.judge import RewardModel
from unireward.rewards.client import _media_json
from unireward.serve import ServeConfig, ServerThread

KEY = "k"
AUTH = {"Authorization": f"Bearer {KEY}"}


def brightness(im) -> float:
    return float(np.asarray(im).mean())


class BrightJudge(ScriptedBackend):
    """Prefers the brighter image, P(first) = sigmoid((b1 - b2) / 20); scores answers by their length.
    Counts batches; `delay` seconds per batch."""

    def __init__(self, delay: float = 0.0):
        super().__init__(lambda x: "", probs=self._probs)
        self.delay, self.batches, self.lock = delay, [], threading.Lock()

    def _probs(self, x, prefix, choices):
        if len(choices) == 3:
            a, b = (brightness(im) for im in x.images)
            p = 1 / (1 + np.exp(-(a - b) / 20))
            return [0.9 * p, 0.9 * (1 - p), 0.1]
        return [1.0 if i == len(choices) // 2 else 0.0 for i in range(len(choices))]

    def choice_probs(self, inputs, prefix, choices):
        with self.lock:
            self.batches.append(len(inputs))
        time.sleep(self.delay)
        return super().choice_probs(inputs, prefix, choices)


def grey(v: int) -> Image.Image:
    return Image.new("RGB", (8, 8), (v, v, v))


@pytest.fixture
def served(tmp_path):
    judge = BrightJudge(delay=0.05)
    rm = RewardModel(judge)
    grey(10).save(tmp_path / "dark.png")
    cfg = ServeConfig(port=0, api_key=KEY, allowed_roots=[str(tmp_path)], max_batch_size=32, max_wait_ms=30,
                      max_items=16)
    with ServerThread(rm, cfg) as srv:
        yield srv, rm, judge, tmp_path


def post(srv, body, headers=AUTH):
    return httpx.post(srv.url + "/v1/reward", json=body, headers=headers, timeout=30)


def test_http_rewards_equal_in_process_rewards(served):
    srv, rm, judge, root = served
    imgs = [grey(v) for v in (200, 40, 120, 90)]
    r = post(srv, {"prompt": "a grey square", "candidates": [_media_json(i) for i in imgs]})
    assert r.status_code == 200, r.text
    got = r.json()["result"]
    local = rm.group_reward("a grey square", imgs)
    assert got["rewards"] == pytest.approx(local.rewards) and got["pairs"] == 6 and got["unparsed"] == 0
    assert np.argsort(got["rewards"]).tolist() == [1, 3, 2, 0]
    anchored = post(srv, {"prompt": "a grey square", "candidates": [_media_json(i) for i in imgs],
                          "reference": _media_json(grey(100))}).json()["result"]
    assert anchored["rewards"] == pytest.approx(got["rewards"])  # the reference is not one of the group
    assert [d["vs_reference"] > 0.5 for d in anchored["details"]] == [True, False, True, False]
    point = post(srv, {"mode": "point", "task": "image-und/pair", "prompt": "What is it?", "candidates": ["A cat."],
                       "media": str(root / "dark.png")}).json()["result"]
    assert point["task"] == "image-und/point" and point["rewards"] == [6.0]


def test_concurrent_groups_share_micro_batches(served):
    srv, rm, judge, root = served
    bodies = [{"groups": [{"prompt": f"p{k}", "candidates": [_media_json(grey(v + k)) for v in (10, 60, 110)],
                           "id": f"g{k}"}]} for k in range(8)]
    judge.batches.clear()
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda b: post(srv, b), bodies))
    assert [r.status_code for r in responses] == [200] * 8
    assert [r.json()["results"][0]["id"] for r in responses] == [f"g{k}" for k in range(8)]
    assert sum(judge.batches) == 8 * 6  # 3 pairs x 2 orders per group, nothing judged twice
    assert len(judge.batches) < 8 and max(judge.batches) > 6  # groups from different requests shared calls


def test_idempotency_key_replays_without_judging_again(served):
    srv, rm, judge, root = served
    body = {"idempotency_key": "step-1", "groups": [{"prompt": "p", "candidates": [_media_json(grey(5)),
                                                                                 _media_json(grey(250))]}]}
    first = post(srv, body)
    calls = sum(judge.batches)
    again = post(srv, body)
    assert first.status_code == again.status_code == 200
    assert again.json()["replayed"] is True and first.json()["replayed"] is False
    assert again.json()["results"] == first.json()["results"] and sum(judge.batches) == calls
    other = dict(body, mode="bradley-terry")
    assert post(srv, other).status_code == 422


def test_bad_group_gets_its_own_error_and_rules_apply(served, tmp_path_factory):
    srv, rm, judge, root = served
    ok = {"prompt": "p", "candidates": [_media_json(grey(5)), str(root / "dark.png")]}
    bad = {"prompt": "q", "candidates": [_media_json(grey(5)), "data:image/png;base64,AAAA"]}
    r = post(srv, {"groups": [ok, bad]})
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert res[0]["status"] == "ok" and res[0]["rewards"][0] < res[0]["rewards"][1]  # grey 5 is darker than grey 10
    assert res[1]["status"] == "error" and "groups[1].candidates[1]" in res[1]["reason"]
    assert res[1]["rewards"] == [None, None]
    outside = tmp_path_factory.mktemp("elsewhere") / "x.png"
    grey(1).save(outside)
    assert post(srv, {"prompt": "p", "candidates": [str(outside), str(root / "dark.png")]}).status_code == 403
    assert post(srv, ok, headers={}).status_code == 401
    assert post(srv, {"prompt": "p", "candidates": [_media_json(grey(1))] * 17}).status_code == 413
    assert post(srv, {"prompt": "p", "candidates": [_media_json(grey(1))]}).status_code == 422  # a pair needs 2
    assert post(srv, dict(ok, mode="median")).status_code == 422
    assert post(srv, dict(ok, task="image-und/pair")).status_code == 422  # understanding needs media
