"""`unireward construct`: build DPO preference pairs with a judge, resumably, from a YAML preset.

    unireward construct --config construct/sandbox_generator
    unireward construct --config construct/sdxl_turbo prompts=captions.jsonl num_candidates=10
    unireward construct --config construct/llava_ov_7b --print-config

Fields: `unireward.construct.run.ConstructConfig`. The output folder gets records.jsonl (one record per prompt,
with every candidate, verdict and score), the generated media, and the trainer exports (dpo_trl.jsonl for
`unireward train dpo`, diffusion_dpo.jsonl for `unireward train diffusion-dpo`). Run the same command again after
a crash: prompts already recorded are skipped.

Scale out: `shard=i/n` takes only the prompts whose id hashes to i and writes output_dir/shard-i-of-n (each shard
resumable on its own; `shard=auto` reads RANK and WORLD_SIZE, as torchrun and accelerate launch set them); then

    unireward construct merge OUTPUT_DIR OUTPUT_DIR/shard-*

writes exactly what one unsharded run writes. A run whose prompts failed (records with status "error") exits 1.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("construct", help="build DPO preference pairs: sample, pair-rank, point-sift",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", "-c", required=True,
                   help="a YAML file or a preset name (e.g. construct/sandbox_generator)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="override preset fields, e.g. limit=100")
    p.set_defaults(func=run)

    m = subparsers.add_parser("construct merge", help="merge the shard folders of one construction run",
                              description="Merge the shard-i-of-n folders of one `construct ... shard=i/n` run into "
                                          "OUT: the records, media and exports one unsharded run writes.")
    m.add_argument("out", metavar="OUT", help="the merged output folder (e.g. the shards' parent, output_dir)")
    m.add_argument("shards", nargs="+", metavar="SHARD", help="every shard folder of the run (e.g. OUT/shard-*)")
    m.set_defaults(func=run_merge)


def run(args) -> int:
    import yaml

    from ..construct.run import ConstructConfig, run_construct
    from ..config import load_config, to_dict

    config = load_config(ConstructConfig, args.config, args.overrides)
    if args.no_progress:
        config.progress = False
    if args.print_config:
        print(yaml.safe_dump(to_dict(config), sort_keys=False), end="")
        return 0
    return _report(run_construct(config))


def run_merge(args) -> int:
    from ..construct.merge import merge_construct

    return _report(merge_construct(args.out, args.shards))


def _report(result) -> int:
    """Print the run's summary as JSON; 1 when prompts failed (status "error"), with what to do."""
    import json
    import sys

    print(json.dumps({"output_dir": str(result.output_dir), "records": str(result.records_path),
                      "prompts": result.prompts, "done_before": result.done_before, "kept": result.kept,
                      "dropped": result.dropped, "errors": result.errors, "exports": result.exports,
                      "runtime_s": round(result.runtime_s, 2)}, indent=2))
    if result.errors:
        print(f"unireward construct: {result.errors} prompt(s) failed: their records in {result.records_path} say "
              "why (status \"error\", reason); the exports leave them out", file=sys.stderr)
        return 1
    return 0
