"""Scorer throughput on CPU: images per second for every registered scorer (CLIPScore, PickScore, HPSv2/v2.1,
ImageReward, the aesthetic predictor), scoring N images in batches against one image at a time, through
`RewardModel.score_batch` (the path the server, bench and best-of-n use).

    PYTHONPATH=src python benchmarks/scorer_throughput.py              # tiny random copies, 64 images of 256 px
    PYTHONPATH=src python benchmarks/scorer_throughput.py --n 32 --batch-size 16 --repeat 3

The scorers are the tiny random copies of `models.scorers.tiny` (the real architectures, narrowed: 32-wide, two
layers, 32 px inputs; open_clip's real 49408-token vocabulary), built in a temporary folder and loaded as a local
copy. At this size the numbers measure unireward's per-call overhead (image loading, preprocessing, batching)
more than the models, which is what batching removes. Each way is warmed up, then timed `--repeat` times (best
counts). Prints a table and, on its last line, `scorer_batch_speedup: <geometric mean over scorers of batched /
one-at-a-time images per second>`.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time

import numpy as np


def images(n: int, size: int, seed: int = 0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


def best_time(fn, repeat: int) -> float:
    fn()  # warm-up
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=64, help="images scored per way (default 64)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=256, help="input image side in pixels (default 256)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scorers", help="comma-separated subset (default: every registered scorer)")
    args = parser.parse_args()

    import torch

    from unireward.judge import PointRequest, RewardModel
    from unireward.models.scorers import list_scorers
    from unireward.models.scorers.tiny import build_tiny_scorer

    names = args.scorers.split(",") if args.scorers else [s.name for s in list_scorers()]
    ims = images(args.n, args.image_size)
    prompts = [f"a red cube number {k % 4} on a blue sphere" for k in range(args.n)]
    reqs = [PointRequest(p, im) for p, im in zip(prompts, ims)]
    print(f"{args.n} images of {args.image_size} px, batch size {args.batch_size}, CPU threads "
          f"{torch.get_num_threads()}, best of {args.repeat}")
    print("| scorer | batched img/s | one at a time img/s | speedup |")
    print("|---|---|---|---|")
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            folder = build_tiny_scorer(name, f"{tmp}/{name}")
            rm = RewardModel.load(str(folder), device="cpu", dtype="float32", batch_size=args.batch_size)
            batched = best_time(lambda: rm.score_batch(reqs), args.repeat)
            single = best_time(lambda: [rm.score_batch([r]) for r in reqs], args.repeat)
            fast, slow = args.n / batched, args.n / single
            ratios.append(fast / slow)
            print(f"| {name} | {fast:.1f} | {slow:.1f} | {fast / slow:.2f} |")
    print(f"scorer_batch_speedup: {math.exp(sum(map(math.log, ratios)) / len(ratios)):.2f}")


if __name__ == "__main__":
    main()
