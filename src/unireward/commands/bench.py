"""`unireward bench`: evaluate a judge on a reward benchmark from a local copy.

    unireward bench genai-image --model path/to/judge --data ~/data/GenAI-Bench --protocol reference
    unireward bench genai-video --model path/to/judge --data ~/data/GenAI-Bench-video --frames 8
    unireward bench videogen    --model path/to/judge --data ~/data/VideoGen-RewardBench
    unireward bench vlrb        --model path/to/judge --data ~/data/VL-RewardBench --protocol clean
    unireward bench mmrb        --model path/to/judge --data ~/data/multimodal_rewardbench/data
    unireward bench mmrb2       --model path/to/judge --data ~/data/MMRB2/benchmark --protocol reference
    unireward bench editreward  --model path/to/judge --data ~/data/EditReward-Bench
    unireward bench mmrb2       --model pickscore --data ~/data/MMRB2/benchmark --task t2i   # a scorer
    unireward bench pairs       --model path/to/judge --data my_pairs.jsonl
    unireward bench samples     --model path/to/judge --data heldout.jsonl
    unireward bench sandbox     --model runs/judge [--data runs/world]
    unireward bench genai-image --model unifiedreward-2.0-qwen3vl-8b --data ~/data/GenAI-Bench
    unireward bench genai-image --model http://gpu1:8000/v1 --backend openai --served-model UnifiedReward \
        --checkpoint unifiedreward-think-qwen3vl-8b --data ~/data/GenAI-Bench

A registered checkpoint (`unireward models`: by short name, hub id, or a local copy) is judged with its own prompt
family and its authors' settings; --family chooses another family's prompts.

Protocols: `reference` reproduces how published UnifiedReward numbers were computed (one order, seeded swap
where the published script swapped); `clean` judges both candidate orders, counts ties only when said
explicitly, reports unparsed outputs and the position-consistency rate. Results go to --out (default
runs/bench/<name>-<protocol>-<model>): manifest.json, items.jsonl (resumable: rerun the same command to continue),
results.json, report.md and plot.png. The report is printed at the end. MMRB2 and EditReward-Bench also report
their authors' own metric (MMRB2: both orders judged separately under `reference`, every judged order counts);
VL-RewardBench reports overall and macro accuracy side by side. `--table docs/benchmarks.md` writes the run's row
into that file's results table for the benchmark (a row per model, protocol and data; see docs/benchmarks.md).
Items no unireward task (or no task of this judge, e.g. a scorer's) can judge are skipped and counted apart.

Scale out: `--shard i/n` judges only the items whose id hashes to i, into OUT/shard-i-of-n (each shard resumable on
its own; `--shard auto` reads RANK and WORLD_SIZE, as torchrun and accelerate launch set them); then

    unireward bench merge OUT OUT/shard-*

writes exactly what one unsharded run writes. A run with items that failed (status "error") exits 1.
"""

from __future__ import annotations

import argparse

NAMES = ("genai-image", "genai-video", "videogen", "vlrb", "mmrb", "mmrb2", "editreward", "pairs", "samples",
         "sandbox")


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="evaluate a judge on a reward benchmark (local copy)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=NAMES, help="the benchmark")
    p.add_argument("--model", required=True, help="model folder or hub id (hf), or server URL (openai)")
    p.add_argument("--data", help="local copy of the benchmark (sandbox: folder with heldout.jsonl, "
                                  "default runs/world)")
    p.add_argument("--protocol", choices=("reference", "clean"), default="clean")
    p.add_argument("--seed", type=int, default=0, help="seed of the reference protocol's swaps (default 0)")
    p.add_argument("--out", help="output folder (default runs/bench/<name>-<protocol>-<model>)")
    p.add_argument("--limit", type=int, help="judge only the first N items")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--backend", choices=("hf", "openai", "vllm"), default="hf",
                   help="transformers in process, an OpenAI-compatible server, or vLLM in process")
    p.add_argument("--served-model", help="openai backend: the model name on the server")
    p.add_argument("--template", help="Jinja template file replacing the task's own")
    p.add_argument("--frames", type=int, default=None, help="frames per video, uniform over the clip (default: "
                   "a registered checkpoint's own policy, else 8)")
    p.add_argument("--family", help="prompt family (default: a registered checkpoint's own, else unireward)")
    p.add_argument("--checkpoint", help="--backend openai: the registered checkpoint the server runs")
    p.add_argument("--method", default=None, choices=["auto", "probs", "generate"],
                   help="decisions from token probabilities, or generate and parse (judges that write a "
                        "rationale or checklist first); default: what the judge folder's unireward.json says, "
                        "else auto")
    p.add_argument("--split", help="dataset split (GenAI-Bench, VL-RewardBench; default test)")
    p.add_argument("--task", help="pairs: the task of every record, e.g. video-und/pair; mmrb2: the tasks to run, "
                   "comma-separated (t2i, edit, interleaved, reasoning)")
    p.add_argument("--table", help="a Markdown results file (e.g. docs/benchmarks.md): add or update this run's "
                   "row in the benchmark's table")
    p.add_argument("--table-label", help="the row's data column (default: what was run, e.g. \"fixture copy, not "
                   "the benchmark\")")
    p.add_argument("--no-swap", action="store_true", help="reference protocol: keep the dataset order")
    p.add_argument("--fresh", action="store_true", help="discard item records already in --out")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--shard", help="i/n: only the items whose id hashes to i, into OUT/shard-i-of-n (merge them "
                   "with `unireward bench merge`); auto: i/n = RANK/WORLD_SIZE (torchrun, accelerate launch)")
    p.set_defaults(func=run)

    m = subparsers.add_parser("bench merge", help="merge the shard folders of one benchmark run",
                              description="Merge the shard-i-of-n folders of one `bench ... --shard i/n` run into "
                                          "OUT: the items, results, report and plot one unsharded run writes.")
    m.add_argument("out", metavar="OUT", help="the merged output folder (e.g. the shards' parent)")
    m.add_argument("shards", nargs="+", metavar="SHARD", help="every shard folder of the run (e.g. OUT/shard-*)")
    m.set_defaults(func=run_merge)


def run(args) -> int:
    from ..bench import BenchConfig, run_bench

    cfg = BenchConfig(name=args.name, data=args.data, model=args.model, protocol=args.protocol, seed=args.seed,
                      out=args.out, limit=args.limit, batch_size=args.batch_size, backend=args.backend,
                      served_model=args.served_model, template=args.template, frames=args.frames, method=args.method,
                      family=args.family, checkpoint=args.checkpoint,
                      split=args.split, task=args.task, swap=not args.no_swap, fresh=args.fresh,
                      progress=not args.no_progress, shard=args.shard)
    results = run_bench(cfg)
    if args.table:
        from ..bench.leaderboard import update_table

        print(f"{args.table}: {update_table(args.table, results, args.table_label)}")
    return _report(results)


def run_merge(args) -> int:
    from ..bench.merge import merge_bench

    return _report(merge_bench(args.out, args.shards))


def _report(results) -> int:
    """Print the report; 1 when items failed (status "error"), with where to read why."""
    import sys

    from ..bench.report import markdown
    from ..bench.runner import ITEMS_FILE, count_errors

    print(markdown(results))
    print(f"results in {results['out']}")
    errors = count_errors(results)
    if errors:
        print(f"unireward bench: {errors} item(s) failed: their records in {results['out']}/{ITEMS_FILE} say why "
              "(status \"error\", reason); the metrics count them as errors", file=sys.stderr)
        return 1
    return 0
