"""Group judging at realistic shapes on CPU: a group of G candidates ranked in both orders (G(G-1) pair
prompts, every image in 2(G-1) of them): the plain per-pair batched path, the shared-media path (each image
processed and encoded once) and the shared-media path that also runs each prompt prefix (text and first image)
once for the rows that share it.

    PYTHONPATH=src python benchmarks/group_throughput.py                  # G = 8, 448 px, scaled Qwen2.5-VL
    PYTHONPATH=src python benchmarks/group_throughput.py --reasoning 256  # also: batched vs one-at-a-time decoding

The model is a Qwen2.5-VL with random weights at the real patch (14) and merge (2) sizes and 448 px images
(1024 patches, 256 language tokens per image), its vision tower and language model narrowed and shortened by
similar factors from the 7B configuration (vision 1280 wide x 32 layers -> `--vision-hidden` x `--vision-layers`,
language 3584 x 28 -> `--hidden` x `--layers`, window attention with full attention in the last vision layer),
so the share of the vision tower in the work stays near the 7B's. The paths are warmed up, then timed in turns
`--repeat` times (best counts). Prints each path's time per group and per decision, the vision tower's share and
the largest difference from the plain path's results and, on its last line, `group_speedup: <plain / shared
media + prefix>`. With `--reasoning N` it also times
greedy generation of N tokens per prompt for the group's prompts, batched against one request at a time, and
prints `reasoning_batch_ratio: <one-at-a-time / batched>` before the last line.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from unireward.judging.render import render


def build(args):
    """A scaled random Qwen2.5-VL (see the module docstring) and its processor."""
    import torch
    from transformers import AutoModelForImageTextToText

    from unireward.models.tiny import TinySize, build_config, build_processor, build_tokenizer

    tok = build_tokenizer()
    pixels = args.image_size * args.image_size
    processor = build_processor(tok, "qwen2.5-vl", min_pixels=pixels, max_pixels=pixels)
    size = TinySize(hidden=args.hidden, layers=args.layers, heads=args.hidden // 128, kv_heads=1,
                    intermediate=args.hidden * 37 // 7, vision_hidden=args.vision_hidden,
                    vision_layers=args.vision_layers, vision_heads=max(1, args.vision_hidden // 80))
    config = build_config(tok, "qwen2.5-vl", size)
    v = config.vision_config
    v.window_size, v.intermediate_size = 112, args.vision_hidden * 171 // 64  # the 7B's window and MLP ratio
    config.text_config.rope_parameters["mrope_section"] = [16, 24, 24]  # the 7B's (head dim 128)
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(config).eval()
    return model, processor


def group_images(g: int, size: int, seed: int = 0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)) for _ in range(g)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--image-size", type=int, default=448)
    ap.add_argument("--hidden", type=int, default=256, help="language model width (7B: 3584)")
    ap.add_argument("--layers", type=int, default=2, help="language model layers (7B: 28)")
    ap.add_argument("--vision-hidden", type=int, default=80, help="vision tower width (7B: 1280)")
    ap.add_argument("--vision-layers", type=int, default=2, help="vision tower layers (7B: 32)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--reasoning", type=int, default=0, help="also time N-token generation, batched vs one by one")
    ap.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                    help="cpu: this process's CPU seconds (at one torch thread: the work, not the wait on a loaded "
                         "machine)")
    args = ap.parse_args()

    import torch
    from judge_throughput import CLOCKS

    from unireward.backends.hf import HFBackend
    from unireward.judge import RewardModel

    model, processor = build(args)
    backend = HFBackend(model, processor, batch_size=args.batch_size, model_id="scaled random Qwen2.5-VL")
    rm = RewardModel(backend)
    images = group_images(args.group, args.image_size)
    prompts = args.group * (args.group - 1)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    vision = sum(p.numel() for p in model.model.visual.parameters()) / 1e6
    print(f"{args.clock} clock; model: scaled Qwen2.5-VL, {params:.1f}M parameters ({vision:.2f}M vision), "
          f"language {args.hidden} x {args.layers}, vision {args.vision_hidden} x {args.vision_layers}; "
          f"group {args.group}, both orders: {prompts} pair prompts; images {args.image_size} px; "
          f"batch size {args.batch_size}; torch threads {torch.get_num_threads()}")

    now = CLOCKS[args.clock]
    vision_time = [0.0]

    def clock_vision(module, inputs, output):
        vision_time[0] += now() - module._started

    def start_vision(module, inputs):
        module._started = now()

    model.model.visual.register_forward_pre_hook(start_vision)
    model.model.visual.register_forward_hook(clock_vision)

    paths = {"plain per-pair batched": (False, False), "shared media": (True, False),
             "shared media + prefix": (True, True)}

    def ranked(name: str):
        backend.share_media, backend.share_prefix = paths[name]
        vision_time[0] = 0.0
        start = now()
        out = rm.rank_group("a red cube on a blue sphere", images, both_orders=True)
        return out, now() - start, vision_time[0]

    for name in paths:  # warm-up
        ranked(name)
    best: dict[str, tuple] = {}
    for _ in range(args.repeat):  # in turns, so that load from elsewhere falls on every path alike
        for name in paths:
            run = ranked(name)
            if name not in best or run[1] < best[name][1]:
                best[name] = run
    backend.share_media = backend.share_prefix = True
    plain = best["plain per-pair batched"]
    for name, (out, t, vis) in best.items():
        diff = max(abs(a["p_first"] - b["p_first"]) for a, b in zip(plain[0].comparisons, out.comparisons))
        print(f"{name:>22}: {t:7.2f} s per group ({prompts / t:6.2f} pair decisions/s), vision tower "
              f"{vis:6.2f} s ({100 * vis / t:4.1f}%), p_first within {diff:.1e} of the plain path")
    t_plain, t_shared = plain[1], best["shared media + prefix"][1]
    print(f"shared media alone: {t_plain / best['shared media'][1]:.2f}x; with the shared prefix: "
          f"{t_plain / t_shared:.2f}x")
    if args.reasoning:
        print(f"reasoning_batch_ratio: {reasoning_ratio(rm, images, args, now):.2f}")
    print(f"group_speedup: {t_plain / t_shared:.2f}")


def reasoning_ratio(rm, images, args, now=time.perf_counter) -> float:
    """Greedy generation of exactly `args.reasoning` tokens (end token off) for the group's first `batch_size`
    pair prompts: one batched call against one call per prompt. Returns one-by-one / batched."""
    t = rm.task("image-gen/pair", "pair")
    pairs = [(i, j) for i in range(len(images)) for j in range(len(images)) if i != j][: args.batch_size]
    xs = [render(t, rm.prepare(t, "a red cube on a blue sphere", [images[i], images[j]], None), False)
          for i, j in pairs]
    backend = rm.backend
    eos = backend.model.generation_config.eos_token_id
    backend.model.generation_config.eos_token_id = None  # every row decodes the full budget, as a reasoning judge
    start = now()
    backend.generate(xs, max_new_tokens=args.reasoning)
    batched = now() - start
    start = now()
    for x in xs:
        backend.generate([x], max_new_tokens=args.reasoning)
    single = now() - start
    backend.model.generation_config.eos_token_id = eos
    print(f"reasoning: {len(xs)} prompts x {args.reasoning} new tokens: batched {batched:.2f} s, one at a time "
          f"{single:.2f} s")
    return single / batched

if __name__ == "__main__":
    main()
