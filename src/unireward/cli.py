"""The `unireward` command line. Each sub-command lives in `unireward/commands/<module>.py`, which exposes
`register(subparsers)`; heavy imports happen inside the command functions, so `--help` is instant. A module may
register a two-word command (`construct merge`) beside a command that takes free KEY=VALUE arguments."""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import UnirewardError

# module name under unireward.commands, in the order they are listed in --help
COMMAND_MODULES = ["judge", "best_of_n", "prompt", "parse", "demo", "train", "construct", "bench", "data", "serve",
                   "models"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unireward", description="Unified multimodal reward models.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"unireward.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"unireward.commands.{name}":
                continue
            raise
        module.register(sub)
    parser.set_defaults(two_word_commands=sorted(name for name in sub.choices if " " in name))
    return parser


def join_two_word_command(argv: list[str], two_word: list[str]) -> list[str]:
    """`["construct", "merge", ...]` -> `["construct merge", ...]` when that two-word command is registered."""
    if len(argv) >= 2 and f"{argv[0]} {argv[1]}" in two_word:
        return [f"{argv[0]} {argv[1]}", *argv[2:]]
    return argv


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(join_two_word_command(argv, parser.get_default("two_word_commands")))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UnirewardError as e:
        print(f"unireward {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
