"""Reward functions in the shapes RL trainers call, over any judge client (`client.connect`).

TRL `GRPOTrainer` (VLM or text policies):

    judge = connect("http://gpu1:8000")                             # or a RewardModel, or an OpenAI endpoint
    score = trl_reward(judge, task="image-und/point")               # pointwise: the judge's expected score
    vs_ref = trl_reward(judge, task="image-und/pair", reference_column="answer")  # P(completion > reference)
    GRPOTrainer(model=..., reward_funcs=[score, vs_ref], ...)
    trl_reward(judge, asynchronous=True)                            # an `async def`, run on TRL's own loop

TRL passes `prompts`, `completions` and the dataset's columns (the image in `image` / `images`); rows a judge
could not score get None (TRL: no reward for that row). Each call logs the absolute mean reward through TRL's
`log_metric`, so progress stays visible when GRPO normalises within groups.

flow_grpo style (diffusion policies; safe to call from a thread pool, as flow_grpo overlaps scoring and sampling):

    fn = flow_grpo_reward(judge, task="image-gen/pair", mode="win-rate")
    scores, info = fn(images, prompts, metadata)   # images: PIL list, (N,H,W,C) uint8 or (N,C,H,W) float tensor

Groups are formed per prompt inside each call, whatever the order of the batch; `scores` is a float32 array with
NaN where no reward could be given (counted in `info["missing"]`), never a silent default.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from .client import connect
from .group import GroupRequest, group_rows, media_key


def trl_reward(judge, *, task: str = "image-und/point", mode: str | None = None, reference_column: str | None = None,
               image_column: str | None = None, both_orders: bool = True, asynchronous: bool = False,
               name: str | None = None, gather=None):
    """A TRL reward function. Without `reference_column`: `mode` "point" (default) scores each completion, or
    "win-rate" / "bradley-terry" among each prompt's completions (gathered across processes: TRL may split a
    prompt's generations over devices, and a win rate over a device's share is not the prompt's). With it: each
    completion against that row's reference answer, reward P(completion > reference) over both orders; a
    completion identical to its reference (stripped) ties it, 0.5, without a judge call (a judge may fail to
    decide between two copies of one answer; the sandbox judge's checklist then degenerates and does not parse).
    `gather(rows) -> (all rows, offset of this process's rows)`; default: torch.distributed when initialised."""
    judge = connect(judge)
    gather = gather or gather_rows
    mode = mode or ("win-rate" if reference_column else "point")
    if reference_column and mode != "win-rate":
        raise ValueError("against a reference answer the reward is a win rate; use mode='win-rate'")

    def build(prompts, completions, kwargs):
        texts = [trl_text(p) for p in prompts]
        answers = [trl_text(c) for c in completions]
        media = _images(prompts, kwargs, image_column)
        n = len(texts)
        out: list[float | None] = [None] * n
        if reference_column:  # one pair per row: (completion, reference)
            refs = [str(r) for r in kwargs[reference_column]]
            judged = [i for i in range(n) if answers[i].strip() != refs[i].strip()]
            for i in range(n):
                if i not in judged:
                    out[i] = 0.5  # a copy of the reference ties it
            reqs = [GroupRequest(texts[i], [answers[i], refs[i]], media[i]) for i in judged]
            return reqs, [[i] for i in judged], True, 0, out
        if mode == "point":  # no group needed; rows batched by prompt
            groups = group_rows([(t, media_key(m)) for t, m in zip(texts, media)])
            return [GroupRequest(texts[idx[0]], [answers[i] for i in idx], media[idx[0]]) for idx in groups], \
                groups, False, 0, out
        # pairwise among a prompt's completions: a prompt's group may span processes; gather every row, judge the
        # groups that hold a local row, keep the local rewards
        rows, start = gather(list(zip(texts, answers, media)))
        keys = [(t, media_key(m)) for t, _, m in rows]
        groups = [idx for idx in group_rows(keys) if any(start <= i < start + n for i in idx)]
        reqs = [GroupRequest(rows[idx[0]][0], [rows[i][1] for i in idx], rows[idx[0]][2]) for idx in groups]
        return reqs, groups, False, start, out

    def unpack(results, groups, pick, start, out, kwargs) -> list[float | None]:
        n = len(out)
        for idx, g in zip(groups, results):
            if pick:  # against a reference: the completion is candidate 0
                out[idx[0]] = g.rewards[0]
                continue
            for i, r in zip(idx, g.rewards):
                if start <= i < start + n:
                    out[i - start] = r
        log = kwargs.get("log_metric")
        got = [r for r in out if r is not None]
        if log is not None:
            if got:
                log(f"{fn_name}/abs_mean", sum(got) / len(got))
            log(f"{fn_name}/missing", float(len(out) - len(got)))
        return out

    fn_name = name or ("judge_vs_reference" if reference_column else f"judge_{mode}").replace("-", "_")

    if asynchronous:
        async def reward(prompts, completions, completion_ids=None, **kwargs):
            reqs, groups, pick, start, out = build(prompts, completions, kwargs)
            res = await judge.agroup_reward_batch(reqs, task=task, mode=mode, both_orders=both_orders) if reqs else []
            return unpack(res, groups, pick, start, out, kwargs)
    else:
        def reward(prompts, completions, completion_ids=None, **kwargs):
            reqs, groups, pick, start, out = build(prompts, completions, kwargs)
            res = judge.group_reward_batch(reqs, task=task, mode=mode, both_orders=both_orders) if reqs else []
            return unpack(res, groups, pick, start, out, kwargs)
    reward.__name__ = fn_name
    return reward


def gather_rows(rows: list) -> tuple[list, int]:
    """Every process's rows in rank order, and where this process's start (torch.distributed, when running)."""
    try:
        import torch.distributed as dist
    except ImportError:
        return rows, 0
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return rows, 0
    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, rows)
    start = sum(len(p) for p in parts[: dist.get_rank()])
    return [r for p in parts for r in p], start


def flow_grpo_reward(judge, *, task: str = "image-gen/pair", mode: str = "win-rate", both_orders: bool = True,
                     gather=None):
    """`fn(images, prompts, metadata) -> (scores, info)` for flow_grpo-style trainers; thread-safe.
    `gather` (opt-in, e.g. `gather_rows` when the trainer spreads a prompt's samples over processes and calls the
    reward synchronously in the same order on every rank): `gather(rows) -> (all rows, offset of these)`."""
    import numpy as np

    judge = connect(judge)

    def fn(images, prompts, metadata=None, **_):
        pil = to_pil(images)
        prompts = list(prompts)
        if len(pil) != len(prompts):
            raise ValueError(f"{len(pil)} images for {len(prompts)} prompts")
        n = len(pil)
        rows, start = gather(list(zip(prompts, pil))) if gather is not None else (list(zip(prompts, pil)), 0)
        groups = [idx for idx in group_rows([p for p, _ in rows]) if any(start <= i < start + n for i in idx)]
        reqs = [GroupRequest(rows[idx[0]][0], [rows[i][1] for i in idx]) for idx in groups]
        results = judge.group_reward_batch(reqs, task=task, mode=mode, both_orders=both_orders)
        scores = np.full(n, np.nan, dtype=np.float32)
        for idx, g in zip(groups, results):
            for i, r in zip(idx, g.rewards):
                if r is not None and start <= i < start + n:
                    scores[i - start] = r
        got = scores[~np.isnan(scores)]
        info = {"mode": mode, "task": results[0].task if results else task, "groups": len(groups),
                "group_sizes": [len(g) for g in groups], "missing": int(np.isnan(scores).sum()),
                "abs_mean": float(got.mean()) if got.size else math.nan,
                "unparsed_pairs": sum(g.unparsed for g in results),
                "errors": [g.reason for g in results if g.status == "error"]}
        return scores, info

    return fn


def to_pil(images) -> list:
    """PIL images from a list of PIL images / arrays, an (N,H,W,C) uint8 array, or an (N,C,H,W) float tensor
    in [0, 1] (what diffusion pipelines return)."""
    import numpy as np
    from PIL import Image

    if hasattr(images, "detach"):  # a torch tensor (N, C, H, W) in [0, 1]
        arr = images.detach().float().clamp(0, 1).mul(255).round().to("cpu").numpy().astype(np.uint8)
        images = arr.transpose(0, 2, 3, 1)
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8:
            images = (np.clip(images, 0, 1) * 255).round().astype(np.uint8)
        return [Image.fromarray(a) for a in images]
    return [im if isinstance(im, Image.Image) else Image.fromarray(np.asarray(im)) for im in images]


def trl_text(x: Any) -> str:
    """The text of a TRL prompt or completion: a string, or chat messages (the last message's text parts)."""
    if isinstance(x, str):
        return x
    if isinstance(x, Sequence) and x and isinstance(x[-1], dict):
        content = x[-1].get("content", "")
        if isinstance(content, str):
            return content
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return str(x)


def _images(prompts, kwargs: dict, column: str | None) -> list[Any]:
    """The image each row is about: the named column, else TRL's `images` / `image` columns."""
    for col in ([column] if column else ["images", "image"]):
        if col in kwargs:
            vals = kwargs[col]
            return [v[0] if isinstance(v, (list, tuple)) and v else v for v in vals]
    return [None] * len(prompts)

