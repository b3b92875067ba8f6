"""`unireward construct`: build DPO preference pairs with a judge, resumably, from a YAML preset.

    unireward construct --config construct/sandbox_generator
    unireward construct --config construct/sdxl_turbo prompts=captions.jsonl num_candidates=10
    unireward construct --config construct/llava_ov_7b --print-config

Fields: `unireward.construct.run.ConstructConfig`. The output folder gets records.jsonl (one record per prompt,
with every candidate, verdict and score), the generated media, and the trainer exports (dpo_trl.jsonl for
`unireward train dpo`, diffusion_dpo.jsonl for `unireward train diffusion-dpo`). Run the same command again after
a crash: prompts already recorded are skipped.
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


def run(args) -> int:
    import json

    import yaml

    from ..construct.run import ConstructConfig, run_construct
    from ..config import load_config, to_dict

    config = load_config(ConstructConfig, args.config, args.overrides)
    if args.no_progress:
        config.progress = False
    if args.print_config:
        print(yaml.safe_dump(to_dict(config), sort_keys=False), end="")
        return 0
    result = run_construct(config)
    print(json.dumps({"output_dir": str(result.output_dir), "records": str(result.records_path),
                      "prompts": result.prompts, "done_before": result.done_before, "kept": result.kept,
                      "dropped": result.dropped, "errors": result.errors, "exports": result.exports,
                      "runtime_s": round(result.runtime_s, 2)}, indent=2))
    return 0
