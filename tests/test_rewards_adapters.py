"""The reward adapters called by their trainers: TRL's GRPOTrainer (a tiny Qwen2-VL policy, one step, sync and
async reward functions, in process and over HTTP) and a flow_grpo-style reward function from a thread pool
(in process, a remote `unireward serve`, and an OpenAI-compatible endpoint through the OpenAI backend)."""

from __future__ import annotations

import asyncio
import math
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from unireward.backends.scripted import ScriptedBackend
from unireward.judge import RewardModel
from unireward.rewards.adapters import flow_grpo_reward, to_pil, trl_reward
from unireward.rewards.client import BackgroundLoop, connect
from unireward.serve import ServeConfig, ServerThread
from unireward.tasks import get_task

KEY = "k"
GEN = get_task("image-gen/pair")


def _text(x) -> str:
    return "".join(p for p in x.parts if isinstance(p, str))


class LengthJudge(ScriptedBackend):
    """Understanding: prefers longer answers (point score = min(len, 10)); generation: prefers brighter images.
    Records whether every understanding request carried its image."""

    def __init__(self, with_probs: bool = True):
        super().__init__(self._respond, probs=self._probs if with_probs else None)
        self.saw_images = []

    def _lengths(self, x):
        t = _text(x)
        self.saw_images.append(len(x.images))
        pair = re.search(r"Answer 1: (.*?)\nAnswer 2: (.*?)\nDecide", t, re.S)
        if pair:
            return len(pair.group(1)), len(pair.group(2))
        return (len(re.search(r"Answer: (.*?)\nRate the answer", t, re.S).group(1)),)

    def _first_better(self, x) -> float:
        if "Answer 1:" in _text(x):
            a, b = self._lengths(x)
        else:
            a, b = (float(np.asarray(im).mean()) for im in x.images)
        return 1 / (1 + math.exp(-(a - b) / 4))

    def _probs(self, x, prefix, choices):
        if len(choices) == 10:
            (n,) = self._lengths(x)
            return [1.0 if v == str(min(max(n, 1), 10)) else 0.0 for v in choices]
        p = self._first_better(x)
        return [0.9 * p, 0.9 * (1 - p), 0.1]

    def _respond(self, x):  # the generate-and-parse path (an endpoint without log-probabilities)
        p = self._first_better(x)
        return GEN.answer.prefix + GEN.answer.verdict(1 if p > 0.5 else 2 if p < 0.5 else "tie")


def grey(v: int) -> Image.Image:
    return Image.new("RGB", (8, 8), (v, v, v))


@pytest.fixture(scope="module")
def judge_server():
    backend = LengthJudge()
    with ServerThread(RewardModel(backend), ServeConfig(port=0, api_key=KEY, max_wait_ms=20)) as srv:
        yield srv, backend


# -- TRL GRPOTrainer -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["in-process", "http"])
def test_trl_grpo_trainer_steps_with_judge_rewards(tmp_path, tiny_model_dir, judge_server, where):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    srv, served_backend = judge_server
    backend = LengthJudge() if where == "in-process" else served_backend
    judge = connect(RewardModel(backend)) if where == "in-process" else connect(srv.url, api_key=KEY)
    backend.saw_images.clear()
    imgs = [Image.fromarray(np.full((32, 32, 3), 40 * k, np.uint8)) for k in range(2)]
    ds = Dataset.from_dict({
        "prompt": [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": f"Colour {k}?"}]}]
                   for k in range(2)],
        "image": imgs, "answer": ["It is a grey square.", "Grey."]})
    point = trl_reward(judge, task="image-und/point")
    vs_ref = trl_reward(judge, task="image-und/pair", reference_column="answer", asynchronous=True)
    assert asyncio.iscoroutinefunction(vs_ref) and not asyncio.iscoroutinefunction(point)
    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4,
                      max_completion_length=8, max_steps=1, learning_rate=1e-3, report_to=[], logging_steps=1,
                      use_cpu=True, bf16=False, save_strategy="no", temperature=1.0,
                      activation_checkpointing=False)
    trainer = GRPOTrainer(model=tiny_model_dir("qwen2-vl"), reward_funcs=[point, vs_ref], args=args,
                          train_dataset=ds)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    log = trainer.state.log_history[0]
    assert 1 <= float(log["rewards/judge_point/mean"]) <= 10
    assert 0 < float(log["rewards/judge_vs_reference/mean"]) < 1
    assert "judge_point/abs_mean" in log and float(log["judge_point/missing"]) == 0
    assert backend.saw_images and all(n == 1 for n in backend.saw_images)  # the judge saw each row's image
    assert math.isfinite(float(log["loss"]))
    moved = [n for n, p in trainer.model.named_parameters() if not (p.detach() == before[n]).all()]
    assert moved  # rewards differed within groups, so the policy moved


def test_trl_reward_groups_per_prompt_and_image_whatever_the_order():
    judge = RewardModel(LengthJudge())
    fn = trl_reward(judge, task="image-und/pair", mode="win-rate")
    im = [grey(1), grey(2)]
    rows = [("q", 0, "aa"), ("q", 1, "a"), ("q", 0, "aaaa"), ("q", 1, "aaaaa")]
    out = fn(prompts=[r[0] for r in rows], completions=[r[2] for r in rows],
             image=[im[r[1]].copy() for r in rows])  # distinct objects, as a dataset decodes them
    assert out[0] + out[2] == pytest.approx(1.0) and out[1] + out[3] == pytest.approx(1.0)  # two groups of 2
    assert out[2] > out[0] and out[3] > out[1]


def test_trl_reward_ties_a_copy_of_the_reference_without_asking_the_judge():
    backend = LengthJudge()
    fn = trl_reward(RewardModel(backend), task="image-und/pair", reference_column="answer")
    out = fn(prompts=["q"] * 3, completions=["A grey square.", " A grey square. ", "Grey."], image=[grey(1)] * 3,
             answer=["A grey square."] * 3)
    assert out[:2] == [0.5, 0.5] and out[2] < 0.5  # the shorter answer loses to the reference
    assert len(backend.saw_images) == 2  # only the third row was judged, once per order
    assert fn(prompts=["q"], completions=["Grey."], image=[grey(1)], answer=["Grey."]) == [0.5]
    assert len(backend.saw_images) == 2


def test_trl_win_rate_groups_spanning_processes_are_judged_whole():
    """TRL can split a prompt's generations over devices; each process must still get the prompt's win rates."""
    judge = RewardModel(LengthJudge())
    im = grey(1)
    rows = [("q", "a"), ("q", "aaaa"), ("q", "aa"), ("q", "aaa"), ("r", "b"), ("r", "bb")]
    whole = trl_reward(judge, task="image-und/pair", mode="win-rate")(
        prompts=[p for p, _ in rows], completions=[c for _, c in rows], image=[im] * 6)
    shares = [rows[:2], rows[2:]]  # process 0 holds two of q's four answers; process 1 the rest and all of r
    got = []
    for rank, share in enumerate(shares):
        everything = [(p, c, im) for p, c in rows]
        fn = trl_reward(judge, task="image-und/pair", mode="win-rate",
                        gather=lambda local, rank=rank: (everything, 0 if rank == 0 else 2))
        got += fn(prompts=[p for p, _ in share], completions=[c for _, c in share], image=[im] * len(share))
    assert got == pytest.approx(whole)
    assert sum(whole[:4]) == pytest.approx(2.0)  # q's four answers: 6 pairs, a win rate mean of 0.5


# -- flow_grpo style -----------------------------------------------------------------------------------------------
def _flow_batch():
    import torch

    values = [[200, 30, 120, 90], [10, 250, 60, 140]]
    prompts, tensors = [], []
    for k, vs in enumerate(values):
        for v in vs:
            prompts.append(f"prompt {k}")
            tensors.append(torch.full((3, 8, 8), v / 255.0))
    order = [5, 0, 7, 2, 1, 4, 6, 3]  # interleaved prompts: groups must still be per prompt
    return torch.stack([tensors[i] for i in order]), [prompts[i] for i in order], [values[i // 4][i % 4]
                                                                                 for i in order]


@pytest.mark.parametrize("where", ["in-process", "http", "openai-endpoint"])
def test_flow_grpo_reward_from_a_thread_pool(judge_server, where):
    srv, _ = judge_server
    target = {"in-process": RewardModel(LengthJudge()), "http": srv.url, "openai-endpoint": srv.url + "/v1"}[where]
    kw = {"kind": "openai", "served_model": "unireward"} if where == "openai-endpoint" else {}
    judge = connect(target, api_key=KEY, **kw) if where != "in-process" else connect(target)
    fn = flow_grpo_reward(judge, task="image-gen/pair", mode="win-rate")
    images, prompts, values = _flow_batch()
    with ThreadPoolExecutor(4) as pool:  # as flow_grpo overlaps scoring with sampling
        outs = list(pool.map(lambda _: fn(images, prompts, [{}] * 8), range(6)))
    for scores, info in outs:
        assert scores.dtype == np.float32 and info["missing"] == 0 and info["group_sizes"] == [4, 4]
        for k in ("prompt 0", "prompt 1"):
            idx = [i for i, p in enumerate(prompts) if p == k]
            assert np.argsort(scores[idx]).tolist() == np.argsort([values[i] for i in idx]).tolist()
            assert scores[idx].mean() == pytest.approx(0.5, abs=1e-5)  # a win rate's group mean
        assert info["abs_mean"] == pytest.approx(0.5, abs=1e-5)
    np.testing.assert_allclose(outs[0][0], outs[-1][0])


def test_flow_grpo_reward_can_gather_a_group_split_over_processes():
    judge = RewardModel(LengthJudge())
    images, prompts, values = _flow_batch()
    whole, _ = flow_grpo_reward(judge)(images, prompts, None)
    from unireward.rewards.adapters import to_pil as pil

    everything = list(zip(prompts, pil(images)))
    parts = []
    for start, stop in ((0, 3), (3, 8)):
        fn = flow_grpo_reward(judge, gather=lambda rows, start=start: (everything, start))
        parts.append(fn(images[start:stop], prompts[start:stop], None)[0])
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-6)


def test_one_background_loop_serves_sync_and_async_callers(judge_server):
    srv, _ = judge_server
    judge = connect(srv.url, api_key=KEY)
    fn = trl_reward(judge, task="image-und/point", asynchronous=True, image_column="scene")
    kwargs = {"scene": [grey(3)] * 2}
    loop_before = BackgroundLoop.get().loop
    for _ in range(3):  # fresh caller loops each time, like short-lived asyncio.run in user code
        out = asyncio.run(fn(prompts=["What is it?"] * 2, completions=["Grey.", "A grey square."], **kwargs))
        assert out == [5.0, 10.0]
    sync = flow_grpo_reward(judge)
    threads = [threading.Thread(target=sync, args=([grey(1), grey(9)], ["p", "p"])) for _ in range(3)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert BackgroundLoop.get().loop is loop_before and not loop_before.is_closed()


def test_to_pil_accepts_the_shapes_pipelines_return():
    import torch

    t = torch.rand(2, 3, 4, 5)
    a = (np.random.default_rng(0).random((2, 4, 5, 3)) * 255).astype(np.uint8)
    assert [im.size for im in to_pil(t)] == [(5, 4)] * 2
    assert np.asarray(to_pil(a)[1]).tolist() == a[1].tolist()
    assert to_pil([grey(1)])[0].size == (8, 8)


def test_adapters_over_one_model_share_one_worker():
    rm = RewardModel(LengthJudge())
    assert connect(rm) is connect(rm) and connect(connect(rm)) is connect(rm)


# -- careless inputs (issue 24, defects 9 and 10) ------------------------------------------------------------------
def test_flow_grpo_reward_refuses_what_is_not_an_image_batch_and_skips_nan_rows():
    import torch

    backend = LengthJudge()
    fn = flow_grpo_reward(RewardModel(backend), task="image-gen/pair", mode="win-rate")
    prompts = ["p"] * 4
    batch = torch.stack([torch.full((3, 8, 8), v) for v in (0.1, 0.9, 0.5, 0.3)])
    batch[2, 0, 3, 3] = float("nan")
    batch[3, 1, 0, 0] = float("inf")
    scores, info = fn(batch, prompts)
    assert np.isnan(scores[2]) and np.isnan(scores[3]) and info["missing"] == 2
    assert scores[1] > scores[0] and info["group_sizes"] == [2]  # the two finite rows are one group
    assert any("row 2" in e and "NaN" in e for e in info["errors"])
    for images, words in [(torch.full((4, 3, 8, 8), 200.0), "divide 0-255 data by 255"),
                          (torch.full((4, 3, 8, 8), -1.0), "(x + 1) / 2"),
                          (torch.rand(3, 8, 8), "add a batch dimension"),
                          (torch.rand(4, 8, 8), "add a batch dimension"),
                          (torch.rand(4, 2, 8, 8), "2 channels"),
                          (np.zeros((4, 3, 8, 8), np.uint8), "channel-first"),
                          (np.zeros((4, 8, 8, 3), np.int64), "dtype int64")]:
        with pytest.raises(ValueError, match=re.escape(words)):
            fn(images, prompts[: len(images)])
    grey_batch = torch.stack([torch.full((1, 8, 8), v) for v in (0.1, 0.9)])  # (N, 1, H, W): grey, accepted
    scores, info = fn(grey_batch, ["p", "p"])
    assert info["missing"] == 0 and scores[1] > scores[0]
    assert to_pil(grey_batch)[0].mode == "RGB"
    with pytest.raises(ValueError, match="row 0: the image holds NaN"):
        to_pil(torch.full((1, 3, 4, 4), float("nan")))


def test_trl_reward_skips_missing_completions_and_names_missing_columns():
    backend = LengthJudge()
    point = trl_reward(RewardModel(backend), task="image-und/point")
    out = point(prompts=["q"] * 3, completions=["Grey.", None, [{"role": "assistant", "content": "Grey!!"}]],
                image=[grey(1)] * 3)
    assert out[1] is None and out[0] == 5.0 and out[2] == 6.0  # None is not judged as the text "None"
    assert len(backend.saw_images) == 2
    one_message = point(prompts=["q"], completions=[{"role": "assistant", "content": "A grey one."}],
                        image=[grey(1)])
    assert one_message == [10.0]  # a single message dict: its content, not its printed form
    with pytest.raises(TypeError, match="got int"):
        point(prompts=["q"], completions=[7], image=[grey(1)])
    with pytest.raises(ValueError, match="no images or image column.*columns: prompts, completions, scene"):
        point(prompts=["q"], completions=["Grey."], scene=[grey(1)])
    vs_ref = trl_reward(RewardModel(backend), task="image-und/pair", reference_column="answer")
    with pytest.raises(ValueError, match="reference_column 'answer' is not among the columns"):
        vs_ref(prompts=["q"], completions=["Grey."], image=[grey(1)], solution=["Grey."])
    assert vs_ref(prompts=["q", "q"], completions=[None, "Grey."], image=[grey(1)] * 2,
                  answer=["Grey.", None]) == [None, None]
