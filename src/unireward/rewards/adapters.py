"""Reward functions in the shapes RL trainers call, over any judge client (`client.connect`).

TRL `GRPOTrainer` (VLM or text policies):

    judge = connect("http://gpu1:8000")                             # or a RewardModel, or an OpenAI endpoint
    score = trl_reward(judge, task="image-und/point")               # pointwise: the judge's expected score
    vs_ref = trl_reward(judge, task="image-und/pair", reference_column="answer")  # P(completion > reference)
    GRPOTrainer(model=..., reward_funcs=[score, vs_ref], ...)
    trl_reward(judge, asynchronous=True)                            # an `async def`, run on TRL's own loop

TRL passes `prompts`, `completions` and the dataset's columns (the image in `image` / `images`); rows a judge
could not score get None (TRL: no reward for that row), and so do rows without a completion (None), never judged.
Each call logs the absolute mean reward through TRL's `log_metric`, so progress stays visible when GRPO normalises
within groups. A column the reward needs (the reference, the image an understanding task is about) that TRL did
not pass is an error naming it.

flow_grpo style (diffusion policies; safe to call from a thread pool, as flow_grpo overlaps scoring and sampling):

    fn = flow_grpo_reward(judge, task="image-gen/pair", mode="win-rate")
    scores, info = fn(images, prompts, metadata)   # images: PIL list, (N,H,W,C) uint8 or (N,C,H,W) float tensor

Groups are formed per prompt inside each call, whatever the order of the batch; `scores` is a float32 array with
NaN where no reward could be given (counted in `info["missing"]`, the reason in `info["errors"]`: e.g. a sample
holding NaN), never a silent default. A batch that is not images (its shape, dtype or value range) is an error
naming what it got.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from .client import connect
from .group import GroupRequest, group_rows, media_key, resolve_task

_RANGE_SLACK = 1 / 255  # float images may overshoot [0, 1] by rounding this much; they are clipped


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

    needs_media = resolve_task(task, mode).domain != "gen"  # the answers are judged against the row's image

    def build(prompts, completions, kwargs):
        texts = [trl_text(p) for p in prompts]
        answers = [None if c is None else trl_text(c) for c in completions]  # no completion: no reward, not judged
        media = _images(prompts, kwargs, image_column)
        if needs_media and media is None:
            raise ValueError(f"task {task} judges each completion against its row's image, but TRL passed no "
                             f"{image_column or 'images or image'} column (columns: {_columns(kwargs)}); name it "
                             "with image_column=")
        media = media or [None] * len(texts)
        n = len(texts)
        out: list[float | None] = [None] * n
        if reference_column:  # one pair per row: (completion, reference)
            if reference_column not in kwargs:
                raise ValueError(f"reference_column {reference_column!r} is not among the columns TRL passed "
                                 f"({_columns(kwargs)}); name the dataset column holding the reference answers")
            refs = [None if r is None else trl_text(r) for r in kwargs[reference_column]]
            rows = [i for i in range(n) if answers[i] is not None and refs[i] is not None]
            judged = [i for i in rows if answers[i].strip() != refs[i].strip()]
            for i in set(rows) - set(judged):
                out[i] = 0.5  # a copy of the reference ties it
            reqs = [GroupRequest(texts[i], [answers[i], refs[i]], media[i]) for i in judged]
            return reqs, [[i] for i in judged], True, 0, out
        if mode == "point":  # no group needed; rows batched by prompt
            groups = [[i for i in idx if answers[i] is not None]
                      for idx in group_rows([(t, media_key(m)) for t, m in zip(texts, media)])]
            groups = [idx for idx in groups if idx]
            return [GroupRequest(texts[idx[0]], [answers[i] for i in idx], media[idx[0]]) for idx in groups], \
                groups, False, 0, out
        # pairwise among a prompt's completions: a prompt's group may span processes; gather every row, judge the
        # groups that hold a local row, keep the local rewards
        rows, start = gather(list(zip(texts, answers, media)))
        keys = [(t, media_key(m)) for t, _, m in rows]
        groups = [[i for i in idx if rows[i][1] is not None] for idx in group_rows(keys)
                  if any(start <= i < start + n for i in idx)]
        groups = [idx for idx in groups if idx]
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
        pil = image_rows(images)  # a row that is no image (NaN, inf) holds the reason instead, and is not judged
        prompts = list(prompts)
        if len(pil) != len(prompts):
            raise ValueError(f"{len(pil)} images for {len(prompts)} prompts")
        n = len(pil)
        bad = [r for r in pil if isinstance(r, str)]
        local = [(p, None if isinstance(r, str) else r) for p, r in zip(prompts, pil)]
        rows, start = gather(local) if gather is not None else (local, 0)
        groups = [[i for i in idx if rows[i][1] is not None] for idx in group_rows([p for p, _ in rows])
                  if any(start <= i < start + n for i in idx)]
        groups = [idx for idx in groups if idx]
        reqs = [GroupRequest(rows[idx[0]][0], [rows[i][1] for i in idx]) for idx in groups]
        results = judge.group_reward_batch(reqs, task=task, mode=mode, both_orders=both_orders) if reqs else []
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
                "errors": bad + [g.reason for g in results if g.status == "error"]}
        return scores, info

    return fn


def to_pil(images) -> list:
    """RGB PIL images from a list of PIL images / arrays / tensors, an (N,H,W,C) array, or an (N,C,H,W) tensor
    (what diffusion pipelines return); C is 1, 3 or 4; values uint8, or floats in [0, 1]. Anything else, or a
    row holding NaN or inf, is a ValueError naming the shape, dtype, range or row."""
    rows = image_rows(images)
    bad = next((r for r in rows if isinstance(r, str)), None)
    if bad is not None:
        raise ValueError(bad)
    return rows


def image_rows(images) -> list:
    """`to_pil`, except that a row holding NaN or inf (e.g. a diverged sample) gives the reason, a string, in its
    place: one bad sample costs its own reward, not the batch's."""
    import numpy as np
    from PIL import Image

    if hasattr(images, "detach") or isinstance(images, np.ndarray):
        return _batch_rows(images, "images", 0)
    out: list = []
    for i, im in enumerate(images):
        if isinstance(im, Image.Image):
            out.append(im.convert("RGB"))
            continue
        one = im.detach() if hasattr(im, "detach") else np.asarray(im)
        if one.ndim == 2:  # (H, W) grey
            one = one[None, None] if hasattr(one, "detach") else one[None, :, :, None]
        elif one.ndim == 3:
            one = one[None]
        out += _batch_rows(one, f"images[{i}]", i)
    return out


def _batch_rows(batch, what: str, first: int) -> list:
    """Rows of one (N, C, H, W) tensor or (N, H, W, C) array as RGB images (or the reason a row is not one)."""
    import numpy as np

    from ..media import ImagePolicy, load_image

    tensor = hasattr(batch, "detach")
    a = batch.detach().float().cpu().numpy() if tensor and batch.is_floating_point() else (
        batch.detach().cpu().numpy() if tensor else np.asarray(batch))
    layout = "(N, C, H, W) tensor" if tensor else "(N, H, W, C) array"
    if a.ndim != 4:
        hint = "; a single image? add a batch dimension (x[None])" if a.ndim == 3 else ""
        raise ValueError(f"{what}: got shape {tuple(a.shape)}; expected an {layout} of images, C = 1, 3 or 4{hint}")
    if tensor:
        a = a.transpose(0, 2, 3, 1)
    if a.shape[3] not in (1, 3, 4):
        hint = ("; it looks channel-first: pass arrays as (N, H, W, C), or a torch tensor as (N, C, H, W)"
                if not tensor and a.shape[1] in (1, 3, 4) else "")
        raise ValueError(f"{what}: got shape {tuple(batch.shape)}: {a.shape[3]} channels; expected an {layout} "
                         f"of images, C = 1, 3 or 4{hint}")
    if a.dtype == np.uint8:
        finite = np.ones(len(a), dtype=bool)
    elif np.issubdtype(a.dtype, np.floating):
        finite = np.isfinite(a).reshape(len(a), -1).all(axis=1)
        seen = a[finite]
        if seen.size and (seen.min() < -_RANGE_SLACK or seen.max() > 1 + _RANGE_SLACK):
            raise ValueError(f"{what}: float images must hold values in [0, 1], got values in [{seen.min():g}, "
                             f"{seen.max():g}]; divide 0-255 data by 255, map [-1, 1] data with (x + 1) / 2")
        a = np.clip(np.nan_to_num(a), 0.0, 1.0)
    else:
        raise ValueError(f"{what}: got dtype {a.dtype}; expected uint8 (0-255) or floats in [0, 1]")
    rows: list = []
    for k, (row, ok) in enumerate(zip(a, finite)):
        if not ok:
            rows.append(f"{what} row {first + k}: the image holds NaN or infinite values; no reward")
            continue
        h, w = row.shape[:2]
        rows.append(load_image(row[..., 0] if row.shape[2] == 1 else row, ImagePolicy(max_pixels=h * w)))
    return rows


def trl_text(x: Any) -> str:
    """The text of a TRL prompt or completion: a string, or chat messages (the last message's text parts)."""
    if isinstance(x, str):
        return x
    if isinstance(x, dict):  # one chat message
        x = [x]
    if isinstance(x, Sequence) and x and isinstance(x[-1], dict):
        content = x[-1].get("content", "")
        if isinstance(content, str):
            return content
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    raise TypeError(f"a prompt or completion must be text or chat messages, got {type(x).__name__}: {x!r:.80}")


def _images(prompts, kwargs: dict, column: str | None) -> list[Any] | None:
    """The image each row is about: the named column, else TRL's `images` / `image` columns; None without one."""
    for col in ([column] if column else ["images", "image"]):
        if col in kwargs:
            vals = kwargs[col]
            return [v[0] if isinstance(v, (list, tuple)) and v else v for v in vals]
    return None


def _columns(kwargs: dict) -> str:
    return ", ".join(["prompts", "completions", *sorted(k for k in kwargs if k != "log_metric")])

