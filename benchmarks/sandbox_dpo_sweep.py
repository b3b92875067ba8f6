"""Diffusion-DPO against its same-compute control over a small grid of beta and learning rate (sandbox generator).

    python benchmarks/sandbox_dpo_sweep.py --gen-base src/unireward/sandbox/generator_base --device cuda \
        --betas 100 500 2000 --lrs 1e-4 3e-4 --seeds 0 1 2 [--sft-weights 0 100] [--pairs PAIRS.jsonl]

Pairs are built once (the paper's pair-then-point, N candidates per train caption, the oracle or a trained
judge); then every (beta, lr) runs Diffusion-DPO and every lr runs the control (fine-tuning on the chosen
images only), each for the same steps and batch, over the seeds. Prints all-attributes-correct on the
evaluation captions (every held-out combination + 27 seen ones; fixed sampling seeds per training seed) as
mean +- sd in points, and writes `<out>/sweep.json`. Each arm gets its own best learning rate, so the comparison
between the best DPO and the best control is fair.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gen-base", default="src/unireward/sandbox/generator_base")
    p.add_argument("--judge", default="oracle", help="'oracle' or a trained judge folder")
    p.add_argument("--device", default="auto")
    p.add_argument("--betas", type=float, nargs="+", default=[100.0, 500.0, 2000.0])
    p.add_argument("--lrs", type=float, nargs="+", default=[1e-4, 3e-4])
    p.add_argument("--sft-weights", type=float, nargs="+", default=[0.0],
                   help="weights of the chosen images' denoising loss added to DPO (0: the paper's loss)")
    p.add_argument("--pairs", default="", help="reuse this Diffusion-DPO JSONL instead of constructing pairs")
    p.add_argument("--skip-base", action="store_true", help="do not re-evaluate the base generator")
    p.add_argument("--skip-control", action="store_true", help="do not run the control arm")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--n", type=int, default=10, help="candidates per prompt")
    p.add_argument("--prompt-repeats", type=int, default=4, help="passes over the train captions")
    p.add_argument("--eval-samples", type=int, default=8)
    p.add_argument("--ddim-steps", type=int, default=20)
    p.add_argument("--out", default="outputs/bench/sandbox_dpo_sweep")
    args = p.parse_args()

    import torch

    from unireward.judge import RewardModel
    from unireward.sandbox import loops
    from unireward.sandbox.generator import load_generator
    from unireward.sandbox.oracle_judge import OracleBackend

    t0, out = time.time(), Path(args.out)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    gen = load_generator(args.gen_base)
    gen.unet.to(device), gen.text_encoder.to(device)
    judge = RewardModel(OracleBackend()) if args.judge == "oracle" else RewardModel.load(args.judge, dtype=None)
    caps = loops.eval_captions()
    seeds = {s: [1000 + 10 * s + j for j in range(args.eval_samples)] for s in args.seeds}
    pairs = args.pairs or loops.construct_generator_pairs(gen, loops.captions("train") * args.prompt_repeats, judge,
                                                          out / "pairs", num_candidates=args.n, steps=args.ddim_steps)
    print(f"{sum(1 for _ in open(pairs))} pairs ({time.time() - t0:.0f}s)", flush=True)

    def run(arm: str, train) -> dict:
        res = [loops.evaluate_generator(train(s), caps, seeds[s], steps=args.ddim_steps) for s in args.seeds]
        row = {k: [r[k] for r in res] for k in ("all", "heldout_combos")}
        print(f"{arm:28s} all {_ms(row['all'])} | held-out combos {_ms(row['heldout_combos'])} "
              f"({time.time() - t0:.0f}s)", flush=True)
        return row

    table = {} if args.skip_base else {"base": run("base", lambda s: gen)}
    for lr in args.lrs:
        if not args.skip_control:
            table[f"control lr={lr:g}"] = run(f"control lr={lr:g}", lambda s: loops.control_generator(
                gen, pairs, steps=args.steps, lr=lr, seed=s))
        for beta in args.betas:
            for w in args.sft_weights:
                arm = f"dpo beta={beta:g} lr={lr:g}" + (f" sft={w:g}" if w else "")
                table[arm] = run(arm, lambda s: loops.dpo_generator(gen, pairs, steps=args.steps, beta=beta, lr=lr,
                                                                    seed=s, out_dir=out / "dpo", sft_weight=w))
    out.mkdir(parents=True, exist_ok=True)  # with --pairs and no DPO arm nothing else creates it
    (out / "sweep.json").write_text(json.dumps({"args": vars(args), "table": table}, indent=1))


def _ms(xs) -> str:
    xs = np.asarray(xs, float) * 100
    return f"{xs.mean():5.1f} +- {xs.std(ddof=1) if len(xs) > 1 else 0.0:4.1f}"


if __name__ == "__main__":
    main()
