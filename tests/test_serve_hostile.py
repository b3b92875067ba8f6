"""`unireward serve` under hostile and careless clients (issue 24): real servers on loopback ports, a scripted judge
that prefers brighter images and fails on a pure red one (a "poisoned" item), real slow and redirecting HTTP
servers for URL media. Each test fails on the server as it was before the issue."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import pytest
from PIL import Image

from unireward.backends.scripted import ScriptedBackend
from unireward.errors import ConfigError
from unireward.judge import RewardModel
from unireward.serve import ServeConfig, ServerThread

RED = (255, 0, 0)


def image(color=(90, 90, 90), size=(8, 8)) -> Image.Image:
    return Image.new("RGB", size, color)


def png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def url_of(im: Image.Image) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(im)).decode()


class PoisonJudge(ScriptedBackend):
    """P(first) from brightness; raises (as a model's processor does on an input it refuses) on a pure red image.
    Records the text of every input it judged and the size of every call."""

    def __init__(self, delay: float = 0.0):
        super().__init__(lambda x: "Final Score: 5", probs=self._probs)
        self.delay, self.calls_seen, self.texts, self.lock = delay, [], [], threading.Lock()

    def _probs(self, x, prefix, choices):
        if len(choices) == 3:
            a, b = (float(np.asarray(im).mean()) for im in x.images)
            p = 1 / (1 + np.exp(-(a - b) / 20))
            return [0.9 * p, 0.9 * (1 - p), 0.1]
        return [1.0 if i == len(choices) // 2 else 0.0 for i in range(len(choices))]

    def choice_probs(self, inputs, prefix, choices):
        with self.lock:
            self.calls_seen.append(len(inputs))
            self.texts += ["".join(p for p in x.parts if isinstance(p, str)) for x in inputs]
        time.sleep(self.delay)
        for x in inputs:
            if any(im.getpixel((0, 0)) == RED for im in x.images):
                raise ValueError("this image cannot be processed (a poisoned item)")
        return super().choice_probs(inputs, prefix, choices)


def serve(judge=None, **cfg) -> ServerThread:
    defaults = dict(port=0, max_wait_ms=300, max_batch_size=32)
    return ServerThread(RewardModel(judge or PoisonJudge()), ServeConfig(**{**defaults, **cfg}))


def post(srv, path: str, body, timeout: float = 30, **kw) -> httpx.Response:
    return httpx.post(srv.url + path, json=body, timeout=timeout, **kw)


def group(prompt: str, colors) -> dict:
    return {"prompt": prompt, "candidates": [url_of(image(c)) for c in colors]}


# -- 3. one bad item never fails another item or another client ---------------------------------------------------
def test_a_poisoned_item_fails_alone_across_clients_items_and_groups():
    with serve() as srv:
        rank_items = [{"prompt": "p", "a": url_of(image((200,) * 3)), "b": url_of(image((10,) * 3)), "id": "one"},
                      {"prompt": "p", "a": url_of(image(RED)), "b": url_of(image((10,) * 3)), "id": "bad"},
                      {"prompt": "p", "a": url_of(image((10,) * 3)), "b": url_of(image((200,) * 3)), "id": "two"}]
        calls = [("/v1/reward", {"groups": [group("g0", [(20,) * 3, (220,) * 3]),
                                            group("g1", [(20,) * 3, RED, (120,) * 3])]}),
                 ("/v1/reward", group("another client", [(30,) * 3, (230,) * 3])),
                 ("/v1/rank", {"task": "image-gen/pair", "both_orders": True, "items": rank_items}),
                 ("/v1/rank", {"task": "image-gen/pair", "both_orders": True, **rank_items[0]})]
        with ThreadPoolExecutor(len(calls)) as pool:  # together: the 300 ms window batches them across clients
            a, b, c, d = pool.map(lambda pc: post(srv, *pc), calls)
        alone = post(srv, "/v1/rank", {"task": "image-gen/pair", **rank_items[1]})
    assert a.status_code == 200, a.text
    g0, g1 = a.json()["results"]
    assert g0["status"] == "ok" and g0["rewards"][1] > g0["rewards"][0]
    assert g1["status"] == "error" and g1["reason"].startswith("groups[1]") and "poisoned" in g1["reason"]
    assert b.status_code == 200 and b.json()["result"]["status"] == "ok", b.text
    assert c.status_code == 200, c.text
    res = c.json()["results"]
    assert [r["status"] for r in res] == ["ok", "error", "ok"] and [r["id"] for r in res] == ["one", "bad", "two"]
    assert res[0]["winner"] == 1 and res[2]["winner"] == 2
    assert res[1]["code"] == 422 and res[1]["reason"].startswith("items[1]") and "poisoned" in res[1]["reason"]
    assert d.status_code == 200 and d.json()["result"]["winner"] == 1
    assert alone.status_code == 422 and "poisoned" in alone.json()["error"]["message"]  # alone: its own status


def test_an_image_past_the_aspect_limit_is_its_groups_own_error_naming_the_field():
    with serve() as srv:
        body = {"groups": [group("g0", [(20,) * 3, (220,) * 3]), group("g1", [(20,) * 3, (220,) * 3])]}
        body["groups"][1]["candidates"][1] = url_of(image((220,) * 3, size=(10000, 1)))
        r = post(srv, "/v1/reward", body)
    assert r.status_code == 200, r.text
    ok, bad = r.json()["results"]
    assert ok["status"] == "ok" and bad["status"] == "error" and bad["rewards"] == [None, None]
    assert "groups[1].candidates[1]" in bad["reason"] and "max_aspect_ratio" in bad["reason"]


# -- 4. bounded work: pairs per request, dropped work, shutdown ----------------------------------------------------
def test_the_pairs_a_request_asks_for_are_capped():
    judge = PoisonJudge()
    with serve(judge, max_pairs=500) as srv:
        g = group("big", [(i,) * 3 for i in range(17)])  # 17 * 16 / 2 pairs, both orders: 272 orders
        assert post(srv, "/v1/reward", g).status_code == 200
        for path, body in [("/v1/reward", {"groups": [g, g]}),  # 544 orders
                           ("/v1/reward", group("G=200", [(i % 250,) * 3 for i in range(200)])),
                           ("/v1/rank-group", {"task": "image-gen/pair", "schedule": "round-robin",
                                               "both_orders": True, **group("p", [(i,) * 3 for i in range(25)])})]:
            calls = len(judge.calls_seen)  # 25 * 24 / 2 pairs, both orders: 600 orders
            r = post(srv, path, body)
            assert r.status_code == 413, r.text[:300]
            assert "max_pairs" in r.json()["error"]["message"] and len(judge.calls_seen) == calls  # nothing judged


def test_queued_work_is_dropped_when_its_client_leaves_or_its_time_is_up():
    judge = PoisonJudge(delay=3.0)
    with serve(judge, max_batch_size=1, max_wait_ms=0, timeout_s=1.5) as srv:
        first = threading.Thread(target=post, args=(srv, "/v1/reward", group("first", [(10,) * 3, (90,) * 3])))
        first.start()
        time.sleep(0.3)  # "first" is being judged for 3 s; the next requests wait behind it
        with pytest.raises(httpx.ReadTimeout):
            post(srv, "/v1/reward", group("client-left", [(10,) * 3, (90,) * 3]), timeout=0.3)
        late = threading.Thread(target=post, args=(srv, "/v1/reward", group("timed-out", [(10,) * 3, (90,) * 3])))
        late.start()
        first.join()
        late.join()
        time.sleep(1.0)
        metrics = httpx.get(srv.url + "/metrics").json()
    assert any("first" in t for t in judge.texts)
    assert [t for t in judge.texts if "client-left" in t or "timed-out" in t] == []  # neither was ever judged
    assert metrics["dropped_items"] == 2 and metrics["statuses"].get("499") == 1


# -- 5. URL media: a total deadline, bounded same-origin redirects, no starving -------------------------------------
class _Slow(BaseHTTPRequestHandler):
    """/slow: one byte every 0.5 s of a 100 kB body; /png: an image; /hop: -> /png; /loop: -> /loop;
    /away: -> the same path on another port."""

    stop = threading.Event()
    other_port = 0

    def do_GET(self):  # noqa: N802 - the http.server interface
        if self.path.startswith("/slow"):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            while not self.stop.wait(0.5):
                try:
                    self.wfile.write(b"\0")
                    self.wfile.flush()
                except OSError:
                    return
            return
        if self.path == "/png":
            data = png_bytes(image((200,) * 3))
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        target = {"/hop": "/png", "/loop": "/loop",
                  "/away": f"http://127.0.0.1:{self.other_port}/png"}.get(self.path)
        self.send_response(302 if target else 404)
        if target:
            self.send_header("Location", target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def web():
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Slow) for _ in range(2)]
    _Slow.stop.clear()
    _Slow.other_port = servers[1].server_address[1]
    for s in servers:
        s.daemon_threads = True
        threading.Thread(target=s.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{servers[0].server_address[1]}"
    _Slow.stop.set()
    for s in servers:
        s.shutdown()
        s.server_close()


def test_slow_urls_meet_their_deadline_and_cannot_starve_inline_requests(web):
    with serve(allow_urls=True, fetch_timeout_s=2.0, max_fetches=2, max_wait_ms=5, timeout_s=20) as srv:
        slow = [{"task": "image-gen/pair", "prompt": "p", "a": f"{web}/slow?{i}", "b": url_of(image())}
                for i in range(34)]  # more than any default thread pool holds
        inline = {"task": "image-gen/pair", "prompt": "p", "a": url_of(image((200,) * 3)), "b": url_of(image())}
        with ThreadPoolExecutor(len(slow)) as pool:
            started = time.monotonic()
            pending = [pool.submit(post, srv, "/v1/rank", b) for b in slow]
            time.sleep(1.0)  # the slow fetches have begun (and, before the fix, filled the threads)
            sent = time.monotonic()
            fast = post(srv, "/v1/rank", inline, timeout=10)
            fast_s = time.monotonic() - sent
            answers = [f.result() for f in pending]
            all_s = time.monotonic() - started
        url = post(srv, "/v1/rank", {**inline, "a": f"{web}/png"})  # the fetch threads were freed at the deadline
    assert url.status_code == 200, url.text
    assert fast.status_code == 200 and fast_s < 5, (fast.status_code, fast_s)  # (before: no answer at all)
    assert [r.status_code for r in answers] == [422] * len(slow)
    assert all("fetch" in r.json()["error"]["message"] and "2 s" in r.json()["error"]["message"] for r in answers)
    assert all_s < 10, all_s  # each within its deadline (busy clients in this same process add a little)


def test_redirects_stay_within_their_origin_and_are_bounded(web):
    with serve(allow_urls=True) as srv:
        def rank(path):
            return post(srv, "/v1/rank", {"task": "image-gen/pair", "prompt": "p", "a": f"{web}{path}",
                                          "b": url_of(image())})
        assert rank("/hop").status_code == 200
        away, loop = rank("/away"), rank("/loop")
    assert away.status_code == 403 and "another origin" in away.json()["error"]["message"]
    assert loop.status_code == 422 and "max_redirects" in loop.json()["error"]["message"]


# -- 6-8. idempotency keys and metrics stay bounded ------------------------------------------------------------------
def test_idempotency_keys_are_bounded_and_remembered_without_a_result_cache():
    judge = PoisonJudge()
    with serve(judge, cache_size=0) as srv:
        body = group("p", [(10,) * 3, (90,) * 3])
        first = post(srv, "/v1/reward", {**body, "idempotency_key": "step-1"})
        post(srv, "/v1/reward", {**body, "idempotency_key": "step-2"})
        calls = len(judge.texts)
        retry = post(srv, "/v1/reward", {**body, "idempotency_key": "step-1"})
        huge = post(srv, "/v1/reward", body, headers={"Idempotency-Key": "k" * 100_000})
    assert retry.json()["replayed"] is True and retry.json()["result"] == first.json()["result"]
    assert len(judge.texts) == calls  # not judged again, though the result cache is off
    assert huge.status_code == 413 and "max_key_chars" in huge.json()["error"]["message"]


def test_requests_to_random_paths_do_not_grow_the_metrics():
    with serve(api_key="secret") as srv:
        with httpx.Client(base_url=srv.url, timeout=10) as c:
            codes = {c.get(f"/x{i}/{'y' * 50}").status_code for i in range(300)}
            metrics = c.get("/metrics", headers={"Authorization": "Bearer secret"}).json()
    assert codes == {401}
    assert metrics["requests"]["other"] == 300 and set(metrics["requests"]) <= {"other", "/metrics"}


# -- 14-16. chat fields, JSON depth, paths, API keys and headers ------------------------------------------------------
@pytest.mark.parametrize("extra, status, words", [
    ({"logprobs": True, "top_logprobs": True}, 422, "top_logprobs"),
    ({"stop": [""]}, 422, "must not be empty"),
    ({"tool_choice": "required", "tools": [{"type": "function", "function": {"name": "f"}}]}, 422, "tool"),
    ({"response_format": {"type": "json_object"}}, 422, "response_format"),
    ({"stream": "false"}, 422, "stream must be true or false"),
    ({"model": "gpt-4o"}, 404, "'unireward'"),
])
def test_chat_fields_it_cannot_honour_are_refused_not_ignored(extra, status, words):
    with serve() as srv:
        body = {"model": "unireward", "messages": [{"role": "user", "content": "Which is better?"}], **extra}
        r = post(srv, "/v1/chat/completions", body)
        ok = post(srv, "/v1/chat/completions", {"messages": body["messages"], "stop": ["\n"], "max_tokens": 4})
    assert r.status_code == status and words in r.json()["error"]["message"], r.text
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] == "Final Score: 5"


def test_deep_json_nul_bytes_and_file_urls_get_answers_naming_the_limit_or_field(tmp_path):
    image().save(tmp_path / "x.png")
    with serve(allowed_roots=[str(tmp_path)]) as srv:
        deep = httpx.post(srv.url + "/v1/rank", content=b"[" * 100_000 + b"]" * 100_000, timeout=30)
        base = {"task": "image-gen/pair", "prompt": "p", "b": str(tmp_path / "x.png")}
        nul = post(srv, "/v1/rank", {**base, "a": str(tmp_path / "x.png") + "\0.png"})
        file_url = post(srv, "/v1/rank", {**base, "a": (tmp_path / "x.png").as_uri()})
        fine = post(srv, "/v1/rank", {**base, "a": str(tmp_path / "x.png")})
    assert deep.status_code == 413 and "max_json_depth" in deep.json()["error"]["message"]
    assert nul.status_code == 422 and nul.json()["error"]["message"].startswith("a: ") and "NUL" in nul.text
    assert file_url.status_code == 422 and "file: URLs are not accepted" in file_url.json()["error"]["message"]
    assert fine.status_code == 200


def test_api_keys_must_be_ascii_and_huge_headers_get_431():
    with pytest.raises(ConfigError, match="printable ASCII"):
        ServeConfig(api_key="clé-secrète")
    with serve(api_key="secret", max_header_bytes=16 * 1024) as srv:
        huge = httpx.get(srv.url + "/metrics", headers={"Authorization": "Bearer " + "x" * 1_000_000}, timeout=30)
        ok = httpx.get(srv.url + "/metrics", headers={"Authorization": "Bearer secret"}, timeout=30)
    assert huge.status_code == 431 and "max_header_bytes" in huge.json()["error"]["message"]
    assert ok.status_code == 200


def test_json_depth_is_counted_outside_strings():
    from unireward.serve.app import json_depth

    assert json_depth(b'{"a": [1, {"b": "[[[[{{{"}], "c": "\\"]]]"}') == 3
    assert json_depth(json.dumps({"s": "[" * 1000}).encode()) == 1
    assert json_depth(b"[" * 70 + b"]" * 70) == 70
