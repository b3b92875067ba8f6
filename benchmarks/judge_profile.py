"""Where the time of one batched judge pass goes: input preparation (processor), vision tower, language model.

    python benchmarks/judge_profile.py --size 7b --device cuda --batch-size 16 --image-size 448
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="tiny", choices=["tiny", "7b"])
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

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
        task = rm._task("image-gen/pair", "pair", False, None)
        inputs = [rm._render(task, rm._prepare(task, r.prompt, [r.a, r.b], None), False) for r in pairs]
        sync = torch.cuda.synchronize if backend.device.type == "cuda" else (lambda: None)
        model = backend.model
        for label in ["warm-up"] + [f"run {i}" for i in range(args.repeat)]:
            t0 = time.perf_counter()
            enc = backend._encode(inputs, padding_side="right")
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


if __name__ == "__main__":
    main()
