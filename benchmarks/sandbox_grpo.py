"""GRPO of the sandbox generator from three rewards against the DPO loop, at the same number of generated samples.

    python benchmarks/sandbox_grpo.py --gen-base src/unireward/sandbox/generator_base \
        --judge src/unireward/sandbox/judge --seeds 0 1 2 --iterations 10 --prompts 8 --group 4

Arms (per seed, each from the same base generator):
- `grpo-winrate`: GRPO with the judge's group win rates (all pairs, both orders; Pref-GRPO's reward);
- `grpo-point`: GRPO with the judge's pointwise score (the expected score where the judge gives probabilities);
- `grpo-oracle`: GRPO with the pixel oracle's share of the caption's facts (the ceiling);
- `dpo`: the existing Diffusion-DPO loop (`sandbox.loops`: N candidates per caption, pair-then-point pairs
  built by the same judge, `--dpo-steps` steps), on as many generated samples as one GRPO run
  (iterations x prompts x group = captions x N); pairs are built once, DPO runs per seed.
Each evaluation samples the evaluation captions (all held-out combinations + 27 seen, `loops.eval_captions`) with
fixed DDIM seeds, and reports the oracle's all-attributes-right share (held-out combinations apart), the oracle's
share of facts, and the judge's own pointwise score of the same images (normalised to [0, 1]). Hacking gap =
judge-score gain minus oracle-share gain over the base: > 0 when the judge's reward rose more than the truth.
Prints mean +- sd over seeds; every finished arm is appended to `<out>/grpo.json` at once. One torch thread.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ARMS = ("grpo-winrate", "grpo-point", "grpo-oracle", "dpo")


def _ms(xs, scale: float = 100.0) -> str:
    xs = np.asarray(xs, float) * scale
    return f"{xs.mean():6.1f} +- {xs.std(ddof=1) if len(xs) > 1 else 0.0:4.1f}"


def evaluate(gen, judge, caps, seeds, steps: int) -> dict:
    """Oracle and judge measures of one set of samples: eval captions x fixed seeds (DDIM, eta 0)."""
    from unireward.rewards import GroupRequest
    from unireward.sandbox import loops, oracle
    from unireward.sandbox.data import is_heldout
    from unireward.sandbox.generator import sample

    flat = [(c, s) for s in seeds for c in caps]
    images = sample(gen, [c for c, _ in flat], [s for _, s in flat], steps=steps)
    right, held = [], []
    for (c, _), im in zip(flat, images):
        right.append(all(oracle.check(c, oracle.read_image(np.asarray(im))).values()))
        held.append(is_heldout(loops._scene(c)))
    right, held = np.asarray(right, float), np.asarray(held)
    res = {"all": float(right.mean()), "heldout_combos": float(right[held].mean()),
           "seen_combos": float(right[~held].mean()),
           "oracle_share": float(np.mean([oracle.score_media(c, np.asarray(im)) for (c, _), im in zip(flat, images)]))}
    groups = [GroupRequest(c, [im]) for (c, _), im in zip(flat, images)]
    pts = [g.rewards[0] for g in judge.group_reward_batch(groups, task="image-gen/point", mode="point")]
    got = [p for p in pts if p is not None]
    res["judge_score"] = float((np.mean(got) - 1) / 4) if got else float("nan")  # 1..5 -> 0..1
    res["judge_unscored"] = len(pts) - len(got)
    return res


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gen-base", default="src/unireward/sandbox/generator_base")
    p.add_argument("--judge", default="src/unireward/sandbox/judge", help="a judge folder, or 'oracle'")
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--prompts", type=int, default=8, help="captions per GRPO iteration")
    p.add_argument("--group", type=int, default=4, help="samples per caption (G)")
    p.add_argument("--sample-steps", type=int, default=10)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--clip-range", type=float, default=1e-4)
    p.add_argument("--kl-beta", type=float, default=0.0)
    p.add_argument("--minibatches", type=int, default=1)
    p.add_argument("--min-train-std", type=float, default=0.1, help="train only on transitions with this std or more")
    p.add_argument("--n", type=int, default=10, help="DPO: candidates per caption")
    p.add_argument("--dpo-steps", type=int, default=300)
    p.add_argument("--eval-samples", type=int, default=2, help="sampling seeds per evaluation caption")
    p.add_argument("--ddim-steps", type=int, default=20)
    p.add_argument("--out", default="outputs/sandbox_grpo")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from unireward.judge import RewardModel
    from unireward.rewards.adapters import flow_grpo_reward
    from unireward.sandbox import loops
    from unireward.sandbox.generator import load_generator
    from unireward.sandbox.grpo import SandboxGRPOConfig, grpo_generator, oracle_reward

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if args.judge == "oracle":
        from unireward.sandbox.oracle_judge import OracleBackend

        judge = RewardModel(OracleBackend())
    else:
        judge = RewardModel.load(args.judge, dtype=None, batch_size=32)
    base_gen = load_generator(args.gen_base)
    caps = loops.eval_captions()
    samples = args.iterations * args.prompts * args.group
    report: dict = {"args": vars(args), "samples_per_run": samples, "base": {}, "arms": {a: {} for a in args.arms}}

    def save():
        (out / "grpo.json").write_text(json.dumps(report, indent=1))

    eval_seeds = {s: [1000 + 10 * k + j for j in range(args.eval_samples)] for k, s in enumerate(args.seeds)}
    for s in args.seeds:
        report["base"][s] = evaluate(base_gen, judge, caps, eval_seeds[s], args.ddim_steps)
    print(f"[base] all-correct {_ms([b['all'] for b in report['base'].values()])} "
          f"({time.time() - t0:.0f}s)", flush=True)
    save()
    rewards = {"grpo-winrate": flow_grpo_reward(judge, task="image-gen/pair", mode="win-rate", both_orders=True),
               "grpo-point": flow_grpo_reward(judge, task="image-gen/point", mode="point"),
               "grpo-oracle": oracle_reward}
    pairs = None
    for s in args.seeds:
        for arm in args.arms:
            t1 = time.time()
            if arm == "dpo":
                if pairs is None:  # as many generated samples as one GRPO run: captions x N
                    n_caps = max(1, samples // args.n)
                    train = loops.captions("train")
                    rng = np.random.default_rng(0)
                    chosen = [train[int(i)] for i in rng.choice(len(train), n_caps, replace=n_caps > len(train))]
                    pairs = loops.construct_generator_pairs(base_gen, chosen, judge, out / "dpo_pairs",
                                                            num_candidates=args.n, steps=args.ddim_steps)
                gen = loops.dpo_generator(base_gen, pairs, steps=args.dpo_steps, seed=s, out_dir=out / f"dpo_{s}",
                                          progress=False)
                history = []
            else:
                cfg = SandboxGRPOConfig(iterations=args.iterations, prompts_per_iteration=args.prompts,
                                        group_size=args.group, sample_steps=args.sample_steps, lr=args.lr,
                                        clip_range=args.clip_range, kl_beta=args.kl_beta, minibatches=args.minibatches,
                                        min_train_std=args.min_train_std)
                gen, history = grpo_generator(base_gen, rewards[arm], cfg, seed=s)
            res = evaluate(gen, judge, caps, eval_seeds[s], args.ddim_steps)
            base = report["base"][s]
            res["hacking_gap"] = (res["judge_score"] - base["judge_score"]) - (res["oracle_share"] - base["oracle_share"])
            res["history"], res["seconds"] = history, time.time() - t1
            report["arms"][arm][s] = res
            save()
            print(f"[{arm}] seed {s}: all-correct {base['all']:.3f} -> {res['all']:.3f} (held-out "
                  f"{base['heldout_combos']:.3f} -> {res['heldout_combos']:.3f}); judge score "
                  f"{base['judge_score']:.3f} -> {res['judge_score']:.3f}; oracle share {base['oracle_share']:.3f} -> "
                  f"{res['oracle_share']:.3f}; gap {res['hacking_gap']:+.3f} ({res['seconds']:.0f}s)", flush=True)
    print(f"\nsamples per run: {samples}; evaluation: {len(caps)} captions x {args.eval_samples} seeds; "
          f"mean +- sd over seeds {args.seeds}")
    print("| arm | all attributes right | held-out combinations | judge score (0-1) | oracle share | hacking gap |")
    print("| --- | --- | --- | --- | --- | --- |")
    rows = [("base", report["base"])] + [(a, report["arms"][a]) for a in args.arms]
    for name, per_seed in rows:
        v = list(per_seed.values())
        if not v:
            continue
        gap = _ms([x["hacking_gap"] for x in v]) if name != "base" else "-"
        print(f"| {name} | {_ms([x['all'] for x in v])} | {_ms([x['heldout_combos'] for x in v])} | "
              f"{_ms([x['judge_score'] for x in v])} | {_ms([x['oracle_share'] for x in v])} | {gap} |")
    print(f"total {time.time() - t0:.0f}s")
    return report


if __name__ == "__main__":
    main()
