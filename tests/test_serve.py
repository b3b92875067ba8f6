"""`unireward serve` on a loopback port: a real uvicorn server in a thread, called over HTTP.

One tiny Qwen2-VL judge serves the model-backed tests (HTTP verdicts = in-process verdicts, cache, security,
malformed requests); a scripted judge with a slow backend serves the batching, overload, timeout and
shutdown tests.
"""

import base64
import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from PIL import Image

from unireward.backends.scripted import ScriptedBackend
from unireward.judge import PairRequest, PointRequest, RewardModel
from unireward.serve import ServeConfig, ServerThread

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
PAIR_1 = "Final Judgment: Image 1 is better than Image 2."


def png(seed: int, size: int = 32) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8))


def data_url(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from unireward.models.tiny import build_tiny_model

    return RewardModel.load(str(build_tiny_model(tmp_path_factory.mktemp("tiny"), family="qwen2-vl")), dtype=None)


@pytest.fixture(scope="module")
def media_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("media")
    png(1).save(root / "a.png")
    png(2).save(root / "b.png")
    return root


@pytest.fixture(scope="module")
def server(tiny, media_root):
    cfg = ServeConfig(port=0, api_key=KEY, allowed_roots=[str(media_root)], max_logprobs=4096,
                      max_prompt_chars=2000, max_frames=4)
    with ServerThread(tiny, cfg) as srv:
        yield srv


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as c:
        yield c


# -- the judge over HTTP ----------------------------------------------------------------------------------------
def test_http_backend_gives_the_in_process_verdicts(tiny, server):
    remote = RewardModel.load(server.url, backend="openai", served_model="unireward", api_key=KEY,
                              top_logprobs=4096)
    imgs = [png(i) for i in range(3)]
    pairs = [PairRequest("a red circle", imgs[i], imgs[(i + 1) % 3]) for i in range(3)]
    for local, http in zip(tiny.rank_batch(pairs, both_orders=True), remote.rank_batch(pairs, both_orders=True)):
        assert http.winner == local.winner and http.method == "probs"
        assert http.probs == pytest.approx(local.probs, abs=1e-4)
    points = [PointRequest("What colour is it?", "Red.", imgs[0]), PointRequest("What is it?", "A cat.", imgs[1])]
    for local, http in zip(tiny.score_batch(points, task="image-und/point"),
                           remote.score_batch(points, task="image-und/point")):
        assert http.score == local.score
        assert http.expected_score == pytest.approx(local.expected_score, abs=1e-2)
    gen_local = RewardModel(tiny.backend, method="generate", max_new_tokens=6).rank_batch(pairs[:2])
    gen_http = RewardModel(remote.backend, method="generate", max_new_tokens=6).rank_batch(pairs[:2])
    assert [r.raw for r in gen_http] == [r.raw for r in gen_local]
    assert [r.winner for r in gen_http] == [r.winner for r in gen_local]


def test_native_endpoints_and_the_cache(tiny, client):
    a, b = png(10), png(11)
    body = {"task": "image-gen/pair", "prompt": "a red circle", "a": data_url(a), "b": data_url(b), "id": "x1"}
    first = client.post("/v1/rank", json=body)
    assert first.status_code == 200, first.text
    r = first.json()["result"]
    assert r["cached"] is False and r["id"] == "x1" and r["winner"] == tiny.rank("a red circle", a, b).winner
    hits = client.get("/metrics").json()["cache"]["hits"]
    again = client.post("/v1/rank", json={**body, "unknown_field": 1}).json()["result"]
    assert again["cached"] is True and again["probs"] == r["probs"]
    assert client.get("/metrics").json()["cache"]["hits"] == hits + 1
    swapped = client.post("/v1/rank", json={**body, "both_orders": True}).json()["result"]
    assert swapped["cached"] is False and swapped["consistent"] in (True, False)

    batch = client.post("/v1/score", json={"task": "image-und/point", "items": [
        {"prompt": "What colour?", "candidate": "Red.", "media": data_url(a)},
        {"prompt": "What colour?", "candidate": "Blue.", "media": {"base64": data_url(a).split(",", 1)[1]}}]})
    assert batch.status_code == 200, batch.text
    scores = batch.json()["results"]
    assert len(scores) == 2 and all(1 <= s["score"] <= 10 and s["reward"] is not None for s in scores)

    group = client.post("/v1/rank-group", json={"task": "image-gen/pair", "prompt": "a red circle",
                                                "candidates": [data_url(png(i)) for i in range(3)]})
    assert group.status_code == 200, group.text
    assert sorted(group.json()["result"]["ranking"]) == [0, 1, 2]


def test_local_paths_only_under_allowed_roots(client, media_root, tmp_path):
    ok = client.post("/v1/rank", json={"task": "image-gen/pair", "prompt": "p", "a": str(media_root / "a.png"),
                                       "b": {"path": str(media_root / "b.png")}})
    assert ok.status_code == 200, ok.text
    png(3).save(tmp_path / "secret.png")
    (media_root / "link.png").symlink_to(tmp_path / "secret.png")
    for path in (str(tmp_path / "secret.png"), str(media_root / "link.png"), str(media_root / ".." / "x.png"),
                 "/etc/passwd"):
        r = client.post("/v1/rank", json={"task": "image-gen/pair", "prompt": "p", "a": path,
                                          "b": str(media_root / "b.png")})
        assert r.status_code == 403, (path, r.text)
        assert "outside the allowed roots" in r.json()["error"]["message"]
    url = client.post("/v1/score", json={"task": "image-gen/point", "prompt": "p", "candidate": "http://x/a.png"})
    assert url.status_code == 403 and "URLs is disabled" in url.json()["error"]["message"]


def test_api_key_is_required(server):
    assert httpx.get(server.url + "/health").status_code == 200  # health stays open for load balancers
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        r = httpx.post(server.url + "/v1/rank", json={}, headers=headers)
        assert r.status_code == 401 and "API key" in r.json()["error"]["message"]
    assert httpx.get(server.url + "/metrics", headers={"X-API-Key": KEY}).status_code == 200


@pytest.mark.parametrize("path, body, status, words", [
    ("/v1/rank", b"{not json", 400, "not valid JSON"),
    ("/v1/rank", ["a list"], 422, "JSON object"),
    ("/v1/rank", {"prompt": "p"}, 422, "task is required"),
    ("/v1/rank", {"task": "image-gen/nope", "prompt": "p"}, 422, "unknown task"),
    ("/v1/rank", {"task": "image-gen/point", "prompt": "p", "a": "x", "b": "y"}, 422, "point task"),
    ("/v1/rank", {"task": "image-gen/pair", "prompt": "p", "a": "data:image/png;base64,AAAA"}, 422, "b is required"),
    ("/v1/rank", {"task": "image-gen/pair", "prompt": "p", "a": "data:image/png;base64,@@@",
                  "b": "data:image/png;base64,@@"}, 422, "base64"),
    ("/v1/rank", {"task": "image-gen/pair", "prompt": "p", "a": "data:image/png;base64,aGVsbG8=",
                  "b": "data:image/png;base64,aGVsbG8="}, 422, "not a readable image"),
    ("/v1/rank", {"task": "image-und/pair", "prompt": "p", "a": "yes", "b": "no"}, 422, "media is required"),
    ("/v1/rank", {"task": "image-gen/pair", "prompt": "x" * 2001, "a": "", "b": ""}, 413, "over the limit"),
    ("/v1/rank", {"task": "image-gen/pair", "both_orders": "yes", "prompt": "p", "a": "", "b": ""}, 422,
     "true or false"),
    ("/v1/score", {"task": "video-gen/point", "prompt": "p",
                   "candidate": {"frames": ["data:image/png;base64,AAAA"] * 5}}, 413, "frames"),
    ("/v1/score", {"task": "image-gen/point", "items": []}, 422, "non-empty"),
    ("/v1/rank-group", {"task": "image-gen/pair", "prompt": "p", "candidates": ["x"]}, 422, "at least 2"),
    ("/v1/nothing", {}, 404, "no endpoint"),
])
def test_malformed_requests_get_a_4xx_with_the_reason(client, path, body, status, words):
    r = client.post(path, **({"content": body} if isinstance(body, bytes) else {"json": body}))
    assert r.status_code == status, r.text
    assert words in r.json()["error"]["message"]


def test_openai_chat_completions(client):
    img = data_url(png(5))
    body = {"model": "unireward", "messages": [
        {"role": "system", "content": "You are a judge."},
        {"role": "user", "content": [{"type": "text", "text": "Which is better?"},
                                     {"type": "image_url", "image_url": {"url": img}}]},
        {"role": "assistant", "content": "Final Judgment:"}],
        "continue_final_message": True, "add_generation_prompt": False, "max_tokens": 2, "logprobs": True,
        "top_logprobs": 5, "temperature": 0.7, "presence_penalty": 0, "some_vendor_field": {"x": 1}}
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] in ("stop", "length")
    content = choice["logprobs"]["content"]
    assert 1 <= len(content) <= 2 and len(content[0]["top_logprobs"]) == 5
    assert r.json()["usage"]["prompt_tokens"] > 0
    assert client.get("/v1/models").json()["data"][0]["id"] == "unireward"
    other = client.post("/v1/chat/completions", json={**body, "model": "anything"})  # never judged by the wrong model
    assert other.status_code == 404 and "'unireward'" in other.json()["error"]["message"]
    assert client.post("/v1/chat/completions", json={**body, "stream": True}).status_code == 400
    assert client.post("/v1/chat/completions", json={**body, "top_logprobs": 5000}).status_code == 413
    bad = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": [{"type": "audio"}]}]})
    assert bad.status_code == 422 and "unsupported content part" in bad.json()["error"]["message"]
    video = {"type": "video_url", "video_url": {"url": "data:video/png;base64," + ",".join(
        data_url(png(i)).split(",", 1)[1] for i in range(3))}}
    v = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": [video]}],
                                                  "max_tokens": 1})
    assert v.status_code == 200, v.text


# -- batching, back-pressure, timeouts and shutdown on a scripted judge --------------------------------------------
class SlowJudge(ScriptedBackend):
    def __init__(self, delay: float):
        super().__init__(lambda x: PAIR_1)
        self.delay = delay
        self.batches: list[int] = []

    def generate(self, inputs, max_new_tokens=256, stop=None, prefix=""):
        self.batches.append(len(inputs))
        time.sleep(self.delay)
        return super().generate(inputs, max_new_tokens, stop, prefix)


def rank_body(i: int) -> dict:
    return {"task": "image-gen/pair", "prompt": f"p{i}", "a": data_url(png(i, 8)), "b": data_url(png(i + 1, 8))}


def fire(url: str, bodies: list[dict], workers: int = 16) -> list[httpx.Response]:
    with httpx.Client(base_url=url, timeout=30) as c, ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda b: c.post("/v1/rank", json=b), bodies))


def test_concurrent_requests_share_micro_batches():
    judge = SlowJudge(0.2)
    with ServerThread(RewardModel(judge), ServeConfig(port=0, max_batch_size=8, max_wait_ms=50)) as srv:
        responses = fire(srv.url, [rank_body(i) for i in range(16)])
        metrics = httpx.get(srv.url + "/metrics").json()
    assert [r.status_code for r in responses] == [200] * 16
    assert all(r.json()["result"]["winner"] == 1 for r in responses)
    assert max(judge.batches) > 1 and len(judge.batches) < 16 and max(judge.batches) <= 8
    assert metrics["batches"] == len(judge.batches) and metrics["mean_batch_size"] > 1


def test_overload_gets_429_and_slow_requests_504():
    judge = SlowJudge(0.5)
    with ServerThread(RewardModel(judge), ServeConfig(port=0, max_batch_size=1, max_queue=2, timeout_s=5)) as srv:
        codes = [r.status_code for r in fire(srv.url, [rank_body(i) for i in range(10)], workers=10)]
        assert codes.count(429) >= 1 and codes.count(200) >= 2 and set(codes) <= {200, 429}
        r429 = next(r for r in fire(srv.url, [rank_body(i) for i in range(20, 30)], workers=10)
                    if r.status_code == 429)
        assert r429.headers["retry-after"] == "1" and "queue is full" in r429.json()["error"]["message"]
    with ServerThread(RewardModel(SlowJudge(1.0)), ServeConfig(port=0, timeout_s=0.2)) as srv:
        r = httpx.post(srv.url + "/v1/rank", json=rank_body(0), timeout=10)
        assert r.status_code == 504 and "did not finish" in r.json()["error"]["message"]


def test_graceful_shutdown_finishes_in_flight_work():
    judge = SlowJudge(0.3)
    srv = ServerThread(RewardModel(judge), ServeConfig(port=0, max_batch_size=4)).start()
    results = []
    sender = threading.Thread(target=lambda: results.extend(fire(srv.url, [rank_body(i) for i in range(8)])))
    sender.start()
    deadline = time.monotonic() + 20
    while sum(judge.batches) < 4 and time.monotonic() < deadline:  # the first batch is being judged
        time.sleep(0.01)
    time.sleep(0.1)  # the others are queued behind it
    srv.stop()
    sender.join()
    assert [r.status_code for r in results] == [200] * 8
    assert sum(judge.batches) == 8
