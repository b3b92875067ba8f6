"""Editing tasks over HTTP (real server, loopback port): the edited images are media candidates and the source
image is `media` (or `source`), on /v1/rank, /v1/score and /v1/reward; both go through the server's path rules."""

from __future__ import annotations

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


def grey(v: int) -> Image.Image:
    return Image.new("RGB", (8, 8), (v, v, v))


def level(im) -> float:
    return float(np.asarray(im).mean())


class EditJudge(ScriptedBackend):
    """Sees (source, edit 1, edit 2) and prefers the edit that moved the source's brightness most towards white;
    scores one edit (source, edit) by how far it moved. Fails loudly when it gets any other number of images."""

    def __init__(self):
        super().__init__(lambda x: "", probs=self._probs)
        self.seen = []

    def _probs(self, x, prefix, choices):
        self.seen.append(len(x.images))
        if len(choices) == 3:
            src, a, b = (level(im) for im in x.images)
            p = 1 / (1 + np.exp(-((a - src) - (b - src)) / 20))
            return [0.9 * p, 0.9 * (1 - p), 0.1]
        src, e = (level(im) for im in x.images)
        k = int(np.clip((e - src) / 50, 0, len(choices) - 1))
        return [1.0 if i == k else 0.0 for i in range(len(choices))]


@pytest.fixture
def served(tmp_path):
    judge = EditJudge()
    grey(50).save(tmp_path / "source.png")
    grey(200).save(tmp_path / "bright.png")
    (tmp_path / "inside").mkdir()
    cfg = ServeConfig(port=0, api_key=KEY, allowed_roots=[str(tmp_path / "inside")], max_wait_ms=5)
    grey(50).save(tmp_path / "inside" / "source.png")
    with ServerThread(RewardModel(judge), cfg) as srv:
        yield srv, judge, tmp_path


def post(srv, path, body):
    return httpx.post(srv.url + path, json=body, headers=AUTH, timeout=30)


def test_rank_and_score_edits_against_their_source(served):
    srv, judge, root = served
    src = str(root / "inside" / "source.png")
    r = post(srv, "/v1/rank", {"task": "image-edit/pair", "prompt": "make it brighter", "media": src,
                               "a": _media_json(grey(60)), "b": _media_json(grey(180))})
    assert r.status_code == 200, r.text
    assert r.json()["result"]["winner"] == 2 and judge.seen[-1] == 3
    s = post(srv, "/v1/score", {"task": "image-edit/point", "prompt": "make it brighter", "source": src,
                                "candidate": _media_json(grey(180))})
    assert s.status_code == 200, s.text
    assert s.json()["result"]["status"] == "ok" and judge.seen[-1] == 2


def test_edit_requests_need_the_source_and_obey_the_path_rules(served):
    srv, _, root = served
    edits = {"a": _media_json(grey(60)), "b": _media_json(grey(180))}
    r = post(srv, "/v1/rank", {"task": "image-edit/pair", "prompt": "make it brighter", **edits})
    assert r.status_code == 422 and "source image" in r.json()["error"]["message"]
    # a candidate path outside the allowed roots is refused like any media path (it is not read as text)
    out = post(srv, "/v1/rank", {"task": "image-edit/pair", "prompt": "make it brighter",
                                 "media": str(root / "inside" / "source.png"), "a": str(root / "bright.png"),
                                 "b": _media_json(grey(60))})
    assert out.status_code == 403, out.text


def test_group_rewards_of_edits(served):
    srv, judge, root = served
    levels = [60, 200, 120, 90]
    r = post(srv, "/v1/reward", {"task": "image-edit/pair", "prompt": "make it brighter",
                                 "media": str(root / "inside" / "source.png"),
                                 "candidates": [_media_json(grey(v)) for v in levels]})
    assert r.status_code == 200, r.text
    got = r.json()["result"]
    assert got["status"] == "ok" and got["pairs"] == 6
    assert np.argsort(got["rewards"]).tolist() == [0, 3, 2, 1]
    missing = post(srv, "/v1/reward", {"task": "image-edit/pair", "prompt": "p",
                                       "candidates": [_media_json(grey(v)) for v in levels]})
    assert missing.status_code == 422 and "source image" in missing.text
