"""Sandbox experiment: the Think recipe's reinforcement steps on the shipped sandbox judge, against a plain-SFT
control spent on the same number of optimizer steps.

    nice -n 10 python benchmarks/sandbox_rft.py --out runs/rft/seed0 --seed 0 \
        --models shipped rs-sft grpo control grpo-shipped
    nice -n 10 python benchmarks/sandbox_rft.py --out runs/rft/seed1 --seed 1 --models rs-sft grpo control grpo-shipped
    python benchmarks/sandbox_rft.py --summarize runs/rft/seed0 runs/rft/seed1     # the table over seeds
    python benchmarks/sandbox_rft.py --out runs/rft/errors --errors src/unireward/sandbox/judge runs/rft/seed0/grpo

Stages (each skipped when its output exists, so a rerun continues):
1. data: train-split generation pairs (`n_image_gen` image-gen, `n_video_gen` video-gen; `generated_share` of
   image-gen drawn like the sandbox generator, as the ladder trains and evaluates) and a replay share of the other
   tasks (gold checklists; the edit tasks too, which the shipped judge was last tuned on), drawn from a seed the
   ladder's held-out evaluation never uses;
2. reject: k sampled checklists per generation pair from the shipped judge (`unireward train reject`), at a
   temperature high enough that some groups disagree;
3. rs-sft: SFT from the shipped judge on the kept (right) traces + the replay share, the traces of the pairs the
   judge was unsure of (right on some traces, not all) `unsure_weight` times;
4. grpo: GRPO from rs-sft on the image-gen pairs whose rejection group had reward spread (`spread.jsonl`), at the
   rejection temperature, so groups vary (TRL's GRPOTrainer passes no videos, so video-gen pairs get rejection
   sampling only; a group that agrees has zero advantage, so replay pairs the judge always gets right would train
   nothing but the KL term, and the KL to rs-sft is what keeps the other tasks);
5. control: SFT from the shipped judge on the gold targets of the same pairs + replay, for the rs-sft + grpo
   optimizer steps; grpo-shipped (only when named in `models`): GRPO as in 4, from the shipped judge;
6. eval: held-out pairwise accuracy (both orders) of `models` through `ladder.evaluate_judge`: `eval_n` pairs of
   every pair task on one draw (`eval_seed`, the same for every model and seed).

Writes <out>/results.json (timings, per-stage outputs, the evaluations) and prints a markdown table; `--summarize`
prints the table over several runs' results (mean and per-seed values; the shipped judge from whichever run has it);
`--errors` counts the error kinds of judges on the eval draw's generation pairs (`error_kinds`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

SHIPPED = "src/unireward/sandbox/judge"
GEN = ("image-gen/pair", "video-gen/pair")
OTHER = ("image-gen/point", "video-gen/point", "image-und/pair", "image-und/point", "video-und/pair",
         "video-und/point", "image-edit/pair", "image-edit/point")
EVAL = GEN + ("image-und/pair", "video-und/pair", "image-edit/pair")
MODELS = ("shipped", "rs-sft", "grpo", "control", "grpo-shipped")  # the last one only when asked for


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/rft/seed0")
    p.add_argument("--n-image-gen", type=int, default=240, help="train image-gen pairs (the GRPO mining pool)")
    p.add_argument("--n-video-gen", type=int, default=120, help="train video-gen pairs")
    p.add_argument("--n-replay", type=int, default=20, help="replay samples per other task")
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--temperature", type=float, default=1.3, help="rejection and GRPO sampling temperature")
    p.add_argument("--unsure-weight", type=int, default=3, help="times the unsure pairs' right traces go to rs-sft")
    p.add_argument("--sft-steps", type=int, default=40)
    p.add_argument("--sft-lr", type=float, default=1e-4)
    p.add_argument("--grpo-steps", type=int, default=40)
    p.add_argument("--grpo-lr", type=float, default=3e-5)
    p.add_argument("--generations", type=int, default=8, help="GRPO group size (2 prompts per step)")
    p.add_argument("--eval-n", type=int, default=200, help="held-out pairs per pair task")
    p.add_argument("--eval-seed", type=int, default=5)
    p.add_argument("--seed", type=int, default=0, help="training and sampling seed (train draw 7000 + seed)")
    p.add_argument("--models", nargs="+", default=list(MODELS[:4]), choices=MODELS,
                   help="the models to evaluate (grpo-shipped: GRPO from the shipped judge, no rs-sft, trained "
                   "only when named)")
    p.add_argument("--summarize", nargs="+", metavar="OUT", help="only print the table over these runs")
    p.add_argument("--errors", nargs="+", metavar="MODEL", help="only count the error kinds of these judges on the "
                   "generation pairs of the eval draw (order 1) and write them to <out>/errors.json")
    a = p.parse_args(argv)
    if a.errors:
        kinds = {m: error_kinds(m, a) for m in a.errors}
        Path(a.out).mkdir(parents=True, exist_ok=True)
        (Path(a.out) / "errors.json").write_text(json.dumps(kinds, indent=2))
        for m, k in kinds.items():
            print(m, json.dumps(k))
        print(f"errors_counted: {sum(v['wrong'] for k in kinds.values() for v in k.values())}")
        return 0
    if a.summarize:
        runs = [json.loads((Path(d) / "results.json").read_text()) for d in a.summarize]
        print(summary_table(runs))
        print(f"rft_gen_gain: {gen_gain(runs)}")
        return 0
    import torch

    torch.set_num_threads(1)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    res_path = out / "results.json"
    res = json.loads(res_path.read_text()) if res_path.is_file() else {"args": vars(a), "stages": {}, "eval": {}}

    def save():
        res_path.write_text(json.dumps(res, indent=2))

    def stage(name, fn):
        if name in res["stages"]:
            return res["stages"][name]
        t0 = time.perf_counter()
        info = fn()
        info["time_s"] = round(time.perf_counter() - t0, 1)
        res["stages"][name] = info
        save()
        print(f"[{time.strftime('%H:%M:%S')}] {name}: {json.dumps(info)[:400]}", flush=True)
        return info

    data = stage("data", lambda: draw_data(out / "data", a))
    rej = stage("reject", lambda: reject(out, data, a))
    sft_steps, grpo_steps = a.sft_steps, a.grpo_steps
    stage("rs-sft", lambda: sft(out / "rs-sft", SHIPPED, rs_mix(out, rej, data, a), sft_steps, a))
    stage("grpo", lambda: grpo(out / "grpo", str(out / "rs-sft"), rej, a))
    stage("control", lambda: sft(out / "control", SHIPPED, [data["gen"], data["replay"]], sft_steps + grpo_steps, a))
    if "grpo-shipped" in a.models:
        stage("grpo-shipped", lambda: grpo(out / "grpo-shipped", SHIPPED, rej, a))

    from unireward.sandbox.ladder import evaluate_judge

    paths = {"shipped": SHIPPED, **{m: out / m for m in MODELS[1:]}}
    for name in a.models:
        if name in res["eval"]:
            continue
        t0 = time.perf_counter()
        ev = evaluate_judge(str(paths[name]), n=a.eval_n, seed=a.eval_seed, image_size=56, video_frames=8,
                            generated_share=0.3, tasks=EVAL)
        res["eval"][name] = {"eval_s": round(time.perf_counter() - t0, 1), **ev}
        save()
        print(f"[{time.strftime('%H:%M:%S')}] eval {name}: "
              f"{ {t: ev[t]['acc'] for t in EVAL} } ({res['eval'][name]['eval_s']} s)", flush=True)
    print(summary_table([res]))
    print(f"rft_gen_gain: {gen_gain([res])}")
    return 0


def draw_data(root: Path, a) -> dict:
    from unireward.data.schema import write_samples
    from unireward.sandbox.data import build_samples, write_media

    def draw(counts, name):
        rows = []
        for task, n in counts:
            samples, jobs = build_samples(task, n, "train", seed=7000 + a.seed, image_size=56, video_frames=8,
                                          rationale=True, generated_share=0.3)
            write_media(root, jobs)
            rows += samples
        write_samples(root / f"{name}.jsonl", rows)
        return str(root / f"{name}.jsonl")

    return {"gen": draw([(GEN[0], a.n_image_gen), (GEN[1], a.n_video_gen)], "gen"),
            "replay": draw([(t, a.n_replay) for t in OTHER], "replay")}


def reject(out: Path, data: dict, a) -> dict:
    from unireward.train.rejection import RejectConfig, run_rejection

    r = run_rejection(RejectConfig(model=SHIPPED, data=[data["gen"]], out_dir=str(out / "reject"), k=a.k,
                                   temperature=a.temperature, seed=a.seed, batch_size=8, num_threads=1,
                                   progress=False))
    return {"sft": str(r.sft_path), "hard": str(r.hard_path), "spread": str(r.spread_path),
            "kept_traces": r.kept_traces, "hard_n": r.hard, "spread_n": r.spread, "per_task": r.per_task}


def rs_mix(out: Path, rej: dict, data: dict, a) -> list:
    """rs-sft's data: the kept traces, those of the unsure (spread) pairs `unsure_weight` times, + replay."""
    from unireward.data.schema import read_samples, write_samples

    unsure = {s.id for s in read_samples(rej["spread"])}
    rows = [s for s in read_samples(rej["sft"]) if s.meta["rejection"]["source_id"] in unsure]
    write_samples(out / "reject" / "sft-unsure.jsonl", rows)
    mix = [rej["sft"], data["replay"]]
    if rows and a.unsure_weight > 1:
        mix.append({"path": str(out / "reject" / "sft-unsure.jsonl"), "weight": a.unsure_weight - 1})
    return mix


def sft(dest: Path, model: str, data: list, steps: int, a) -> dict:
    from unireward.train.sft import SFTRecipeConfig, run_sft

    r = run_sft(SFTRecipeConfig(model=model, data=data, output_dir=str(dest), lr=a.sft_lr, lr_scheduler="cosine",
                                warmup=0.1, max_steps=steps, batch_size=8, image_max_pixels=1024 * 1024,
                                video_frames=8, logging_steps=5, save_steps=10 ** 6, seed=a.seed, num_threads=1,
                                progress=False))
    _judge_defaults(dest)
    return {"steps": r.global_step, "train_loss": r.train_loss, "last_loss": r.last_loss,
            "samples": r.num_samples, "runtime_s": round(r.runtime_s, 1)}


def grpo(dest: Path, model: str, rej: dict, a) -> dict:
    """GRPO on the image-gen pairs whose rejection group had reward spread (right on some of k traces at this
    temperature), sampled at that temperature."""
    from unireward.data.schema import read_samples, write_samples
    from unireward.train.grpo_judge import GRPOJudgeConfig, run_grpo_judge

    spread = [s for s in read_samples(rej["spread"]) if s.task == GEN[0]]
    mix = dest.parent / f"{dest.name}-data.jsonl"
    write_samples(mix, spread)  # media paths absolute (records')
    r = run_grpo_judge(GRPOJudgeConfig(model=model, data=[str(mix)], output_dir=str(dest), lr=a.grpo_lr,
                                       max_steps=a.grpo_steps, batch_size=2 * a.generations,
                                       num_generations=a.generations, temperature=a.temperature,
                                       max_completion_length=128, beta=0.04, format_weight=0.5, logging_steps=1,
                                       save_steps=10 ** 6, seed=a.seed, num_threads=1, progress=False))
    logs = [json.loads(line) for line in (dest / "log.jsonl").read_text().splitlines()]
    varied = [x for x in logs if "frac_reward_zero_std" in x]
    return {"steps": r.global_step, "train_loss": r.train_loss, "rewards": r.rewards, "samples": r.num_samples,
            "spread_image_gen": len(spread), "runtime_s": r.runtime_s,
            "mean_frac_reward_zero_std": _mean([x["frac_reward_zero_std"] for x in varied]),
            "mean_accuracy_reward": _mean([x["rewards/accuracy/mean"] for x in varied])}


def error_kinds(model: str, a) -> dict:
    """Per generation task, the judge's wrong verdicts (order 1) on the eval draw by kind: "decided" (checklist
    equal to the oracle's, verdict wrong), "Tally" (only the tally line differs), or by the checklist elements it
    misread (colour, shape, position, motion, physics: the first word of each line that differs; "length": a line
    missing or extra), and how many wrong pairs are generated looks."""
    from collections import Counter

    from unireward.backends.hf import HFBackend
    from unireward.judge import RewardModel
    from unireward.media import VideoPolicy
    from unireward.sandbox.ladder import _pair_request, heldout_samples
    from unireward.tasks import get_task

    import torch

    torch.set_num_threads(1)
    rm = RewardModel(HFBackend.load(model, device="cpu", dtype="float32", batch_size=32), method="generate",
                     max_new_tokens=96, video_policy=VideoPolicy(num_frames=8))
    data = heldout_samples(a.eval_n, a.eval_seed, 56, 8, tasks=GEN, generated_share=0.3)
    out = {}
    for task in GEN:
        items, t = data[task], get_task(task)
        results = rm.rank_batch([_pair_request(s, root) for s, root in items], task=task, both_orders=False)
        kinds, generated, wrong = Counter(), 0, 0
        for (s, _), r in zip(items, results):
            if r.winner == s.label:
                continue
            wrong += 1
            generated += bool(s.meta.get("generated"))
            raw = r.raw[0] if isinstance(r.raw, list) else r.raw
            got = (raw or "").split(t.answer.prefix)[0].strip().splitlines()
            gold = s.rationale.strip().splitlines()
            bad = sorted({(g.split() or ["?"])[0].rstrip(":") for g, x in zip(gold, got) if g != x}
                         | ({"length"} if len(got) != len(gold) else set()))
            misread = [b for b in bad if b != "Tally"]  # a misread line changes the tally too
            kinds.update(misread or bad or ["decided"])
        out[task] = {"n": len(items), "wrong": wrong, "generated_looks": generated, "kinds": dict(kinds)}
    return out


def gen_gain(runs: list[dict]) -> float | None:
    """GRPO's mean two-order accuracy on the generation pairs minus the shipped judge's (None until both ran)."""
    def acc(name):
        vals = [r["eval"][name][t]["acc"] for r in runs if name in r.get("eval", {}) for t in GEN]
        return _mean(vals)

    grpo, shipped = acc("grpo"), acc("shipped")
    return None if grpo is None or shipped is None else round(grpo - shipped, 3)


def _mean(xs: list) -> float | None:
    return round(sum(xs) / len(xs), 3) if xs else None


def _judge_defaults(dest: Path) -> None:
    from unireward.judge import JUDGE_DEFAULTS_FILE

    (dest / JUDGE_DEFAULTS_FILE).write_text(json.dumps({"method": "generate", "max_new_tokens": 128}))


def summary_table(runs: list[dict]) -> str:
    """Per task: n, and each model's two-order accuracy (mean over the runs that evaluated it, per-seed values in
    brackets; order 1 / order 2 of the mean); then each run's stage times."""
    names = [m for m in MODELS if any(m in r.get("eval", {}) for r in runs)]
    lines = ["| task (n pairs, both orders) | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for task in EVAL:
        row, n = [], None
        for name in names:
            evs = [r["eval"][name][task] for r in runs if name in r.get("eval", {})]
            n = n or next((r["eval"][name]["n"] for r in runs if name in r.get("eval", {})), None)
            if not evs:
                row.append("-")
                continue
            mean = statistics.mean(e["acc"] for e in evs)
            o1, o2 = (statistics.mean(e[k] for e in evs) for k in ("acc_order1", "acc_order2"))
            seeds = "" if len(evs) == 1 else " [" + ", ".join(f"{e['acc']:.3f}" for e in evs) + "]"
            row.append(f"{mean:.3f}{seeds} ({o1:.3f} / {o2:.3f})")
        lines.append(f"| {task} ({n}) | " + " | ".join(row) + " |")
    for r in runs:
        times = {k: v.get("time_s") for k, v in r["stages"].items()}
        evals = {k: v.get("eval_s") for k, v in r.get("eval", {}).items()}
        lines.append(f"\nseed {r['args']['seed']}: stage times (s) {times}; eval (s) {evals}")
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
