"""Sandbox experiment: the Think recipe's reinforcement steps on the shipped sandbox judge, against a plain-SFT
control spent on the same number of optimizer steps.

    nice -n 10 python benchmarks/sandbox_rft.py --out runs/rft --n-gen 100 --eval-gen 150 --eval-und 50

Stages (each skipped when its output exists, so a rerun continues):
1. data: train-split generation pairs (image-gen, video-gen; `generated_share` of image-gen drawn like the
   sandbox generator, as the ladder trains and evaluates) and a replay share of the other six tasks (gold
   checklists), drawn from a seed the ladder's held-out evaluation never uses;
2. reject: K sampled checklists per generation pair from the shipped judge (`unireward train reject`);
3. rs-sft: SFT from the shipped judge on the kept (right) traces + the replay share;
4. grpo: GRPO from rs-sft on the image-gen pairs the judge was unsure of in rejection sampling (fewer than k
   right traces), a few sure ones and image-und pairs as replay (TRL's GRPOTrainer passes no videos, so video-gen
   pairs get rejection sampling only);
5. control: SFT from the shipped judge on the gold targets of the same pairs + replay, for the rs-sft + grpo
   optimizer steps;
6. eval: held-out accuracy (both orders) of shipped / rs-sft / grpo / control through `ladder.evaluate_judge` on
   one draw (same seed for every model).

Writes <out>/results.json (timings, per-stage outputs, the table) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

SHIPPED = "src/unireward/sandbox/judge"
GEN = ("image-gen/pair", "video-gen/pair")
OTHER = ("image-gen/point", "video-gen/point", "image-und/pair", "image-und/point", "video-und/pair",
         "video-und/point")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/rft")
    p.add_argument("--n-gen", type=int, default=100, help="train pairs per generation task")
    p.add_argument("--n-replay", type=int, default=20, help="replay samples per other task")
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--sft-steps", type=int, default=40)
    p.add_argument("--sft-lr", type=float, default=1e-4)
    p.add_argument("--grpo-steps", type=int, default=20)
    p.add_argument("--grpo-lr", type=float, default=1e-5)
    p.add_argument("--generations", type=int, default=8, help="GRPO group size (2 prompts per step)")
    p.add_argument("--eval-gen", type=int, default=150, help="held-out pairs per generation task")
    p.add_argument("--eval-und", type=int, default=50, help="held-out pairs per understanding task")
    p.add_argument("--eval-seed", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
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
    stage("rs-sft", lambda: sft(out / "rs-sft", SHIPPED, [rej["sft"], data["replay"]], sft_steps, a))
    stage("grpo", lambda: grpo(out / "grpo", str(out / "rs-sft"), rej, data, a))
    stage("control", lambda: sft(out / "control", SHIPPED, [data["gen"], data["replay"]], sft_steps + grpo_steps, a))

    from unireward.sandbox.ladder import evaluate_judge

    tasks = GEN + ("image-und/pair", "video-und/pair")
    for name, path in (("shipped", SHIPPED), ("grpo", out / "grpo"), ("rs-sft", out / "rs-sft"),
                       ("control", out / "control")):
        for task in tasks:
            key = f"{name}:{task}"
            if key in res["eval"]:
                continue
            n = a.eval_gen if task in GEN else a.eval_und
            t0 = time.perf_counter()
            ev = evaluate_judge(str(path), n=n, seed=a.eval_seed, image_size=56, video_frames=8,
                                generated_share=0.3, tasks=(task,))
            res["eval"][key] = {"n": n, **ev[task], "eval_s": round(time.perf_counter() - t0, 1)}
            save()
            print(f"[{time.strftime('%H:%M:%S')}] eval {key}: {json.dumps(res['eval'][key])}", flush=True)
    print(table(res, tasks))
    return 0


def draw_data(root: Path, a) -> dict:
    from unireward.data.schema import write_samples
    from unireward.sandbox.data import build_samples, write_media

    def draw(tasks, n, name):
        rows = []
        for task in tasks:
            samples, jobs = build_samples(task, n, "train", seed=7000 + a.seed, image_size=56, video_frames=8,
                                          rationale=True, generated_share=0.3)
            write_media(root, jobs)
            rows += samples
        write_samples(root / f"{name}.jsonl", rows)
        return str(root / f"{name}.jsonl")

    return {"gen": draw(GEN, a.n_gen, "gen"), "replay": draw(OTHER, a.n_replay, "replay")}


def reject(out: Path, data: dict, a) -> dict:
    from unireward.train.rejection import RejectConfig, run_rejection

    r = run_rejection(RejectConfig(model=SHIPPED, data=[data["gen"]], out_dir=str(out / "reject"), k=a.k,
                                   temperature=a.temperature, seed=a.seed, batch_size=8, num_threads=1,
                                   progress=False))
    return {"sft": str(r.sft_path), "hard": str(r.hard_path), "kept_traces": r.kept_traces, "hard_n": r.hard,
            "per_task": r.per_task}


def sft(dest: Path, model: str, data: list[str], steps: int, a) -> dict:
    from unireward.train.sft import SFTRecipeConfig, run_sft

    r = run_sft(SFTRecipeConfig(model=model, data=data, output_dir=str(dest), lr=a.sft_lr, lr_scheduler="cosine",
                                warmup=0.1, max_steps=steps, batch_size=8, image_max_pixels=1024 * 1024,
                                video_frames=8, logging_steps=5, save_steps=10 ** 6, seed=a.seed, num_threads=1,
                                progress=False))
    _judge_defaults(dest)
    return {"steps": r.global_step, "train_loss": r.train_loss, "last_loss": r.last_loss,
            "samples": r.num_samples, "runtime_s": round(r.runtime_s, 1)}


def grpo(dest: Path, model: str, rej: dict, data: dict, a) -> dict:
    """GRPO on the image-gen pairs the judge was unsure of in rejection sampling (fewer than k right traces: the
    groups whose rewards vary), repeated, plus a few it always got right and image-und pairs as replay."""
    import random

    from unireward.construct.writer import read_records
    from unireward.data.schema import Sample, read_samples, write_samples
    from unireward.train.grpo_judge import GRPOJudgeConfig, run_grpo_judge

    root = Path(data["gen"]).parent.resolve()
    records = [r for r in read_records(Path(rej["sft"]).parent / "records.jsonl")
               if r["task"] == "image-gen/pair" and r["status"] != "error"]
    unsure = [Sample.from_dict(r["sample"]) for r in records if r["correct"] < r["k"]]
    sure = [Sample.from_dict(r["sample"]) for r in records if r["correct"] == r["k"]]
    rng = random.Random(a.seed)
    und = [s for s in read_samples(data["replay"]) if s.task == "image-und/pair"]
    for s in und:  # media relative to the data folder -> absolute, like the records'
        s.media = s.media_paths(str(root))
    mix = dest.parent / "grpo-data.jsonl"
    write_samples(mix, unsure * 4 + rng.sample(sure, min(20, len(sure))) + und)
    r = run_grpo_judge(GRPOJudgeConfig(model=model, data=[str(mix)], output_dir=str(dest), lr=a.grpo_lr,
                                       max_steps=a.grpo_steps, batch_size=2 * a.generations,
                                       num_generations=a.generations, max_completion_length=128, beta=0.04,
                                       format_weight=0.5, logging_steps=1, save_steps=10 ** 6, seed=a.seed,
                                       num_threads=1, progress=False))
    logs = [json.loads(line) for line in (dest / "log.jsonl").read_text().splitlines()]
    varied = [x for x in logs if "frac_reward_zero_std" in x]
    return {"steps": r.global_step, "train_loss": r.train_loss, "rewards": r.rewards, "samples": r.num_samples,
            "unsure_image_gen": len(unsure), "runtime_s": r.runtime_s,
            "mean_frac_reward_zero_std": round(sum(x["frac_reward_zero_std"] for x in varied) / max(1, len(varied)), 3),
            "mean_accuracy_reward": round(sum(x["rewards/accuracy/mean"] for x in varied) / max(1, len(varied)), 3)}


def _judge_defaults(dest: Path) -> None:
    from unireward.judge import JUDGE_DEFAULTS_FILE

    (dest / JUDGE_DEFAULTS_FILE).write_text(json.dumps({"method": "generate", "max_new_tokens": 128}))


def table(res: dict, tasks) -> str:
    names = ["shipped", "rs-sft", "grpo", "control"]
    lines = ["| task (n) | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for task in tasks:
        row = []
        for name in names:
            ev = res["eval"].get(f"{name}:{task}")
            row.append("-" if ev is None else f"{ev['acc']:.3f}" + (
                f" (gen {ev['acc_generated']:.2f})" if "acc_generated" in ev else ""))
        n = next((res["eval"][f"{m}:{task}"]["n"] for m in names if f"{m}:{task}" in res["eval"]), "?")
        lines.append(f"| {task} ({n}) | " + " | ".join(row) + " |")
    times = {k: v.get("time_s") for k, v in res["stages"].items()}
    return "\n".join(lines) + f"\n\nstage times (s): {times}"


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
