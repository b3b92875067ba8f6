"""Exports (LLaMA-Factory ShareGPT, TRL prompt/completion) and their round trips; the `unireward data` CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from unireward.config import PRESETS
from unireward.data.export import completion_text, export, load_trl_export
from unireward.data.mixture import build_mixture
from unireward.data.schema import read_samples
from unireward.tasks import get_task

ROOT = Path(__file__).parent.parent
FIX = ROOT / "tests" / "fixtures" / "datasets"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    build_mixture(PRESETS / "data" / "fixtures.yaml", out)
    return out


def test_llamafactory_export(corpus, tmp_path):
    data_file = export(corpus, "llamafactory", tmp_path, name="unified")
    records = json.loads(data_file.read_text())
    samples = list(read_samples(corpus))
    assert len(records) == len(samples)
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert info["unified"] == {
        "file_name": "unified.json", "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images", "videos": "videos"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}}
    for s, r in zip(samples, records):
        user, assistant = r["messages"]
        assert user["role"] == "user" and assistant == {"role": "assistant", "content": s.target}
        task = get_task(s.task)
        assert user["content"].count("<image>") == len(r["images"])
        assert user["content"].count("<video>") == len(r["videos"])
        assert len(r["images"] if task.modality == "image" else r["videos"]) == len(s.media)
        assert s.prompt in user["content"] and all(a in user["content"] for a in s.answers)
        for m in r["images"] + r["videos"]:
            assert all(Path(f).is_absolute() and Path(f).is_file() for f in (m if isinstance(m, list) else [m]))
    export(corpus, "llamafactory", tmp_path, name="second")  # entries are merged, not overwritten
    assert set(json.loads((tmp_path / "dataset_info.json").read_text())) == {"unified", "second"}


def test_trl_export_round_trip(corpus, tmp_path):
    data_file = export(corpus, "trl", tmp_path)
    rows = load_trl_export(data_file)
    samples = {s.id: s for s in read_samples(corpus)}
    assert len(rows) == len(samples)
    for row in rows:
        s = samples[row["id"]]
        task = get_task(row["task"])
        (user,) = row["prompt"]
        assert user["role"] == "user" and row["completion"][0]["role"] == "assistant"
        placeholders = [p["type"] for p in user["content"] if p["type"] != "text"]
        assert placeholders == [task.modality] * len(s.media)
        assert len(row["images"]) + len(row["videos"]) == len(s.media)
        verdict = task.parse(completion_text(row))
        assert (verdict.winner if task.is_pair else verdict.score) == s.label  # labels recovered by the parser
        text = "".join(p["text"] for p in user["content"] if p["type"] == "text")
        assert text.startswith("You are") and task.answer.prefix.strip() in text


def test_trl_rows_open_as_images(corpus, tmp_path):
    from PIL import Image

    rows = load_trl_export(export(corpus, "trl", tmp_path))
    row = next(r for r in rows if r["images"])
    with Image.open(row["images"][0]) as im:
        assert im.size == (8, 8)


def cli(*args, cwd=ROOT):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "unireward", "data", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_end_to_end(tmp_path):
    r = cli("sources")
    assert r.returncode == 0 and "sharegptvideo_dpo" in r.stdout and "hpd" in r.stdout
    r = cli("convert", "hpd", str(FIX / "hpd"), "--out", str(tmp_path / "hpd.jsonl"), "-o", "ties=keep")
    assert r.returncode == 0, r.stderr
    assert len(list(read_samples(tmp_path / "hpd.jsonl"))) == 4
    r = cli("convert", "pickapic", str(FIX / "pickapic"), "--out", str(tmp_path / "pp" / "pp.jsonl"))
    assert r.returncode == 0, r.stderr  # embedded images are written next to the output
    assert all((tmp_path / "pp" / m).is_file() for s in read_samples(tmp_path / "pp" / "pp.jsonl") for m in s.media)
    r = cli("mix", "data/fixtures", "--out", str(tmp_path / "mix" / "c.jsonl"), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["total"] == 38
    for fmt in ("llamafactory", "trl"):
        r = cli("export", str(tmp_path / "mix" / "c.jsonl"), "--format", fmt, "--out", str(tmp_path / fmt))
        assert r.returncode == 0, r.stderr
    assert (tmp_path / "llamafactory" / "dataset_info.json").is_file()
    assert len(load_trl_export(tmp_path / "trl" / "c.jsonl")) == 38


def test_cli_errors_are_clean(tmp_path):
    r = cli("convert", "hpd", str(tmp_path / "missing"), "--out", str(tmp_path / "x.jsonl"))
    assert r.returncode == 1 and "error:" in r.stderr and "Traceback" not in r.stderr
    r = cli("convert", "nope", str(FIX / "hpd"), "--out", str(tmp_path / "x.jsonl"))
    assert r.returncode == 1 and "unknown source 'nope'" in r.stderr
