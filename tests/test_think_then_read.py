"""Think, then read: a judge that reasons before its verdict generates its reasoning up to the format's
`reasoning_stop`, then the choice distribution is read right there (transformers, OpenAI-compatible and scripted
backends); asking such a judge for probabilities it cannot read is refused, never answered with a coin flip."""

from __future__ import annotations

import json
import math

import httpx
import pytest
from PIL import Image

from unireward.backends.base import ChatInput
from unireward.backends.openai import OpenAIBackend
from unireward.backends.scripted import ScriptedBackend
from unireward.errors import TaskError
from unireward.judge import PointRequest, RewardModel
from unireward.tasks import get_task
from unireward.judging.render import render  # noqa: E402

PAIR = get_task("image-gen/pair")
CHOICES = list(PAIR.answer.choices().values())
STOP = PAIR.answer.reasoning_stop  # "Final Judgment: "


# -- the shipped sandbox judge (a trained tiny Qwen2-VL that writes a checklist first) ---------------------------
@pytest.fixture(scope="module")
def shipped():
    from unireward.sandbox.ladder import SHIPPED_JUDGE

    if not (SHIPPED_JUDGE / "model.safetensors").is_file():
        pytest.skip(f"no judge shipped in {SHIPPED_JUDGE}")
    return str(SHIPPED_JUDGE)


@pytest.fixture(scope="module")
def shipped_rm(shipped):
    return RewardModel.load(shipped, dtype="float32", device="cpu")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """Two held-out sandbox samples per task: (pair requests, gold labels, point requests, gold scores)."""
    from unireward.sandbox.ladder import _pair_request, _point_request, heldout_samples

    data = heldout_samples(3, 0, 56, 8, root=tmp_path_factory.mktemp("sandbox"),
                           tasks=["image-gen/pair", "image-gen/point"])
    pairs = [(_pair_request(s, root), s.label) for s, root in data["image-gen/pair"]]
    points = [(_point_request(s, root), s.label) for s, root in data["image-gen/point"]]
    return pairs, points


def test_shipped_judge_reports_probabilities_by_default(shipped_rm, sandbox):
    pairs, points = sandbox
    results = shipped_rm.rank_batch([r for r, _ in pairs], task="image-gen/pair", both_orders=True)
    generated = RewardModel(shipped_rm.backend, method="generate", max_new_tokens=128).rank_batch(
        [r for r, _ in pairs], task="image-gen/pair", both_orders=True)
    for r, g in zip(results, generated):
        assert r.method == "think+probs" and r.status == "ok"
        assert r.p_first is not None and math.isclose(sum(r.probs.values()), 1.0, rel_tol=1e-6)
        assert all("Tally:" in raw and STOP.strip() in raw for raw in r.raw)  # the reasoning is kept
        assert r.winner == g.winner  # reading after the checklist agrees with the written verdict
    scores = shipped_rm.score_batch([r for r, _ in points], task="image-gen/point")
    for s, (_, gold) in zip(scores, points):
        assert s.method == "think+probs" and s.expected_score is not None and 1 <= s.expected_score <= 5
        assert s.score == gold


def test_probs_on_the_checklist_judge_reads_after_the_checklist_not_a_coin_flip(shipped, sandbox):
    """issue 16, defect 3: `--method probs` on the shipped judge read the verdict right after the prompt
    (0.50 / 0.50, consistent: false, and a winner)."""
    rm = RewardModel.load(shipped, dtype="float32", device="cpu", method="probs")
    pairs, _ = sandbox
    for (req, gold), r in zip(pairs, rm.rank_batch([r for r, _ in pairs], task="image-gen/pair", both_orders=True)):
        assert r.method == "think+probs" and r.consistent is True
        assert max(r.probs.values()) > 0.9 and r.winner == gold


def test_reasoning_judge_refuses_probabilities_it_cannot_read(images):
    checklist = "colour red: Image 1 yes, Image 2 no\nFinal Judgment: Image 1 is better than Image 2."
    rm = RewardModel(ScriptedBackend(lambda x: checklist), method="probs", reasoning=True)
    with pytest.raises(TaskError, match="reasons before its verdict"):
        rm.rank("a red circle", images[0], images[1])
    with pytest.raises(TaskError, match="reasons before its verdict"):
        rm.score("a red circle", images[0])
    # auto on the same backend generates and parses the whole answer instead
    r = RewardModel(ScriptedBackend(lambda x: checklist), reasoning=True).rank("a red circle", images[0], images[1])
    assert r.method == "generate" and r.winner == 1

    # a family whose judges always reason first (Think) refuses an explicit no-reasoning read, and a backend
    # without probabilities
    think = "<think>\nImage 1 shows the red circle.\n</think>\n<answer>Image 1 is better</answer>"
    probs = ScriptedBackend(lambda x: think, probs=lambda x, prefix, choices: [0.8, 0.2])
    with pytest.raises(TaskError, match="reasoning=False was asked"):
        RewardModel(probs, family="think", method="probs", reasoning=False).rank("a red circle", *images[:2])
    with pytest.raises(TaskError, match="reads no token probabilities"):
        RewardModel(ScriptedBackend(lambda x: think), family="think", method="probs").rank("a red circle", *images[:2])
    r = RewardModel(probs, family="think").rank("a red circle", images[0], images[1])
    assert r.method == "think+probs" and r.p_first == pytest.approx(0.8)
    assert r.raw == ["<think>\nImage 1 shows the red circle.\n</think>\n<answer>Image 1 is better"]


# -- the scripted backend: every entry point goes through the same path ----------------------------------------
class Reasoner:
    """Writes a checklist naming the better candidate, then reads probabilities that depend on the checklist
    it was given as the prefix; records the prefixes it saw."""

    def __init__(self, reach: bool = True):
        self.reach = reach
        self.prefixes: list[str] = []

    def respond(self, x: ChatInput) -> str:
        imgs = x.images
        if len(imgs) == 1:  # a point request
            return "red check: yes\nFinal Score: 4" if self.reach else "red check: yes"
        better = 1 if imgs[0].getpixel((0, 0))[0] >= imgs[-1].getpixel((0, 0))[0] else 2
        text = f"red check: Image {better} redder\nTally: Image {better} wins\n"
        return text + (STOP + PAIR.answer.verdict(better) if self.reach else "and so on")

    def probs(self, x, prefix, choices):
        self.prefixes.append(prefix)
        if choices == CHOICES:
            assert prefix.endswith(STOP), prefix
            return [0.7, 0.2, 0.1] if "Tally: Image 1" in prefix else [0.2, 0.7, 0.1]
        return [1.0 + i for i in range(len(choices))]  # points: rising with the score


def _shades():
    return [Image.new("RGB", (8, 8), (v, 0, 0)) for v in (250, 120, 30)]


def test_scripted_pairs_groups_and_points_read_after_each_inputs_own_reasoning():
    judge = Reasoner()
    rm = RewardModel(ScriptedBackend(judge.respond, judge.probs), reasoning=True)
    red, mid, dark = _shades()
    r = rm.rank("the reddest square", red, dark, both_orders=True)
    assert r.method == "think+probs" and r.consistent is True
    assert r.probs == pytest.approx({"1": 0.7, "2": 0.2, "tie": 0.1}) and r.p_first == pytest.approx(0.75)
    assert sorted(judge.prefixes) == sorted([f"red check: Image {w} redder\nTally: Image {w} wins\n" + STOP
                                             for w in (1, 2)])
    assert r.raw[0].endswith(STOP + "Image 1 is better than Image 2.") and "Tally" in r.raw[0]

    g = rm.rank_group("the reddest square", [dark, red, mid])
    assert g.ranking == [1, 2, 0] and g.unparsed == 0
    assert all(c["p_first"] is not None for c in g.comparisons)

    point_task = get_task("image-gen/point")
    s = rm.score_batch([PointRequest("the reddest square", red)], task=point_task)[0]
    values = point_task.answer.values()
    w = [1.0 + i for i in range(len(values))]
    assert s.method == "think+probs"
    assert s.expected_score == pytest.approx(sum(v * p for v, p in zip(values, w)) / sum(w))
    assert judge.prefixes[-1].endswith(point_task.answer.reasoning_stop)


def test_reasoning_that_never_reaches_the_stop_is_unparsed_with_that_reason():
    judge = Reasoner(reach=False)
    rm = RewardModel(ScriptedBackend(judge.respond, judge.probs), reasoning=True, max_new_tokens=64)
    red, _, dark = _shades()
    r = rm.rank("the reddest square", red, dark)
    assert r.status == "unparsed" and r.winner is None and r.probs is None and r.p_first is None
    assert "did not reach 'Final Judgment: '" in r.reason and "64 tokens" in r.reason
    both = rm.rank("the reddest square", red, dark, both_orders=True)
    assert both.status == "unparsed" and both.p_first is None
    assert not judge.prefixes  # nothing was read


# -- the transformers backend, checked against a separate forward pass ---------------------------------------
def _manual_logprobs(backend, x: ChatInput, ids: list[int]):
    """log-softmax over the vocabulary at every position of prompt + `ids`, computed directly."""
    import torch

    text = backend.prompt_text(x)
    enc = backend.processor(text=[text], images=x.images or None, return_tensors="pt")
    enc.pop("token_type_ids", None)
    n = enc["input_ids"].shape[1]
    for key in [k for k, v in enc.items() if hasattr(v, "shape") and tuple(v.shape) == (1, n)]:
        extra = torch.tensor([ids]) if key == "input_ids" else torch.full((1, len(ids)), int(key == "attention_mask"))
        enc[key] = torch.cat([enc[key], extra.to(enc[key].dtype)], dim=1)
    with torch.inference_mode():
        logits = backend.model(**enc).logits[0].double()
    return torch.log_softmax(logits, dim=-1), n


def test_hf_think_then_read_matches_a_separate_forward_pass(shipped_rm, sandbox):
    """The probabilities read after the generated checklist equal those computed here by hand: prompt + the
    generated token ids up to the stop + the choice tokens, one plain forward pass."""
    import torch

    b = shipped_rm.backend
    tok = b.tokenizer
    pairs, points = sandbox
    req = pairs[0][0]
    x = render(PAIR, shipped_rm.prepare(PAIR, req.prompt, [req.a, req.b], None), swap=False)
    (read,) = b.think_then_read([x], STOP, CHOICES, max_new_tokens=128)
    # the reference: greedy generation by hand, token by token, until the decoded text holds "Final Judgment:"
    text = b.prompt_text(x)
    enc = b.processor(text=[text], images=x.images, return_tensors="pt")
    enc.pop("token_type_ids", None)
    with torch.inference_mode():
        gen = b.model.generate(**enc, max_new_tokens=128, do_sample=False)[0, enc["input_ids"].shape[1]:].tolist()
    k = next(k for k in range(1, len(gen) + 1) if STOP.rstrip() in tok.decode(gen[:k]))
    assert tok.decode(gen[k - 1: k]) == ":"  # the ids end at ":"; " Image" / " Both" is the read
    assert read.text == tok.decode(gen[:k]) + " "
    image, both, space, one, two = (tok.convert_tokens_to_ids(t) for t in ("ĠImage", "ĠBoth", "Ġ", "1", "2"))
    lp, n = _manual_logprobs(b, x, gen[:k] + [image, space])
    at_verdict, at_number = lp[n + k - 1], lp[n + k + 1]
    raw = [at_verdict[image] + at_number[one], at_verdict[image] + at_number[two], at_verdict[both]]
    expected = torch.softmax(torch.stack(raw), dim=0).tolist()
    assert read.probs == pytest.approx(expected, abs=1e-5)

    # points: the ids end at " " (the prefix's trailing space is its own token); scores 1-5 are single digits
    point_task = get_task("image-gen/point")
    preq = points[0][0]
    xp = render(point_task, shipped_rm.prepare(point_task, preq.prompt, [preq.candidate], None), False)
    pstop = point_task.answer.reasoning_stop
    (pread,) = b.think_then_read([xp], pstop, list(point_task.answer.choices().values()), max_new_tokens=128)
    assert pread.text.endswith("Final Score: ")
    text_ids = tok(pread.text, add_special_tokens=False)["input_ids"]
    lp, n = _manual_logprobs(b, xp, text_ids)
    digits = [tok.convert_tokens_to_ids(str(v)) for v in point_task.answer.values()]
    expected = torch.softmax(lp[n + len(text_ids) - 1][digits], dim=0).tolist()
    assert pread.probs == pytest.approx(expected, abs=1e-5)


def test_hf_reasoning_over_the_budget_is_unparsed(shipped, sandbox):
    rm = RewardModel.load(shipped, dtype="float32", device="cpu", max_new_tokens=6)
    req = sandbox[0][0][0]
    r = rm.rank(req.prompt, req.a, req.b)
    assert r.status == "unparsed" and r.p_first is None and "within 6 tokens" in r.reason
    assert r.raw[0] and STOP.strip() not in r.raw[0]  # what it did write is kept


def test_hf_per_input_prefixes_equal_one_at_a_time(tiny_judge, images):
    """choice_probs with one prefix per input (tokenised in context) equals running each alone."""
    xs = [render(PAIR, tiny_judge.prepare(PAIR, "a red circle", [images[i], images[i + 1]], None), False)
          for i in range(3)]
    prefixes = ["colour red: yes\n" + STOP, "A much longer checklist, line after line.\nTally: 2\n" + STOP, STOP]
    batched = tiny_judge.backend.choice_probs(xs, prefixes, CHOICES)
    for x, p, row in zip(xs, prefixes, batched):
        assert row == pytest.approx(tiny_judge.backend.choice_probs([x], p, CHOICES)[0], abs=1e-6)
    assert batched[2] == pytest.approx(tiny_judge.backend.choice_probs(xs[2:], STOP, CHOICES)[0], abs=1e-6)


# -- the OpenAI-compatible backend against a fake server -----------------------------------------------------
def _entry(token, dist):
    return {"token": token, "logprob": math.log(dist[token]),
            "top_logprobs": [{"token": t, "logprob": math.log(p)} for t, p in dist.items()]}


class FakeServer:
    """A chat request without a prefill gets a checklist, then the verdict walked greedily through `tree` (keyed by
    the text after the reasoning), every token with its top log-probabilities, as vLLM answers `logprobs: true`;
    prefilled requests continue from the prefill the same way; requests with `stop` get the reasoning only."""

    REASONING = "colour red: Image 1 red yes, Image 2 red no\nTally: Image 1 1, Image 2 0\n"

    def __init__(self, tree):
        self.tree = tree
        self.bodies: list[dict] = []

    def walk(self, text: str, budget: int) -> list[dict]:
        entries = []
        for _ in range(budget):
            dist = self.tree.get(text, {"<|im_end|>": 1.0})
            tok = max(dist, key=dist.get)
            entries.append(_entry(tok, dist))
            if tok == "<|im_end|>":
                break
            text += tok
        return entries

    def __call__(self, request):
        body = json.loads(request.content)
        self.bodies.append(body)
        last = body["messages"][-1]
        if body.get("stop"):  # the reasoning: vLLM stops at the stop string and (asked to) includes it
            return httpx.Response(200, json={"choices": [{"message": {"content": self.REASONING + STOP},
                                                          "finish_reason": "stop", "stop_reason": STOP}]})
        if last["role"] == "user":  # the whole answer: the checklist, the stop, the verdict
            words = [w for w in (self.REASONING + STOP.rstrip()).replace(" ", " \0").split("\0") if w]
            entries = [_entry(w, {w: 1.0}) for w in words]
            entries += self.walk(STOP.rstrip(), body["max_tokens"] - len(entries))
            text = "".join(e["token"] for e in entries if e["token"] != "<|im_end|>")
            return httpx.Response(200, json={"choices": [{"message": {"content": text}, "finish_reason": "stop",
                                                          "logprobs": {"content": entries}}]})
        assert last["role"] == "assistant" and last["content"].startswith(self.REASONING)
        entries = self.walk(last["content"][len(self.REASONING):], body["max_tokens"])
        return httpx.Response(200, json={"choices": [{"message": {"content": ""}, "finish_reason": "length",
                                                      "logprobs": {"content": entries}}]})


def _openai(server, **kw):
    b = OpenAIBackend("http://judge:8000", served_model="j", transport=httpx.MockTransport(server),
                      use_logprobs=True, **kw)
    return RewardModel(b, reasoning=True, max_new_tokens=300)


def test_openai_generates_the_reasoning_then_reads_the_choices_after_it():
    server = FakeServer({"Final Judgment:": {" Image": 0.8, " Both": 0.15, " I": 0.05},
                         "Final Judgment: Image": {" ": 1.0},
                         "Final Judgment: Image ": {"1": 0.9, "2": 0.1}})
    rm = _openai(server)
    img = Image.new("RGB", (8, 8), "red")
    r = rm.rank("a red circle", img, img)
    z = 0.8 + 0.15
    assert r.method == "think+probs" and r.status == "ok"
    assert r.probs == pytest.approx({"1": 0.8 * 0.9 / z, "2": 0.8 * 0.1 / z, "tie": 0.15 / z})
    assert r.raw == [FakeServer.REASONING + STOP + "Image 1 is better than Image 2."]
    (gen,) = server.bodies  # one request: the verdict is read from the response that wrote the reasoning
    assert "stop" not in gen and gen["messages"][-1]["role"] == "user"
    assert gen["temperature"] == 0 and gen["max_tokens"] == 300 + 4
    assert gen["logprobs"] is True and gen["top_logprobs"] == 20


def test_openai_reads_a_branch_off_the_greedy_path_with_one_more_request():
    """The greedy verdict says "Image 1"; the tie ("Both ...") and "Image 2" branches need no request (one choice
    each, or the greedy tokens cover them); a tree whose greedy path skips a branching point costs one more."""
    server = FakeServer({"Final Judgment:": {" Both": 0.6, " Image": 0.4},
                         "Final Judgment: Image": {" ": 1.0},
                         "Final Judgment: Image ": {"2": 0.7, "1": 0.3}})
    r = _openai(server).rank("a red circle", Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue"))
    assert r.status == "ok" and r.probs == pytest.approx({"1": 0.4 * 0.3, "2": 0.4 * 0.7, "tie": 0.6})
    gen, read = server.bodies
    assert read["messages"][:-1] == gen["messages"]
    assert read["messages"][-1] == {"role": "assistant", "content": FakeServer.REASONING + STOP.rstrip() + " Image"}
    assert read["continue_final_message"] is True and read["add_generation_prompt"] is False
    assert read["logprobs"] is True and read["top_logprobs"] == 20 and read["temperature"] == 0


def test_openai_choices_missing_from_the_top_logprobs_are_not_readable_not_a_coin_flip():
    server = FakeServer({"Final Judgment:": {" Well": 0.9, ",": 0.1}, "Final Judgment: Well": {",": 1.0}})
    r = _openai(server).rank("a red circle", Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue"))
    assert r.status == "unparsed" and r.probs is None and r.p_first is None and r.winner is None
    assert "top log-probabilities" in r.reason


@pytest.mark.parametrize("family", ["qwen2.5-vl", "qwen3-vl"])
def test_hf_think_then_read_matches_a_forward_pass_in_other_families(tiny_model_dir, images, family):
    """Random tiny models of the other families, with a stop taken from their own greedy text (its first three
    tokens): the read equals one forward pass per choice over prompt + generated ids + the choice's tokens, with
    the trie rule of `choices.py` (only tokens where the choices still alive diverge count) written out here."""
    import torch

    rm = RewardModel.load(tiny_model_dir(family), dtype=None)
    b, tok = rm.backend, rm.backend.tokenizer
    x = render(PAIR, rm.prepare(PAIR, "a red circle", [images[0], images[1]], None), swap=False)
    enc = b.processor(text=[b.prompt_text(x)], images=x.images, return_tensors="pt")
    enc.pop("token_type_ids", None)
    with torch.inference_mode():
        gen = b.model.generate(**enc, max_new_tokens=8, do_sample=False)[0, enc["input_ids"].shape[1]:].tolist()
    stop = tok.decode(gen[:3], skip_special_tokens=True)
    assert stop and stop not in tok.decode(gen[:2], skip_special_tokens=True)
    (read,) = b.think_then_read([x], stop, CHOICES, max_new_tokens=8)
    assert read.text == stop
    seqs = [tok(c, add_special_tokens=False)["input_ids"] for c in CHOICES]
    scores = []
    for s in seqs:
        lp, n = _manual_logprobs(b, x, gen[:3] + s)
        total = 0.0
        for d in range(len(s)):
            alive = [o for o in seqs if o[:d] == s[:d] and len(o) > d]
            if len(alive) == 1:
                break  # singled out
            if len({o[d] for o in alive}) > 1:
                total += float(lp[n + 2 + d, s[d]])
        scores.append(total)
    assert read.probs == pytest.approx(torch.softmax(torch.tensor(scores), dim=0).tolist(), abs=1e-5)


def test_point_dimensions_written_in_the_reasoning_are_kept(video_file):
    """1.0 video-gen points: per-dimension lines, then "Final Score: ", where the score is read."""
    text = ("visual quality: 3\ntemporal consistency: 4\ndynamic degree: 2\ntext-to-video alignment: 4\n"
            "factual consistency: 3\nFinal Score: 7")
    seen = []
    backend = ScriptedBackend(lambda x: text, probs=lambda x, prefix, choices: seen.append(prefix) or
                              [1.0 if c == "7" else 0.0 for c in choices])
    s = RewardModel(backend, family="1.0").score("a ball rolling", str(video_file), task="video-gen/point")
    assert seen == [text[:-1]]  # read right after "Final Score: "
    assert s.method == "think+probs" and s.status == "ok" and s.score == 7 and s.expected_score == pytest.approx(7)
    assert s.raw == text and s.dimensions == {"visual quality": 3, "temporal consistency": 4, "dynamic degree": 2,
                                              "text-to-video alignment": 4, "factual consistency": 3}


def test_a_branch_below_the_floor_costs_no_request_and_is_off_by_less_than_it():
    """Greedy says "Both"; " Image" has probability 4e-4, under the default floor of 1e-3: no second request, its
    mass shared by "Image 1" and "Image 2"; with branch_floor=0 it is read exactly, with one more request."""
    tree = {"Final Judgment:": {" Both": 0.9996, " Image": 0.0004},
            "Final Judgment: Image": {" ": 1.0},
            "Final Judgment: Image ": {"1": 0.9, "2": 0.1}}
    img = Image.new("RGB", (8, 8), "red")
    server = FakeServer(tree)
    r = _openai(server).rank("a red circle", img, img)
    assert len(server.bodies) == 1
    assert r.probs == pytest.approx({"1": 0.0002, "2": 0.0002, "tie": 0.9996})
    exact_server = FakeServer(tree)
    exact = _openai(exact_server, branch_floor=0).rank("a red circle", img, img)
    assert len(exact_server.bodies) == 2
    assert exact.probs == pytest.approx({"1": 0.00036, "2": 0.00004, "tie": 0.9996})
    assert max(abs(r.probs[k] - exact.probs[k]) for k in r.probs) < 1e-3


def test_openai_can_read_the_verdict_in_a_second_prefix_cached_request():
    """read_in_generation=False: the reasoning is generated up to the stop (no log-probabilities), then the same
    user turn with the reasoning as the final assistant message is read, as vLLM continues it."""
    server = FakeServer({"Final Judgment:": {" Image": 0.8, " Both": 0.2},
                         "Final Judgment: Image": {" ": 1.0},
                         "Final Judgment: Image ": {"1": 0.9, "2": 0.1}})
    r = _openai(server, read_in_generation=False).rank("a red circle", Image.new("RGB", (8, 8), "red"),
                                                         Image.new("RGB", (8, 8), "blue"))
    assert r.status == "ok" and r.probs == pytest.approx({"1": 0.72, "2": 0.08, "tie": 0.2})
    gen, read = server.bodies
    assert gen["stop"] == [STOP] and gen["include_stop_str_in_output"] is True and "logprobs" not in gen
    assert read["messages"][:-1] == gen["messages"][:1]
    assert read["messages"][-1] == {"role": "assistant", "content": FakeServer.REASONING + STOP.rstrip()}
    assert read["continue_final_message"] is True and read["logprobs"] is True


def test_split_at_stop_finds_the_token_after_the_stop_or_says_there_is_none():
    from unireward.backends.choices import split_at_stop

    text = "Tally: 1\nFinal Judgment: Image 1"
    tokens = ["Tally", ":", " 1", "\n", "Final", " Judgment", ":", " Image", " ", "1"]
    assert split_at_stop(text, tokens, STOP) == ("Tally: 1\nFinal Judgment: ", 7)
    # the stop ends inside a token (":" merged with the next word): no boundary to read at
    assert split_at_stop(text, ["Tally", ":", " 1", "\n", "Final", " Judgment", ": Image", " ", "1"], STOP) is None
    # nothing after the stop was generated
    assert split_at_stop("Final Judgment: ", ["Final", " Judgment", ":"], STOP) is None
