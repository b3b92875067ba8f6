"""Scale-out (issue 26, item 4): `shard=i/n` splits construct and bench runs by a stable hash of the item id; each
shard resumes on its own; `construct merge` / `bench merge` give exactly what one unsharded run writes (records
byte for byte, in the same order; the same exports, results and report), and refuse shards that do not make up
one run, naming the folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from unireward.errors import ConfigError, DataError
from unireward.shards import Shard, parse_shard, shard_of


# ---------------------------------------------------------------- the split


def test_every_id_is_in_exactly_one_shard_whatever_the_order():
    ids = [f"p{i:05d}" for i in range(2000)] + ["ünïcode/ id", "42", ""]
    for n in (1, 2, 3, 8):
        shards = [Shard(i, n) for i in range(n)]
        owners = [[s.index for s in shards if s.owns(i)] for i in ids]
        assert all(len(o) == 1 for o in owners)
        sizes = np.bincount([o[0] for o in owners], minlength=n)
        assert sizes.min() > 0.8 * len(ids) / n  # balanced
        picked = shards[n - 1].select(ids[::-1], key=str)
        assert sorted(i for _, i in picked) == sorted(i for i in ids if shard_of(i, n) == n - 1)
    # fixed values: the split must never change between releases, machines or processes
    assert [shard_of(i, 8) for i in ("p00000", "p00001", "a", "")] == [0, 1, 4, 5]


def test_the_split_does_not_depend_on_the_python_hash_seed():
    code = "from unireward.shards import shard_of; print([shard_of(f'id{i}', 7) for i in range(50)])"
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": seed, "PYTHONPATH": ":".join(sys.path)}).stdout
            for seed in ("1", "2")}
    assert len(outs) == 1 and outs.pop().strip() == str([shard_of(f"id{i}", 7) for i in range(50)])


def test_parse_shard():
    assert parse_shard("1/4") == Shard(1, 4) and str(Shard(1, 4)) == "1/4" and Shard(1, 4).folder == "shard-1-of-4"
    assert parse_shard(None) is None and parse_shard("") is None
    assert parse_shard("auto", {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1"}) == Shard(3, 8, 1)
    for bad in ("4/4", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(ConfigError, match="i/n with 0 <= i < n"):
            parse_shard(bad)
    with pytest.raises(ConfigError, match="RANK and WORLD_SIZE.*shard=i/n"):
        parse_shard("auto", {})


def test_a_shard_on_cuda_takes_its_local_rank_gpu():
    from unireward.construct.run import rank_device

    assert rank_device("cuda", 3) == "cuda:3"
    assert rank_device("cuda", None) == "cuda" and rank_device(None, 3) is None and rank_device("cuda:1", 3) == "cuda:1"


# ---------------------------------------------------------------- construct: the sandbox generator preset


def _records(out: Path) -> bytes:
    return (out / "records.jsonl").read_bytes()


@pytest.fixture(scope="module")
def construct_runs(tmp_path_factory):
    """The shipped preset construct/sandbox_generator (oracle judge) at test size: one unsharded run, shard 0/2
    from the library, shard 1/2 from the CLI with shard=auto (RANK/WORLD_SIZE as torchrun sets them)."""
    from unireward.cli import main
    from unireward.config import load_config
    from unireward.construct.run import ConstructConfig, run_construct
    from unireward.sandbox.generator import build_generator, save_generator
    from unireward.sandbox.world import sample_scene

    tmp = tmp_path_factory.mktemp("construct")
    save_generator(build_generator(seed=0), tmp / "gen")
    rng = np.random.default_rng(0)
    with (tmp / "prompts.jsonl").open("w") as f:
        for i in range(12):
            f.write(json.dumps({"id": f"p{i:02d}", "prompt": sample_scene(rng).caption()}) + "\n")
    overrides = [f"prompts={tmp / 'prompts.jsonl'}", f"policy_model={tmp / 'gen'}", "ddim_steps=1",
                 "num_candidates=4", "progress=false"]
    run_construct(load_config(ConstructConfig, "construct/sandbox_generator",
                              [*overrides, f"output_dir={tmp / 'one'}"]))
    sharded = tmp / "sharded"
    first = run_construct(load_config(ConstructConfig, "construct/sandbox_generator",
                                      [*overrides, f"output_dir={sharded}", "shard=0/2", "chunk_size=3"]))
    mp = pytest.MonkeyPatch()
    mp.setenv("RANK", "1")
    mp.setenv("WORLD_SIZE", "2")
    try:
        assert main(["construct", "--config", "construct/sandbox_generator", *overrides, f"output_dir={sharded}",
                     "shard=auto"]) == 0
    finally:
        mp.undo()
    return {"tmp": tmp, "one": tmp / "one", "sharded": sharded, "overrides": overrides, "first": first}


def test_two_shards_merged_equal_one_run(construct_runs, capsys):
    from unireward.cli import main

    one, sharded = construct_runs["one"], construct_runs["sharded"]
    shards = [sharded / "shard-0-of-2", sharded / "shard-1-of-2"]
    ids = [[json.loads(line)["id"] for line in _records(s).splitlines()] for s in shards]
    assert ids[0] and ids[1] and not set(ids[0]) & set(ids[1]) and len(ids[0]) + len(ids[1]) == 12
    assert all(shard_of(i, 2) == k for k in (0, 1) for i in ids[k])
    assert "shard: 1/2" in (shards[1] / "construct_config.yaml").read_text()  # auto, resolved

    capsys.readouterr()
    assert main(["construct", "merge", str(sharded), *map(str, shards[::-1])]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["prompts"] == 12 and summary["kept"] + summary["dropped"] == 12
    assert _records(sharded) == _records(one)  # the same records, byte for byte, in the same order
    recs = [json.loads(line) for line in _records(one).splitlines()]
    assert [r["id"] for r in recs] == [f"p{i:02d}" for i in range(12)]
    for r in recs:  # every candidate's media is in the merged folder, with the same pixels
        for c in r["candidates"]:
            assert (sharded / c["path"]).read_bytes() == (one / c["path"]).read_bytes()
    export = "diffusion_dpo.jsonl"
    assert (sharded / export).read_text().replace(str(sharded), "") == (one / export).read_text().replace(str(one), "")
    assert (sharded / "construct_config.yaml").read_text().replace(str(sharded), "") == \
        (one / "construct_config.yaml").read_text().replace(str(one), "").replace("chunk_size: 16", "chunk_size: 3")
    # merging again (a shard was redone, say) replaces the merge
    assert main(["construct", "merge", str(sharded), *map(str, shards)]) == 0
    assert _records(sharded) == _records(one)


def test_a_shard_resumes_on_its_own(construct_runs):
    from unireward.config import load_config
    from unireward.construct.run import ConstructConfig, run_construct

    sharded, tmp = construct_runs["sharded"], construct_runs["tmp"]
    copy = tmp / "resumed"
    import shutil

    shutil.copytree(sharded / "shard-0-of-2", copy / "shard-0-of-2")
    records = copy / "shard-0-of-2" / "records.jsonl"
    lines = records.read_bytes().splitlines(keepends=True)
    records.write_bytes(lines[0] + lines[1][:20])  # killed while writing the second record
    res = run_construct(load_config(ConstructConfig, "construct/sandbox_generator",
                                    [*construct_runs["overrides"], f"output_dir={copy}", "shard=0/2"]))
    assert res.done_before == 1 and res.prompts == len(lines)
    assert records.read_bytes() == _records(sharded / "shard-0-of-2")
    with pytest.raises(ConfigError, match="shard of another run .*seed"):
        run_construct(load_config(ConstructConfig, "construct/sandbox_generator",
                                  [*construct_runs["overrides"], f"output_dir={copy}", "shard=0/2", "seed=1"]))


def test_construct_merge_refuses_what_is_not_one_whole_run(construct_runs, tmp_path):
    import shutil

    from unireward.construct.merge import merge_construct

    src = construct_runs["sharded"]
    s0, s1 = tmp_path / "shard-0-of-2", tmp_path / "shard-1-of-2"
    shutil.copytree(src / "shard-0-of-2", s0)
    shutil.copytree(src / "shard-1-of-2", s1)
    with pytest.raises(ConfigError, match="shard 1/2 missing"):
        merge_construct(tmp_path / "m", [s0])
    with pytest.raises(ConfigError, match="shard-0-of-2 are both shard 0/2"):
        merge_construct(tmp_path / "m", [s0, s1, s0])
    with pytest.raises(ConfigError, match="not a shard folder"):
        merge_construct(tmp_path / "m", [s0, tmp_path])
    with pytest.raises(ConfigError, match="is a shard folder"):
        merge_construct(s0, [s0, s1])
    with pytest.raises(ConfigError, match="already holds the records.jsonl of a run"):
        merge_construct(construct_runs["one"], [s0, s1])

    other = tmp_path / "other" / "shard-1-of-2"
    shutil.copytree(s1, other)
    manifest = json.loads((other / "shard.json").read_text())
    manifest["run"]["seed"] = 1
    (other / "shard.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match=f"{other} is a shard of another run .*seed"):
        merge_construct(tmp_path / "m", [s0, other])
    manifest["run"]["seed"], manifest["ids"][0] = 0, json.loads((s0 / "shard.json").read_text())["ids"][0]
    (other / "shard.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="is in both"):
        merge_construct(tmp_path / "m", [s0, other])

    records = s1 / "records.jsonl"
    records.write_bytes(b"".join(records.read_bytes().splitlines(keepends=True)[:-1]))
    with pytest.raises(DataError, match="shard-1-of-2: shard 1/2 is unfinished .*run it again"):
        merge_construct(tmp_path / "m", [s0, s1])


# ---------------------------------------------------------------- bench: the fixture benchmarks, scripted judge


def _bench(name, out, protocol, **kw):
    from test_bench import DATA, scripted

    from unireward.bench import BenchConfig, run_bench

    return run_bench(BenchConfig(name, data=str(DATA[name]), protocol=protocol, out=str(out), progress=False, **kw),
                     judge=scripted(with_probs=True))


def _comparable(results_json: Path) -> dict:
    res = json.loads(results_json.read_text())
    res["manifest"].pop("timestamp")
    res["manifest"]["config"].pop("out")
    return res


@pytest.mark.parametrize("name, protocol, limit", [("vlrb", "reference", None), ("genai-image", "reference", 7),
                                                   ("sandbox", "clean", None)])
def test_two_bench_shards_merged_equal_one_run(tmp_path, name, protocol, limit):
    from unireward.bench.merge import merge_bench

    one = _bench(name, tmp_path / "one", protocol, limit=limit)
    shards = [_bench(name, tmp_path / "sharded", protocol, limit=limit, shard=s)["out"] for s in ("1/2", "0/2")]
    assert [Path(s).name for s in shards] == ["shard-1-of-2", "shard-0-of-2"]
    merged = merge_bench(tmp_path / "merged", shards)
    a, b = tmp_path / "one", tmp_path / "merged"
    assert (b / "items.jsonl").read_bytes() == (a / "items.jsonl").read_bytes()
    assert _comparable(b / "results.json") == _comparable(a / "results.json")
    assert (b / "report.md").read_text() == (a / "report.md").read_text()
    assert merged["overall"] == one["overall"] and merged["n_items"] == one["n_items"]
    if protocol == "reference":  # the seeded swaps are the full run's, whichever shard an item fell in
        recs = [json.loads(line) for line in (b / "items.jsonl").read_text().splitlines()]
        assert any(r["swapped"] for r in recs) and not all(r["swapped"] for r in recs)


def test_bench_shard_auto_resume_and_merge_errors(tmp_path, monkeypatch):
    from unireward.bench.merge import merge_bench
    from unireward.cli import main

    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    s0 = Path(_bench("vlrb", tmp_path / "run", "reference", shard="auto")["out"])
    assert s0.name == "shard-0-of-2" and json.loads((s0 / "manifest.json").read_text())["config"]["shard"] == "0/2"
    with pytest.raises(ConfigError, match="shard 1/2 missing"):
        merge_bench(tmp_path / "m", [s0])
    s1 = Path(_bench("vlrb", tmp_path / "run", "reference", shard="1/2", seed=1)["out"])
    with pytest.raises(ConfigError, match="shard of another run .*seed"):
        merge_bench(tmp_path / "m", [s0, s1])
    with pytest.raises(ConfigError, match="shard-1-of-2 holds a shard of another run .*seed"):
        _bench("vlrb", tmp_path / "run", "reference", shard="1/2")
    s1 = Path(_bench("vlrb", tmp_path / "run", "reference", shard="1/2", fresh=True)["out"])
    items = s1 / "items.jsonl"
    lines = items.read_bytes().splitlines(keepends=True)
    items.write_bytes(b"".join(lines[:-1]))
    with pytest.raises(DataError, match="shard 1/2 is unfinished"):
        merge_bench(tmp_path / "m", [s0, s1])
    _bench("vlrb", tmp_path / "run", "reference", shard="1/2")  # resumes: judges only the missing item
    assert items.read_bytes() == b"".join(lines)
    assert main(["bench", "merge", str(tmp_path / "m"), str(s0), str(s1)]) == 0
    assert (tmp_path / "m" / "items.jsonl").read_bytes().count(b"\n") == 10


def test_a_bench_with_failed_items_exits_1(tmp_path, capsys):
    from unireward.cli import main

    _bench("genai-video", tmp_path / "run", "clean", shard="0/1")  # item 5's video is missing: an error record
    assert main(["bench", "merge", str(tmp_path / "m"), str(tmp_path / "run" / "shard-0-of-1")]) == 1
    assert "1 item(s) failed" in capsys.readouterr().err
