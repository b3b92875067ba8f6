"""`unireward train`: run a training recipe from a YAML preset with key=value overrides.

    unireward train sft --config sft/tiny max_steps=20 lr=1e-3
    unireward train sft --config sft/tiny --print-config
    accelerate launch --config_file src/unireward/configs/accelerate/zero2.yaml -m unireward train sft \\
        --config sft/qwen2_5_vl_7b
    unireward train dpo --config dpo/<preset>
    unireward train diffusion-dpo --config diffusion_dpo/sandbox steps=50
    unireward train reject --config reject/sandbox k=8
    unireward train grpo-judge --config grpo_judge/sandbox max_steps=20

Recipes: sft (judge training, `unireward.train.sft`), dpo (VLM alignment, `unireward.train.dpo`) and
diffusion-dpo (image / video generators, `unireward.train.diffusion_dpo`), reject (rejection sampling of a judge's
own reasoning into SFT data and a hard set, `unireward.train.rejection`) and grpo-judge (GRPO of a reasoning
judge on verdict accuracy + format, `unireward.train.grpo_judge`). Each is imported only when run.
"""

from __future__ import annotations

import argparse
import importlib

# recipe -> (module, function taking (config_path, overrides))
RECIPES = {
    "sft": ("unireward.train.sft", "run_sft_from_config"),
    "dpo": ("unireward.train.dpo", "run_dpo_from_config"),
    "diffusion-dpo": ("unireward.train.diffusion_dpo", "train_diffusion_dpo_from_config"),
    "reject": ("unireward.train.rejection", "run_rejection_from_config"),
    "grpo-judge": ("unireward.train.grpo_judge", "run_grpo_judge_from_config"),
}


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a judge (sft) or align a model (dpo, diffusion-dpo)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", choices=list(RECIPES), help="which recipe to run")
    # options and KEY=VALUE overrides may come in any order, so they are parsed by `_recipe_parser` in `run`
    p.add_argument("rest", nargs=argparse.REMAINDER, metavar="--config YAML [--print-config] [KEY=VALUE ...]",
                   help="the preset, and overrides of its fields, e.g. max_steps=10 lr=1e-4")
    p.set_defaults(func=run)


def _recipe_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="unireward train RECIPE", add_help=False)
    p.add_argument("--config", "-c", help="a YAML file or a preset name (e.g. sft/tiny; src/unireward/configs/)")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config (preset + overrides) and exit (sft, reject, grpo-judge)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    return p


def run(args) -> int:
    from ..errors import ConfigError

    parsed, unknown = _recipe_parser().parse_known_intermixed_args(args.rest)
    if {"-h", "--help"} & set(unknown):
        print(__doc__)
        return 0
    if unknown:
        raise ConfigError(f"unrecognised option(s) {unknown}; use --config YAML, --print-config and KEY=VALUE")
    if not parsed.config:
        raise ConfigError(f"unireward train {args.recipe} needs --config: a YAML file or a preset name (e.g. sft/tiny)")
    args.config, args.print_config, args.overrides = parsed.config, parsed.print_config, parsed.overrides
    module_name, func_name = RECIPES[args.recipe]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name == module_name:
            raise ConfigError(f"the {args.recipe} recipe ({module_name}) is not part of this installation yet") \
                from None
        raise
    if args.print_config:
        return _print_config(args, module)
    result = getattr(module, func_name)(args.config, list(args.overrides))
    _report(result)
    return 0


def _print_config(args, module) -> int:
    import yaml

    from ..errors import ConfigError
    from ..config import load_config, to_dict

    cls = getattr(module, "CONFIG_CLASS", None) or getattr(module, "SFTRecipeConfig", None)
    if cls is None:
        raise ConfigError(f"--print-config is not supported for {args.recipe}")
    print(yaml.safe_dump(to_dict(load_config(cls, args.config, args.overrides)), sort_keys=False), end="")
    return 0


def _report(result) -> None:
    import dataclasses
    import json

    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        summary = {k: (str(v) if hasattr(v, "__fspath__") else v) for k, v in dataclasses.asdict(result).items()}
        print(json.dumps(summary, default=str, indent=2))
    elif result is not None:
        print(result)
