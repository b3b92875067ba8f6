"""Mixtures: strategies, de-duplication, seed determinism, env-expanded paths, the shipped configs."""

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from unireward.config import PRESETS
from unireward.data.mixture import build_mixture, load_config, parse_strategy, reservoir
from unireward.data.schema import read_samples
from unireward.errors import ConfigError

ROOT = Path(__file__).parent.parent
FIX = ROOT / "tests" / "fixtures" / "datasets"


def cfg(*sources, seed=0):
    return {"seed": seed, "sources": list(sources)}


def src(name, strategy="all", **kw):
    return {"name": name, "path": str(FIX / name), "strategy": strategy, **kw}


def ids(path):
    return [s.id for s in read_samples(path)]


def test_fixture_config_builds_all_tasks(tmp_path):
    out = tmp_path / "mix" / "corpus.jsonl"
    report = build_mixture(PRESETS / "data" / "fixtures.yaml", out)
    samples = list(read_samples(out))  # relative media resolve against the corpus folder
    assert report.total == len(samples) == 38
    assert len(report.tasks) == 8 and sum(report.tasks.values()) == 38
    counts = {s.name: (s.converted, s.selected, s.kept) for s in report.sources}
    assert counts["pickapic"] == (2, 2, 2) and counts["videofeedback"] == (4, 3, 3)
    for s in samples:
        for m in s.media_paths(out.parent):
            assert all(Path(f).is_file() for f in (m if isinstance(m, list) else [m]))
    assert "total 38 samples" in report.format()


def test_strategies(tmp_path):
    build_mixture(cfg(src("evalmuse", "first:2")), tmp_path / "first.jsonl")
    assert len(ids(tmp_path / "first.jsonl")) == 2
    r = build_mixture(cfg(src("evalmuse", "random:3")), tmp_path / "rand.jsonl")
    assert r.sources[0].converted == 7 and r.total == 3
    r = build_mixture(cfg(src("evalmuse", "random:50")), tmp_path / "all.jsonl")
    assert r.total == 7
    for bad in ("some", "random:", "first:x", "random:-1"):
        with pytest.raises(ConfigError, match="strategy must be"):
            parse_strategy(bad, "sources[0]")


def test_reservoir_is_uniformish_and_ordered():
    import random

    hits = Counter()
    for k in range(400):
        chosen, seen = reservoir(range(10), 3, random.Random(k))
        assert seen == 10 and chosen == sorted(chosen) and len(chosen) == 3
        hits.update(chosen)
    assert min(hits.values()) > 60  # each of 10 items expected 120 times


def test_dedup_drops_exact_duplicates(tmp_path):
    report = build_mixture(cfg(src("hpd"), src("hpd"), src("hpd", options={"ties": "keep"})), tmp_path / "d.jsonl")
    names = [s.name for s in report.sources]
    assert names == ["hpd", "hpd#2", "hpd#3"]
    assert [(s.selected, s.duplicates, s.kept) for s in report.sources] == [(3, 0, 3), (3, 3, 0), (4, 3, 1)]
    assert report.total == 4 and len(set(ids(tmp_path / "d.jsonl"))) == 4


def test_seed_determinism(tmp_path):
    c = cfg(src("evalmuse", "random:4"), src("videofeedback", "random:2"), src("hpd"), seed=7)
    build_mixture(c, tmp_path / "a.jsonl")
    build_mixture(c, tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()
    build_mixture({**c, "seed": 8}, tmp_path / "c.jsonl")
    assert ids(tmp_path / "c.jsonl") != ids(tmp_path / "a.jsonl")
    assert sorted(ids(tmp_path / "a.jsonl")) != [] and len(ids(tmp_path / "a.jsonl")) == 9


def test_env_paths_and_config_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("UNIREWARD_TEST_ROOT", str(FIX))
    f = tmp_path / "mix.yaml"
    f.write_text(yaml.safe_dump(cfg({"name": "hpd", "path": "${UNIREWARD_TEST_ROOT}/hpd"})))
    assert build_mixture(f, tmp_path / "o.jsonl").total == 3
    monkeypatch.delenv("UNIREWARD_TEST_ROOT")
    with pytest.raises(ConfigError, match=r"UNIREWARD_TEST_ROOT.*not set"):
        build_mixture(f, tmp_path / "o.jsonl")
    with pytest.raises(ConfigError, match="non-empty 'sources'"):
        build_mixture({"seed": 0}, tmp_path / "o.jsonl")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['weight'\]"):
        build_mixture(cfg(src("hpd", weight=2)), tmp_path / "o.jsonl")
    with pytest.raises(ConfigError, match="unknown source"):
        build_mixture(cfg(src("hpd") | {"name": "hpdv9"}), tmp_path / "o.jsonl")


def test_unified_corpus_config_is_well_formed():
    data, _ = load_config(PRESETS / "data" / "unified_corpus.yaml")
    from unireward.data.sources import SOURCES, options

    sizes = {}
    for i, e in enumerate(data["sources"]):
        assert e["name"] in SOURCES and e["path"].startswith("${DATA_ROOT}/")
        assert set(e.get("options", {})) <= set(options(e["name"]))
        kind, n = parse_strategy(e["strategy"], f"sources[{i}]")
        sizes[e.get("label", e["name"])] = n
    assert sizes["hpd"] == 25600 and sizes["evalmuse-point"] == 32700 and sizes["evalmuse-pair"] == 3000
    assert sizes["llava_critic-pair"] == sizes["llava_critic-point"] == 25000
    assert json.dumps(data)  # plain data
