"""Judge throughput: generate-and-parse one request at a time (the public reference scripts' way) versus
unireward's batched decision-from-probabilities path, on the same model and the same requests.

    .venv/bin/python benchmarks/judge_throughput.py                       # tiny Qwen2-VL on CPU
    python benchmarks/judge_throughput.py --size 7b --device cuda --dtype bfloat16 --image-size 448  # GPU

(a) baseline: each request alone, greedy generation with a token budget equal to the length of the task's full
    verdict sentence (so a tiny model that never emits an end token is not made artificially slow), then parsed;
(b) unireward: `RewardModel.rank_batch` / `score_batch`, length-sorted batches, one forward pass per request.
Each path is warmed up, then the three are timed `--repeat` times in turns (so load from elsewhere on a shared
machine falls on all alike); the best run of each counts. Prints decisions per second for each,
the model's forward pass alone on prepared inputs (the floor of (b): what no judging code around the model can
beat), `point_ratio: <b/a>` for scoring and, on its last line, `ratio: <b/a>` for pairwise ranking. With
--size 7b the weights are random in a Qwen2.5-VL-7B configuration; the prefill compute bound (peak FLOP/s /
(2 x parameters x tokens per request)) is printed for comparison.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from unireward.judging.render import render


# Qwen2.5-VL-7B-Instruct's published configuration (random weights here)
QWEN25_VL_7B = {
    "text": dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                 num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=32768,
                 rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]}),
    "vision": dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                   fullatt_block_indexes=[7, 15, 23, 31], window_size=112),
}


def build_model(size: str, family: str, image_size: int, out_dir: str):
    from unireward.models.tiny import build_tiny_model

    pixels = image_size * image_size
    if size == "tiny":
        return build_tiny_model(out_dir, family=family, min_pixels=28 * 28, max_pixels=pixels)
    from transformers import AutoModelForImageTextToText, Qwen2_5_VLConfig

    from unireward.models.tiny import build_processor, build_tokenizer

    tok = build_tokenizer()
    processor = build_processor(tok, "qwen2.5-vl", min_pixels=28 * 28, max_pixels=pixels)
    ids = {k: tok.convert_tokens_to_ids(v) for k, v in (("image_token_id", "<|image_pad|>"),
           ("video_token_id", "<|video_pad|>"), ("vision_start_token_id", "<|vision_start|>"),
           ("vision_end_token_id", "<|vision_end|>"))}
    config = Qwen2_5_VLConfig(
        text_config=dict(QWEN25_VL_7B["text"], eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
                         pad_token_id=tok.pad_token_id),
        vision_config=dict(QWEN25_VL_7B["vision"]),
        tie_word_embeddings=False, **ids)
    import torch

    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.bfloat16)
    return model, processor


def requests(n: int, image_size: int, seed: int = 0):
    from PIL import Image

    from unireward.judge import PairRequest, PointRequest

    rng = np.random.default_rng(seed)
    img = lambda: Image.fromarray(rng.integers(0, 255, (image_size, image_size, 3), dtype=np.uint8))
    pairs = [PairRequest(f"a {c} shape number {i}", img(), img()) for i, c in
             zip(range(n), ["red", "green", "blue", "yellow"] * n)]
    points = [PointRequest(p.prompt, p.a) for p in pairs]
    return pairs, points


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}  # cpu: this process's CPU time (one thread: load-proof)


def timed_together(fns, repeat: int = 3, clock: str = "wall"):
    """Each function warmed up, then timed `repeat` times in turns (a, b, c, a, b, c, ...), so that load from
    elsewhere on a shared machine falls on all of them alike; returns (last output, best time) per function.
    clock="cpu" times this process's CPU seconds instead of wall seconds: at one torch thread on a loaded machine
    it measures the work, not the wait for a core."""
    now = CLOCKS[clock]
    outs = [fn() for fn in fns]
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            start = now()
            outs[k] = fn()
            best[k] = min(best[k], now() - start)
    return list(zip(outs, best))


def chat_input(rm, task, r):
    """The model input of one request, as `RewardModel` renders it (media loaded, template filled)."""
    prepared = rm.prepare(task, r.prompt, [r.a, r.b] if task.is_pair else [r.candidate], None)
    return render(task, prepared, swap=False)


def baseline(rm, task_name: str, reqs) -> int:
    """Reference-style: one request at a time, generate the verdict within a budget, parse it. Returns parsed count."""
    from unireward.tasks import get_task

    task = get_task(task_name)
    longest = max((task.answer.prefix + v for v in task.answer.choices().values()), key=len)
    budget = len(rm.backend._answer_ids(longest))
    parsed = 0
    for r in reqs:
        text = rm.backend.generate([chat_input(rm, task, r)], max_new_tokens=budget)[0]
        parsed += task.parse(text).parsed
    return parsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="tiny", choices=["tiny", "7b"])
    ap.add_argument("--family", default="qwen2-vl")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default=None)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per path; the best is reported")
    ap.add_argument("--clock", default="wall", choices=sorted(CLOCKS), help="cpu: process CPU time (loaded machine)")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="device bf16 dense peak, for the bound")
    args = ap.parse_args()

    import torch

    from unireward.backends.hf import HFBackend
    from unireward.judge import RewardModel
    from unireward.tasks import get_task

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        built = build_model(args.size, args.family, args.image_size, tmp)
        if args.size == "tiny":
            backend = HFBackend.load(str(built), device=args.device, dtype=args.dtype, batch_size=args.batch_size)
        else:
            model, processor = built
            backend = HFBackend(model, processor, batch_size=args.batch_size, model_id="random Qwen2.5-VL-7B config")
        rm = RewardModel(backend)
        pairs, points = requests(args.n, args.image_size)
        params = sum(p.numel() for p in backend.model.parameters())
        print(f"model: {args.size} {args.family if args.size == 'tiny' else 'qwen2.5-vl'} "
              f"({params / 1e6:.2f}M parameters), device {backend.device}, {args.n} requests, "
              f"batch size {args.batch_size}, images {args.image_size}px, torch threads {torch.get_num_threads()}, "
              f"{args.clock} clock")
        sync = torch.cuda.synchronize if backend.device.type == "cuda" else (lambda: None)

        def run_base(task, reqs):
            def f():
                out = baseline(rm, task, reqs)
                sync()
                return out
            return f

        def run_fast(kind, reqs):
            def f():
                out = rm.rank_batch(reqs, task="image-gen/pair") if kind == "pair" else rm.score_batch(
                    reqs, task="image-gen/point")
                sync()
                return out
            return f

        def run_forward(reqs, task):
            """The model's forward pass alone on inputs prepared beforehand (the floor of path (b): it also skips
            the forced answer prefix and keeps one logit per row, so it is, if anything, optimistic)."""
            xs = [chat_input(rm, get_task(task), r) for r in reqs]
            encs = [{k: v.to(backend.device) for k, v in backend.encode(xs[i:i + args.batch_size],
                                                                        padding_side="right").items()}
                    for i in range(0, len(xs), args.batch_size)]

            def f():
                with torch.inference_mode():
                    for enc in encs:
                        backend.model(**enc, logits_to_keep=1)
                sync()
            return f

        n_base = max(8, args.n // 4) if args.size != "tiny" else args.n
        ratios = {}
        for kind, reqs, task in (("point", points, "image-gen/point"), ("pair", pairs, "image-gen/pair")):
            (_, t_a), (out, t_b), (_, t_f) = timed_together(
                [run_base(task, reqs[:n_base]), run_fast(kind, reqs), run_forward(reqs, task)], repeat=args.repeat,
                clock=args.clock)
            a, b = n_base / t_a, len(reqs) / t_b
            ratios[kind] = b / a
            print(f"{kind}: baseline generate+parse, one at a time: {a:9.2f} decisions/s")
            print(f"{kind}: unireward batched probabilities:       {b:9.2f} decisions/s "
                  f"({sum(r.status == 'ok' for r in out)}/{len(out)} ok)")
            print(f"{kind}: model forward alone, inputs prepared:  {len(reqs) / t_f:9.2f} decisions/s "
                  f"(the floor of (b): ratio {len(reqs) / t_f / a:.2f} if preparing inputs cost nothing)")
            print(f"{kind}: batched decisions at {100 * t_f / t_b:.0f}% of the forward-alone floor")
            if args.size != "tiny":
                enc = backend.encode([chat_input(rm, get_task(task), reqs[0])])
                tokens = enc["input_ids"].shape[1]
                bound = args.peak_tflops * 1e12 / (2 * params * tokens)
                print(f"{kind}: {tokens} tokens per request; prefill compute bound {bound:.1f} decisions/s "
                      f"-> {100 * b / bound:.1f}% of bound")
        print(f"point_ratio: {ratios['point']:.2f}")
        print(f"ratio: {ratios['pair']:.2f}")


if __name__ == "__main__":
    main()
