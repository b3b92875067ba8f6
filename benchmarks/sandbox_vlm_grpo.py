"""GRPO of the sandbox policy VLM (TRL's GRPOTrainer) from the judge's rewards against the DPO loop, at the same
number of generated answers.

    python benchmarks/sandbox_vlm_grpo.py --arms grpo-oracle grpo-reference --out runs/vlm_grpo/A  # ~13 min, 1 core
    python benchmarks/sandbox_vlm_grpo.py --arms grpo-point dpo --out runs/vlm_grpo/B   # ~15 min (+17 min: the base)
    python benchmarks/sandbox_vlm_grpo.py --report runs/vlm_grpo/A/vlm_grpo.json runs/vlm_grpo/B/vlm_grpo.json

Base: a saved policy (`--pol-base`); when that folder does not exist it is built there with the DPO benchmark's
recipe (`sandbox_dpo_loops.policy_base`: 3000 steps describing images, then 400 steps on loose answers, 80% of
them about another scene), so every arm and seed starts from the same weak policy. Arms, per seed:
- `grpo-point`: GRPO with the judge's pointwise score of each answer (`trl_reward(judge, task="image-und/point")`);
- `grpo-reference`: GRPO with P(answer > the right answer) over both orders (`reference_column="answer"`; a copy of
  the right answer ties it, 0.5);
- `grpo-oracle`: GRPO with the oracle's share of the asked facts an answer gets right (the ceiling);
- `dpo`: the existing loop (`loops.construct_policy_pairs`: `--dpo-n` answers per question sampled at T = 0.7,
  pair-then-point pairs by the same judge; DPO + SFT, `loops.dpo_policy`); pairs built once, DPO per seed.
Every arm generates `--answers` training answers: GRPO answers answers / group questions `--group` times each
(one pass), DPO samples `--dpo-n` answers for answers / dpo-n questions (the first questions of one draw).
Evaluation (the same for every arm): held-out-combination images (`--eval-heldout`) and seen-combination images
(`--eval-seen`, a draw apart from training), answered `--eval-seeds` times at T = 0.7 with fixed seeds and once
greedy; the oracle's share of answers wholly right (all images, held-out, seen) and mean answer score, and the
judge's own pointwise score of the sampled answers (normalised to [0, 1]). Hacking gap = judge-score gain minus
oracle-score gain over the base (> 0: the judge's reward rose more than the truth). Training curves (TRL's log:
the arm's reward and the oracle's score of the same answers) are kept per arm. Mean +- sd over seeds; each
finished arm is appended to `<out>/vlm_grpo.json` at once. One torch thread.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ARMS = ("grpo-point", "grpo-reference", "grpo-oracle", "dpo")
IMAGE_SIZE = 84  # the DPO loop's policy: 9 visual tokens per image


def _ms(xs, scale: float = 100.0) -> str:
    xs = np.asarray(xs, float) * scale
    return f"{xs.mean():5.1f} +- {xs.std(ddof=1) if len(xs) > 1 else 0.0:4.1f}"


def build_base(path: Path) -> None:
    """The DPO benchmark's weak policy (docs/sandbox.md, "DPO of a weak answering VLM"), saved at `path`."""
    from sandbox_dpo_loops import policy_base  # this folder is on the path when a script runs

    recipe = argparse.Namespace(pol_base="", pol_pretrain_examples=40000, pol_attributes=["describe"],
                                pol_pretrain_steps=3000, pol_loose_steps=400, pol_caption_noise=0.8,
                                pol_loose_lr=3e-4)
    policy_base(recipe, path.parent)  # writes <parent>/policy_trained
    if path.name != "policy_trained":
        (path.parent / "policy_trained").rename(path)


def evaluate(model, processor, judge, sets: dict, temperature: float, seeds) -> dict:
    """Oracle measures of sampled (`seeds`) and greedy answers per image set, and the judge's score of the sampled."""
    from unireward.rewards import GroupRequest
    from unireward.sandbox import loops

    res: dict = {"sampled": {}, "greedy": {}}
    judged = []
    for name, items in sets.items():
        s = loops.evaluate_policy(model, processor, items, temperature=temperature, seeds=seeds, return_answers=True)
        g = loops.evaluate_policy(model, processor, items)
        judged += [(items[k % len(items)], a) for k, a in enumerate(s.pop("answers"))]  # seed by seed
        res["sampled"][name], res["greedy"][name] = s, g
    for kind in ("sampled", "greedy"):
        per = res[kind]
        n = {k: len(v) for k, v in sets.items()}
        for m in ("all_right", "score"):
            per[m] = sum(per[k][m] * n[k] for k in sets) / sum(n.values())
    low, high = 1, 10  # image-und/point's scale
    groups = [GroupRequest(it["question"], [a], it["image"]) for it, a in judged]
    pts = [g.rewards[0] for g in judge.group_reward_batch(groups, task="image-und/point", mode="point")]
    got = [p for p in pts if p is not None]
    res["judge_score"] = float((np.mean(got) - low) / (high - low)) if got else float("nan")
    res["judge_unscored"] = len(pts) - len(got)
    return res


def _curve(history: list[dict]) -> list[dict]:
    keep = ("step", "loss", "reward", "reward_std", "kl", "frac_reward_zero_std", "oracle/train_score",
            "oracle/train_all_right", "completions/mean_length")
    return [{k: v for k, v in h.items() if k in keep or k.startswith("rewards/") or k.endswith("/missing")}
            for h in history if "loss" in h]


def table(report: dict) -> None:
    arms = [a for a in ARMS if report["arms"].get(a)]
    print("| arm | sampled: wholly right | held-out combinations | seen | greedy: wholly right | held-out | "
          "judge score (0-1) | oracle score | hacking gap |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = [("base", [report["base"]])] + [(a, list(report["arms"][a].values())) for a in arms]
    for name, v in rows:
        gap = _ms([x["hacking_gap"] for x in v]) if name != "base" else "-"
        s, g = [x["sampled"] for x in v], [x["greedy"] for x in v]
        print(f"| {name} | {_ms([x['all_right'] for x in s])} | {_ms([x['heldout']['all_right'] for x in s])} | "
              f"{_ms([x['seen']['all_right'] for x in s])} | {_ms([x['all_right'] for x in g])} | "
              f"{_ms([x['heldout']['all_right'] for x in g])} | {_ms([x['judge_score'] for x in v])} | "
              f"{_ms([x['score'] for x in s])} | {gap} |")
    secs = {a: np.mean([x["seconds"] for x in report["arms"][a].values()]) for a in arms}
    print("seconds per run (train + evaluate): " + ", ".join(f"{a} {s:.0f}" for a, s in secs.items()))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pol-base", default="runs/vlm_grpo/base", help="the weak policy (built there when missing)")
    p.add_argument("--judge", default="src/unireward/sandbox/judge", help="a judge folder, or 'oracle'")
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--answers", type=int, default=1280, help="generated training answers per arm and seed")
    p.add_argument("--group", type=int, default=8, help="GRPO: answers per question")
    p.add_argument("--batch", type=int, default=16, help="GRPO: answers per optimisation step")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--beta", type=float, default=0.04, help="GRPO: KL to the base")
    p.add_argument("--loss-type", default="grpo")
    p.add_argument("--temperature", type=float, default=0.7, help="GRPO and DPO sampling, and evaluation")
    p.add_argument("--dpo-n", type=int, default=2)
    p.add_argument("--dpo-lr", type=float, default=2e-4)
    p.add_argument("--dpo-beta", type=float, default=0.3)
    p.add_argument("--dpo-sft-weight", type=float, default=0.3)
    p.add_argument("--dpo-epochs", type=float, default=4)
    p.add_argument("--eval-heldout", type=int, default=100)
    p.add_argument("--eval-seen", type=int, default=50)
    p.add_argument("--eval-seeds", type=int, default=2, help="sampled answers per evaluation image")
    p.add_argument("--out", default="outputs/sandbox_vlm_grpo")
    p.add_argument("--report", nargs="+", default=None, help="only print the table of these result files")
    args = p.parse_args(argv)
    if args.report:
        from sandbox_grpo import merge  # this folder is on the path when a script runs

        report = merge(args.report, same=("base",))
        table(report)
        return report

    import torch

    torch.set_num_threads(1)
    from unireward.judge import RewardModel
    from unireward.rewards.adapters import trl_reward
    from unireward.sandbox import loops
    from unireward.sandbox.vlm_grpo import PolicyGRPOConfig, grpo_policy, oracle_reward

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    base_path = Path(args.pol_base)
    if not (base_path / "config.json").exists():
        build_base(base_path)
        print(f"[base] built {base_path} ({time.time() - t0:.0f}s)", flush=True)
    if args.judge == "oracle":
        from unireward.sandbox.oracle_judge import OracleBackend

        judge = RewardModel(OracleBackend())
    else:
        judge = RewardModel.load(args.judge, dtype=None, batch_size=32)
    model, processor = loops.load_policy(base_path)
    attrs = ["describe"]
    sets = {"heldout": loops.qa_items(args.eval_heldout, "heldout", 1, IMAGE_SIZE, attributes=attrs),
            "seen": loops.qa_items(args.eval_seen, "train", 3, IMAGE_SIZE, attributes=attrs)}
    eval_seeds = tuple(range(1000, 1000 + args.eval_seeds))

    def measure(m) -> dict:
        return evaluate(m, processor, judge, sets, args.temperature, eval_seeds)

    report: dict = {"args": vars(args), "base": measure(model), "arms": {a: {} for a in args.arms}}
    base = report["base"]
    print(f"[base] sampled wholly right {base['sampled']['all_right']:.3f} (held-out "
          f"{base['sampled']['heldout']['all_right']:.3f}), greedy {base['greedy']['all_right']:.3f}, judge "
          f"{base['judge_score']:.3f} ({time.time() - t0:.0f}s)", flush=True)

    def save():
        (out / "vlm_grpo.json").write_text(json.dumps(report, indent=1, default=float))

    save()
    cfg = PolicyGRPOConfig(num_generations=args.group, batch_size=args.batch, lr=args.lr, beta=args.beta,
                           temperature=args.temperature, loss_type=args.loss_type)
    grpo_items = loops.qa_items(args.answers // args.group, "train", 2, IMAGE_SIZE, attributes=attrs)
    rewards = {"grpo-point": trl_reward(judge, task="image-und/point"),
               "grpo-reference": trl_reward(judge, task="image-und/pair", reference_column="answer"),
               "grpo-oracle": oracle_reward(grpo_items)}
    pairs = None
    for s in args.seeds:
        for arm in args.arms:
            t1 = time.time()
            if arm == "dpo":
                if pairs is None:
                    dpo_items = loops.qa_items(args.answers // args.dpo_n, "train", 2, IMAGE_SIZE,
                                               root=out / "dpo_images", attributes=attrs)
                    pairs = loops.construct_policy_pairs(model, processor, dpo_items, judge, out / "dpo_pairs",
                                                         num_candidates=args.dpo_n, temperature=args.temperature)
                    report["dpo_pairs"] = {"pairs": sum(1 for _ in open(pairs)), "questions": len(dpo_items),
                                           "seconds": time.time() - t1}
                trained, res = loops.dpo_policy(model, processor, pairs, epochs=args.dpo_epochs, lr=args.dpo_lr,
                                                beta=args.dpo_beta, sft_weight=args.dpo_sft_weight, seed=s,
                                                out_dir=out / f"dpo_{s}")
                history = [{"step": res.global_step}]
            else:
                trained, _, log = grpo_policy(base_path, grpo_items, [rewards[arm]], cfg, seed=s,
                                              out_dir=out / f"{arm}_{s}")
                history = _curve(log)
            t_train = time.time() - t1
            r = measure(trained)
            r["hacking_gap"] = (r["judge_score"] - base["judge_score"]) - (r["sampled"]["score"] -
                                                                          base["sampled"]["score"])
            r["history"], r["train_seconds"], r["seconds"] = history, t_train, time.time() - t1
            report["arms"][arm][s] = r
            save()
            print(f"[{arm}] seed {s}: sampled wholly right {base['sampled']['all_right']:.3f} -> "
                  f"{r['sampled']['all_right']:.3f} (held-out {r['sampled']['heldout']['all_right']:.3f}), greedy "
                  f"{r['greedy']['all_right']:.3f}; judge {base['judge_score']:.3f} -> {r['judge_score']:.3f}; "
                  f"oracle score {base['sampled']['score']:.3f} -> {r['sampled']['score']:.3f}; gap "
                  f"{r['hacking_gap']:+.3f} (train {t_train:.0f}s, total {r['seconds']:.0f}s)", flush=True)
            del trained
    print(f"\n{args.answers} generated answers per run; evaluation: {args.eval_heldout} held-out + {args.eval_seen} "
          f"seen images x {args.eval_seeds} samples (T = {args.temperature}) and greedy; mean +- sd over seeds "
          f"{args.seeds}")
    table(report)
    print(f"total_seconds: {time.time() - t0:.0f}")
    return report


if __name__ == "__main__":
    main()
