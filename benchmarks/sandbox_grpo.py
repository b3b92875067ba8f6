"""GRPO of the sandbox generator from three rewards against the DPO loop, at the same number of generated samples.

    python benchmarks/sandbox_grpo.py --gen-base src/unireward/sandbox/generator_base \
        --judge src/unireward/sandbox/judge --seeds 0 1 2 --iterations 10 --prompts 8 --group 8 \
        --lr 1e-4 --minibatches 4 --eval-samples 6

Arms (per seed, each from the same base generator):
- `grpo-winrate`: GRPO with the judge's group win rates (all pairs, both orders; Pref-GRPO's reward);
- `grpo-point`: GRPO with the judge's pointwise score (the expected score where the judge gives probabilities);
- `grpo-oracle`: GRPO with the pixel oracle's share of the caption's facts (the ceiling);
- `dpo`: the existing Diffusion-DPO loop (`sandbox.loops`: N candidates per caption, pair-then-point pairs
  built by the same judge, `--dpo-steps` steps), on as many generated samples as one GRPO run
  (iterations x prompts x group = captions x N); pairs are built once, DPO runs per seed.
Each evaluation samples the evaluation captions (all held-out combinations + 27 seen, `loops.eval_captions`) with
the same fixed DDIM seeds for every arm and seed (`--eval-samples` of them; the arms are compared on the same
noise, and the base is evaluated once), and reports the oracle's all-attributes-right share (held-out
combinations apart), the oracle's share of facts, and the judge's own pointwise score of the same images
(normalised to [0, 1]). Hacking gap = judge-score gain minus oracle-share gain over the base: > 0 when the judge's
reward rose more than the truth.
Each GRPO iteration also records the judge's pointwise score (0-1) and the oracle's share of facts of its own
training samples (`monitors`), whatever the arm trains on: the judge's reward over training.
Prints mean +- sd over seeds; every finished arm is appended to `<out>/grpo.json` at once. One torch thread.
Runs split over processes (e.g. `--arms grpo-winrate` in one, the other arms in another, same evaluation seeds)
are put into one table by `--merge out_a/grpo.json out_b/grpo.json`.
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


def _unit(score: float) -> float:
    """The judge's 1..5 point score on 0..1."""
    return float((score - 1) / 4)


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
    res["judge_score"] = _unit(np.mean(got)) if got else float("nan")
    res["judge_unscored"] = len(pts) - len(got)
    return res


def table(report: dict) -> list[str]:
    """The figures of a report: the arms' table, the judge's reward over training, timings."""
    seeds = sorted({int(s) for per in report["arms"].values() for s in per})
    lines = [f"samples per run: {report['samples_per_run']}; evaluation: {report['eval_images']} images (the same "
             f"for every arm); mean +- sd over seeds {seeds}",
             "| arm | seeds | all attributes right | held-out combinations | judge score (0-1) | oracle share | "
             "hacking gap |", "| --- | --- | --- | --- | --- | --- | --- |"]
    b = report["base"]
    lines.append(f"| base | - | {100 * b['all']:.1f} | {100 * b['heldout_combos']:.1f} | "
                 f"{100 * b['judge_score']:.1f} | {100 * b['oracle_share']:.1f} | - |")
    for arm, per_seed in report["arms"].items():
        v = list(per_seed.values())
        if v:
            lines.append(f"| {arm} | {len(v)} | {_ms([x['all'] for x in v])} | "
                         f"{_ms([x['heldout_combos'] for x in v])} | "
                         f"{_ms([x['judge_score'] for x in v])} | {_ms([x['oracle_share'] for x in v])} | "
                         f"{_ms([x['hacking_gap'] for x in v])} |")
    lines.append("judge's pointwise score (0-1) / oracle share of each iteration's training samples, mean over seeds:")
    for arm, per_seed in report["arms"].items():
        hs = [x["history"] for x in per_seed.values() if x["history"]]
        if hs:
            n = min(len(h) for h in hs)
            pts = [f"{np.mean([h[i]['judge_point'] for h in hs]):.3f}/{np.mean([h[i]['oracle_share'] for h in hs]):.3f}"
                   for i in range(n)]
            lines.append(f"  {arm}: " + " ".join(pts))
    for arm, per_seed in report["arms"].items():
        v = list(per_seed.values())
        if v:
            it = [np.mean([h["seconds"] for h in x["history"]]) for x in v if x["history"]]
            lines.append(f"  {arm}: {np.mean([x['seconds'] for x in v]):.0f} s per run with its evaluation"
                         + (f", {np.mean(it):.1f} s per iteration" if it else ""))
    return lines


def merge(paths, same=("samples_per_run", "eval_images", "base")) -> dict:
    """One report from runs split over processes: the fields `same` (budget, evaluation, base) equal in every
    run, arms and seeds joined. Also used by sandbox_vlm_grpo.py."""
    reports = [json.loads(Path(p).read_text()) for p in paths]
    out = {k: reports[0][k] for k in same}
    out["arms"] = {}
    for r in reports:
        if any(r[k] != out[k] for k in same):
            raise ValueError(f"runs that differ in {', '.join(same)} cannot share a table")
        for arm, per_seed in r["arms"].items():
            out["arms"].setdefault(arm, {}).update(per_seed)
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gen-base", default="src/unireward/sandbox/generator_base")
    p.add_argument("--judge", default="src/unireward/sandbox/judge", help="a judge folder, or 'oracle'")
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--prompts", type=int, default=8, help="captions per GRPO iteration")
    p.add_argument("--group", type=int, default=8, help="samples per caption (G)")
    p.add_argument("--sample-steps", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--clip-range", type=float, default=1e-4)
    p.add_argument("--kl-beta", type=float, default=0.0)
    p.add_argument("--minibatches", type=int, default=4)
    p.add_argument("--min-train-std", type=float, default=0.1, help="train only on transitions with this std or more")
    p.add_argument("--n", type=int, default=10, help="DPO: candidates per caption")
    p.add_argument("--dpo-steps", type=int, default=300)
    p.add_argument("--eval-samples", type=int, default=8, help="sampling seeds per evaluation caption")
    p.add_argument("--ddim-steps", type=int, default=20)
    p.add_argument("--out", default="outputs/sandbox_grpo")
    p.add_argument("--merge", nargs="+", metavar="GRPO_JSON", help="print one table from these runs' reports")
    args = p.parse_args(argv)
    if args.merge:
        report = merge(args.merge)
        print("\n".join(table(report)))
        print(f"sandbox_grpo_winrate_all_correct: {_mean_arm(report, 'grpo-winrate')}")
        return report

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
    eval_seeds = [1000 + j for j in range(args.eval_samples)]
    report: dict = {"args": vars(args), "samples_per_run": samples, "eval_images": len(caps) * len(eval_seeds),
                    "base": evaluate(base_gen, judge, caps, eval_seeds, args.ddim_steps),
                    "arms": {a: {} for a in args.arms}}

    def save():
        (out / "grpo.json").write_text(json.dumps(report, indent=1))

    base = report["base"]
    print(f"[base] all-correct {base['all']:.3f} ({time.time() - t0:.0f}s)", flush=True)
    save()
    point = flow_grpo_reward(judge, task="image-gen/point", mode="point")
    rewards = {"grpo-winrate": flow_grpo_reward(judge, task="image-gen/pair", mode="win-rate", both_orders=True),
               "grpo-point": point, "grpo-oracle": oracle_reward}

    def judge_point(images, prompts, metadata=None):  # the judge's pointwise score on 0..1
        scores, _ = point(images, prompts, metadata)
        return [_unit(v) for v in scores]

    monitors = {"judge_point": judge_point, "oracle_share": oracle_reward}
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
                    report["dpo_pairs_seconds"] = time.time() - t1
                gen = loops.dpo_generator(base_gen, pairs, steps=args.dpo_steps, seed=s, out_dir=out / f"dpo_{s}",
                                          progress=False)
                history = []
            else:
                cfg = SandboxGRPOConfig(iterations=args.iterations, prompts_per_iteration=args.prompts,
                                        group_size=args.group, sample_steps=args.sample_steps, lr=args.lr,
                                        clip_range=args.clip_range, kl_beta=args.kl_beta, minibatches=args.minibatches,
                                        min_train_std=args.min_train_std)
                gen, history = grpo_generator(base_gen, rewards[arm], cfg, seed=s, monitors=monitors)
            res = evaluate(gen, judge, caps, eval_seeds, args.ddim_steps)
            res["hacking_gap"] = ((res["judge_score"] - base["judge_score"])
                                  - (res["oracle_share"] - base["oracle_share"]))
            res["history"], res["seconds"] = history, time.time() - t1
            report["arms"][arm][s] = res
            save()
            print(f"[{arm}] seed {s}: all-correct {base['all']:.3f} -> {res['all']:.3f} (held-out "
                  f"{base['heldout_combos']:.3f} -> {res['heldout_combos']:.3f}); judge score "
                  f"{base['judge_score']:.3f} -> {res['judge_score']:.3f}; oracle share {base['oracle_share']:.3f} -> "
                  f"{res['oracle_share']:.3f}; gap {res['hacking_gap']:+.3f} ({res['seconds']:.0f}s)", flush=True)
    print()
    print("\n".join(table(report)))
    print(f"total {time.time() - t0:.0f}s")
    print(f"sandbox_grpo_winrate_all_correct: {_mean_arm(report, 'grpo-winrate')}")
    return report


def _mean_arm(report: dict, arm: str) -> str:
    v = [x["all"] for x in report["arms"].get(arm, {}).values()]
    return f"{100 * np.mean(v):.1f}" if v else "not run"


if __name__ == "__main__":
    main()
