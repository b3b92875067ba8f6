"""`unireward data`: convert public datasets, build mixtures, export to trainers, list sources.

    unireward data sources
    unireward data convert hpd /data/HPDv2 --out corpus/hpd.jsonl --option split=train
    unireward data mix data/unified_corpus --out corpus/unified.jsonl
    unireward data export corpus/unified.jsonl --format llamafactory --out corpus/llamafactory
"""

from __future__ import annotations

import json
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="convert, mix and export training data",
                              description="Convert public preference datasets, mix them, export them.")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    s = sub.add_parser("sources", help="list the dataset converters and their options")
    s.set_defaults(func=cmd_sources)

    c = sub.add_parser("convert", help="convert one local dataset copy to unified JSONL")
    c.add_argument("source", help="converter name (see `unireward data sources`)")
    c.add_argument("path", help="local copy of the dataset, in its published layout")
    c.add_argument("--out", required=True, help="output JSONL")
    c.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="converter option (value parsed as YAML), repeatable")
    c.add_argument("--copy-media", action="store_true", help="copy media next to the output (relative paths)")
    c.add_argument("--limit", type=int, default=None, help="stop after N samples")
    c.set_defaults(func=cmd_convert)

    m = sub.add_parser("mix", help="build a shuffled, de-duplicated corpus from a mixture config")
    m.add_argument("config", help="a mixture YAML file or a preset name (e.g. data/fixtures)")
    m.add_argument("--out", required=True, help="output JSONL")
    m.add_argument("--json", action="store_true", help="print the report as JSON")
    m.set_defaults(func=cmd_mix)

    e = sub.add_parser("export", help="export unified JSONL to a trainer's format")
    e.add_argument("samples", help="unified JSONL")
    e.add_argument("--format", required=True, choices=["llamafactory", "trl"])
    e.add_argument("--out", required=True, help="output folder")
    e.add_argument("--name", default=None, help="dataset name (default: the JSONL's stem)")
    e.set_defaults(func=cmd_export)


def _options(pairs: list[str]) -> dict:
    import yaml

    from ..errors import ConfigError

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option wants KEY=VALUE, got {pair!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def cmd_sources(args) -> int:
    from ..data.sources import describe, embeds_media, list_sources, options

    for name in list_sources():
        opts = ", ".join(f"{k}={v!r}" for k, v in options(name).items())
        flag = " [embedded media: needs --out folder]" if embeds_media(name) else ""
        print(f"{name}{flag}\n    {describe(name)}\n    options: {opts}")
    return 0


def cmd_convert(args) -> int:
    from itertools import islice
    from pathlib import Path

    from tqdm import tqdm

    from ..data.schema import write_samples
    from ..data.sources import convert_source, embeds_media

    out = Path(args.out)
    opts = _options(args.option)
    if args.copy_media:
        opts["copy_media"] = True
    media_dir = out.parent if (args.copy_media or embeds_media(args.source)) else None
    stream = convert_source(args.source, args.path, media_dir, **opts)
    if args.limit is not None:
        stream = islice(stream, args.limit)
    partial = out.with_name(out.name + ".partial")  # renamed to `out` only once every row converted
    try:
        n = write_samples(partial, tqdm(stream, desc=f"convert {args.source}", unit=" samples", disable=None))
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(out)
    print(f"wrote {n} samples to {out}")
    return 0


def cmd_mix(args) -> int:
    from ..data.mixture import build_mixture

    report = build_mixture(args.config, args.out, progress=sys.stderr.isatty())
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    return 0


def cmd_export(args) -> int:
    from ..data.export import export

    path = export(args.samples, args.format, args.out, name=args.name, progress=sys.stderr.isatty())
    print(f"wrote {path}")
    return 0
