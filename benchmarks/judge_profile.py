"""Where the time of one batched judge pass goes: input preparation (processor), vision tower, language model.

    python benchmarks/judge_profile.py --size 7b --device cuda --batch-size 16 --image-size 448
    PYTHONPATH=src python benchmarks/judge_profile.py --shared --n 64 --batch-size 32 --clock cpu  # tiny, CPU

The plain pass (processor call, vision tower, full forward) is timed per batch; with --shared, `rank_batch` on
the shared-media path is split into its parts: rows (chat rendering, media hashing, splitting), the image
processor, the vision tower, batch assembly (tokenising text pieces, ids, positions), the language model and the
rest (the judge around the backend: loading, task rendering, results).
"""

from __future__ import annotations

import argparse
import time

from unireward.judging.render import render


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="tiny", choices=["tiny", "7b"])
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--shared", action="store_true", help="split rank_batch on the shared-media path instead")
    ap.add_argument("--n", type=int, default=None, help="requests for --shared (default: the batch size)")
    ap.add_argument("--clock", default="wall", choices=["wall", "cpu"])
    args = ap.parse_args()
    if args.shared:
        return shared_breakdown(args)

    import tempfile

    import torch
    from judge_throughput import build_model, requests

    from unireward.backends.hf import HFBackend
    from unireward.judge import RewardModel

    with tempfile.TemporaryDirectory() as tmp:
        built = build_model(args.size, "qwen2-vl", args.image_size, tmp)
        backend = (HFBackend.load(str(built), device=args.device, dtype=None, batch_size=args.batch_size)
                   if args.size == "tiny" else HFBackend(built[0], built[1], batch_size=args.batch_size))
        rm = RewardModel(backend)
        pairs, _ = requests(args.batch_size, args.image_size)
        task = rm.task("image-gen/pair", "pair")
        inputs = [render(task, rm.prepare(task, r.prompt, [r.a, r.b], None), False) for r in pairs]
        sync = torch.cuda.synchronize if backend.device.type == "cuda" else (lambda: None)
        model = backend.model
        for label in ["warm-up"] + [f"run {i}" for i in range(args.repeat)]:
            t0 = time.perf_counter()
            enc = backend.encode(inputs, padding_side="right")
            ends = backend._append_right(enc, [[]] * len(inputs))  # rows as choice_probs runs them
            t1 = time.perf_counter()
            enc = {k: v.to(backend.device) for k, v in enc.items()}
            sync()
            t2 = time.perf_counter()
            with torch.inference_mode():
                model.model.get_image_features(enc["pixel_values"], enc["image_grid_thw"])
                sync()
                t3 = time.perf_counter()
                model(**enc, logits_to_keep=(ends - 1)[:, None].to(backend.device))
                sync()
            t4 = time.perf_counter()
            print(f"{label}: batch {args.batch_size}, {enc['input_ids'].shape[1]} tokens/row: processor "
                  f"{t1 - t0:.3f}s, to-device {t2 - t1:.3f}s, vision tower {t3 - t2:.3f}s, full forward "
                  f"{t4 - t3:.3f}s (vision included)")


def shared_breakdown(args) -> None:
    import tempfile
    from collections import defaultdict

    import torch
    from judge_throughput import CLOCKS, build_model, requests

    from unireward.backends import vision_cache
    from unireward.backends.hf import HFBackend
    from unireward.judge import RewardModel

    now = CLOCKS[args.clock]
    with tempfile.TemporaryDirectory() as tmp:
        built = build_model(args.size, "qwen2-vl", args.image_size, tmp)
        backend = (HFBackend.load(str(built), device=args.device, dtype=None, batch_size=args.batch_size)
                   if args.size == "tiny" else HFBackend(built[0], built[1], batch_size=args.batch_size))
        rm = RewardModel(backend)
        pairs, _ = requests(args.n or args.batch_size, args.image_size)
        sync = torch.cuda.synchronize if backend.device.type == "cuda" else (lambda: None)
        spent: dict[str, float] = defaultdict(float)
        parts = {"__init__": "rows", "_prepare_media": "image processor", "_encode_media": "vision tower",
                 "encode": "batch assembly", "forward": "language model"}
        for method, label in parts.items():
            def wrap(fn, label=label):
                def timed(*a, **k):
                    sync()
                    start = now()
                    out = fn(*a, **k)
                    sync()
                    spent[label] += now() - start
                    return out
                return timed
            setattr(vision_cache.SharedMedia, method, wrap(getattr(vision_cache.SharedMedia, method)))
        rm.rank_batch(pairs, task="image-gen/pair")  # warm-up
        for run in range(args.repeat):
            spent.clear()
            start = now()
            rm.rank_batch(pairs, task="image-gen/pair")
            total = now() - start
            spent["batch assembly"] -= spent["image processor"] + spent["vision tower"]  # nested in encode
            spent["rest of the judge"] = total - sum(spent.values())
            print(f"run {run}: {len(pairs)} pairs, {total:.3f} s ({args.clock}): " + ", ".join(
                f"{k} {100 * v / total:.0f}%" for k, v in spent.items()))


if __name__ == "__main__":
    main()
