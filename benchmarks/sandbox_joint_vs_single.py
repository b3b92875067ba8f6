"""Joint versus single-task judges in the sandbox (issue 3 item 7, the paper's central claim).

    .venv/bin/python benchmarks/sandbox_joint_vs_single.py --preset sandbox/ladder \
        [--budget N] [--joint runs/ladder6] --eval-n 100 --out runs/joint-vs-single \
        [--tasks image-gen/pair,video-gen/pair] [key=value ...]

Takes the preset's ladder, keeps its base-model stages (everything before the first judge stage: trained once,
then shared through the ladder's stage cache), and trains from that base model
  - one JOINT judge on all eight tasks, with the preset's judge stages (task weights, learning rates, rationale,
    captioning replay), their examples scaled so that they add up to `--budget` (default: the preset's own
    judge examples); `--joint DIR` uses a finished ladder run of the same preset at its own budget instead;
  - one SINGLE-TASK judge per task: the same judge stages and budget, on its own task alone.
Every judge starts from the same base model. Each judge is evaluated on the held-out split of its task(s)
(`evaluate_judge`), and the per-task table is printed (pairwise: accuracy over both orders; pointwise: Spearman)
and written to `<out>/table.json` and `table.md`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

from unireward.sandbox.data import TASKS
from unireward.sandbox.ladder import LadderConfig, evaluate_judge, train_ladder
from unireward.config import load_config


RUN_ONLY = ("out_dir", "threads", "workers", "device", "progress", "eval_every", "eval_n", "final_eval_n")


def judge_examples(config: LadderConfig) -> int:
    return sum(s.examples for s in config.stages if s.kind == "judge")


def variant(base: LadderConfig, out: Path, name: str, tasks: dict[str, float] | None, budget: int) -> LadderConfig:
    """The preset's stages, its judge stages on `tasks` (None: the preset's weights) with their examples scaled to
    add up to `budget`."""
    scale = budget / judge_examples(base)
    stages = [s if s.kind != "judge" else
              dataclasses.replace(s, examples=max(base.batch_size, round(s.examples * scale / base.batch_size)
                                                   * base.batch_size), tasks=s.tasks if tasks is None else tasks)
              for s in base.stages]
    return dataclasses.replace(base, out_dir=str(out / name), stages=stages, final_eval_n=0, eval_every=0)


def share_base(src: Path, dst: Path, n_base: int) -> None:
    """Copy the trained base stages (and the random init) so the stage cache skips them."""
    dst.mkdir(parents=True, exist_ok=True)
    for d in sorted(src.iterdir()):
        if d.is_dir() and (d.name == "base" or d.name.split("-")[0].isdigit() and int(d.name.split("-")[0]) <= n_base):
            if not (dst / d.name).exists():
                shutil.copytree(d, dst / d.name)


def cell(res: dict, task: str) -> str:
    r = res.get(task, {})
    v = r.get("acc") if task.endswith("/pair") else r.get("spearman")
    return "-" if v is None else f"{v:.3f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="sandbox/ladder")
    p.add_argument("--budget", type=int, default=None,
                   help="judge examples per judge (joint and each single); default: the preset's")
    p.add_argument("--joint", default=None,
                   help="a finished ladder run (out_dir) of the preset: the joint judge, instead of training one")
    p.add_argument("--eval-n", type=int, default=100, help="held-out samples per task")
    p.add_argument("--out", default="runs/joint-vs-single")
    p.add_argument("--tasks", default=",".join(TASKS), help="comma-separated single-task judges (default: all)")
    p.add_argument("overrides", nargs="*", help="key=value overrides of the preset (e.g. threads=2)")
    args = p.parse_args()
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in args.tasks if t not in TASKS]
    if unknown:
        p.error(f"unknown task(s) {unknown}; choose from {', '.join(TASKS)}")
    base = load_config(LadderConfig, args.preset, args.overrides)
    out = Path(args.out)
    n_base = next(i for i, s in enumerate(base.stages) if s.kind == "judge")
    budget = args.budget or judge_examples(base)
    if args.joint:
        joint_dir = Path(args.joint)
        report = json.loads((joint_dir / "ladder.json").read_text())
        ran = report["config"]
        want = json.loads(json.dumps(dataclasses.asdict(variant(base, out, "joint", None, budget))))
        differ = [k for k in want if k not in RUN_ONLY and ran.get(k) != want[k]]
        if differ:
            p.error(f"--joint {joint_dir}: its ladder.json differs from the preset at budget {budget} in "
                    f"{', '.join(differ)}; train the joint judge here instead (leave out --joint)")
        report["final_model"] = str(joint_dir / Path(report["final_model"]).name)
    else:
        joint_dir = out / "joint"
        report = train_ladder(variant(base, out, "joint", None, budget))
    rows = {"joint": (report, evaluate_judge(report["final_model"], n=args.eval_n, seed=base.seed,
                                             image_size=base.image_size, video_frames=base.video_frames,
                                             generated_share=base.generated_share))}
    for task in args.tasks:
        name = "single-" + task.replace("/", "-")
        share_base(joint_dir, out / name, n_base)
        rep = train_ladder(variant(base, out, name, {task: 1.0}, budget))
        rows[name] = (rep, evaluate_judge(rep["final_model"], n=args.eval_n, seed=base.seed, tasks=[task],
                                          image_size=base.image_size, video_frames=base.video_frames,
                                          generated_share=base.generated_share))
    table = {"budget": budget, "joint_dir": str(joint_dir), "eval_n": args.eval_n,
             "joint": {t: cell(rows["joint"][1], t) for t in TASKS},
             "single": {t: cell(rows["single-" + t.replace("/", "-")][1], t) for t in args.tasks},
             "judge_time_s": {k: sum(s["time_s"] for s in r["stages"][n_base:]) for k, (r, _) in rows.items()}}
    lines = ["| task | metric | joint | single-task |", "| --- | --- | --- | --- |"]
    for t in TASKS:
        metric = "accuracy (both orders)" if t.endswith("/pair") else "Spearman"
        lines.append(f"| {t} | {metric} | {table['joint'][t]} | {table['single'].get(t, '-')} |")
    md = f"Judge examples per judge: {budget}; held-out samples per task: {args.eval_n}\n\n" + "\n".join(lines)
    (out / "table.json").write_text(json.dumps({**table, "raw": {k: e for k, (_, e) in rows.items()}}, indent=1))
    (out / "table.md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
