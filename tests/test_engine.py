"""The engine end to end: accounting, determinism, immutability, barriers, dry runs, resume."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from frcorpus.cli import app
from frcorpus.config import load_pipeline
from frcorpus.engine.plan import RunError, build_plan
from frcorpus.engine.run import run_plan
from frcorpus.stages import record_model
from tests.conftest import REPO, chat, run_pipeline, write_jsonl, write_pipeline

runner = CliRunner()


def check_accounting(version_dir: Path) -> dict:
    """The contract of every run: read == kept + rejected per source, and the files agree."""
    stats = json.loads((version_dir / "stats.json").read_text())
    for name, s in stats["sources"].items():
        assert s["read"] == s["kept"] + s["rejected"], name
    data = pl.read_parquet(version_dir / "data" / "*.parquet")
    assert data.height == stats["totals"]["kept"]
    rejects = list((version_dir / "rejects").glob("*.parquet"))
    n_rejects = pl.read_parquet(rejects).height if rejects else 0
    assert n_rejects == stats["totals"]["rejected"]
    assert stats["totals"]["read"] == stats["totals"]["kept"] + stats["totals"]["rejected"]
    if rejects:
        rej = pl.read_parquet(rejects)
        assert rej["reason"].null_count() == 0 and rej["stage"].null_count() == 0
        per_source = rej.group_by(pl.col("source").struct.field("name")).len()
        for name, n in per_source.iter_rows():
            assert stats["sources"][name]["rejected"] == n
    for row in data.iter_rows(named=True):  # every kept row is a valid canonical record
        record_model().model_validate({k: v for k, v in row.items() if v is not None})
    ids = data["id"].to_list() + (pl.read_parquet(rejects)["id"].to_list() if rejects else [])
    assert len(ids) == len(set(ids)), "record ids must be unique across data and rejects"
    return stats


def file_hashes(version_dir: Path) -> dict[str, str]:
    return {
        p.relative_to(version_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(version_dir.glob("*/*.parquet"))
    }


def test_quickstart_version_directory(tmp_path):
    os.chdir(tmp_path)
    result = runner.invoke(app, ["run", "-q", str(REPO / "pipelines" / "quickstart.yaml")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    (version_dir,) = [p for p in (tmp_path / "out" / "quickstart-fr").iterdir() if not p.name.startswith(".")]
    assert sorted(p.name for p in version_dir.iterdir()) == [
        "README.md",
        "data",
        "manifest.json",
        "manifest.sha256",
        "pipeline.resolved.yaml",
        "pipeline.yaml",
        "plots",
        "rejects",
        "stats.json",
    ]
    assert (version_dir / "pipeline.yaml").read_bytes() == (REPO / "pipelines" / "quickstart.yaml").read_bytes()
    stats = check_accounting(version_dir)
    assert stats["sources"]["conversations-fr"]["read"] == 110
    assert stats["sources"]["alpaca-mix"]["read"] == 21
    assert stats["stages"]["read"]["rejected"] == {
        "read.consecutive_roles": 1,
        "read.empty_content": 2,
        "read.invalid_json": 1,
        "read.missing_content": 1,
        "read.missing_field": 1,
        "read.no_assistant_turn": 1,
        "read.unknown_role": 1,
    }
    assert stats["stages"]["fix_text"]["counters"] == {
        "records_changed": 3,
        "turns_fixed.invisible": 1,
        "turns_fixed.mojibake": 1,
        "turns_fixed.whitespace": 1,
    }
    # the English records of the sample, one answer half in English, and one English answer fastText is
    # unsure of ("HTTP stands for..."); "Ok ?" / "Oui." is French by its words
    assert stats["stages"]["langid"]["rejected"] == {
        "langid.wrong_language(en)": 8,
        "langid.mixed(en)": 1,
        "langid.low_score": 1,
    }
    heuristics = ("ai_boilerplate", "echo_prompt", "placeholder", "refusal", "template_token", "translation_artifact")
    assert stats["stages"]["heuristics"]["rejected"] == {f"heuristics.{r}": 1 for r in (*heuristics, "truncated")}
    assert stats["stages"]["heuristics"]["counters"] == {"kept_harmful_refusals": 1}
    assert stats["stages"]["exact_dedup"]["rejected"] == {"exact_dedup.duplicate": 11}
    # the sample's two short exchanges ("Bonjour" / "Salut.", "Ok ?" / "Oui.") are small talk, which a
    # short answer answers
    assert stats["stages"]["length"]["rejected"] == {}
    assert stats["stages"]["length"]["counters"] == {"short_answers.small_talk": 2}
    # one of the two planted near copies (case, punctuation and a closing sentence changed), nothing else: the
    # other is at Jaccard 0.80 to its original, which a threshold of 0.9 (5 x 19) finds 7% of the time
    assert stats["stages"]["minhash_dedup"]["rejected"] == {"minhash_dedup.near_duplicate": 1}
    assert stats["stages"]["minhash_dedup"]["counters"] == {
        "clusters": 1,
        "largest_cluster": 2,
        "cluster_size.2": 1,
        "lsh_bands": 5,  # resolved from the threshold 0.9
        "lsh_rows": 19,
    }
    manifest = json.loads((version_dir / "manifest.json").read_text())
    assert manifest["version"] == version_dir.name
    assert manifest["rows"] == {"data": stats["totals"]["kept"], "rejects": stats["totals"]["rejected"]}
    assert {i["name"] for i in manifest["inputs"]} == {"conversations-fr", "alpaca-mix"}
    assert all(len(f["sha256"]) == 64 for i in manifest["inputs"] for f in i["files"])
    assert version_dir.name.endswith(manifest["fingerprint"][:10])
    import datasets

    ds = datasets.load_dataset("parquet", data_files=str(version_dir / "data" / "*.parquet"), split="train")
    assert ds.num_rows == stats["totals"]["kept"]
    assert set(ds[0]["messages"][0]) == {"role", "content"}
    assert ds[0]["lang"][0]["lang"] == "fr" and ds[0]["langid"]["keep_share"] == 1.0  # annotations are columns
    card = (version_dir / "README.md").read_text()
    assert "license: cc-by-4.0" in card and "| exact_dedup | 106 | 95 | 11 |" in card
    assert "version " in result.output and str(version_dir) in result.output.replace("\n", "")


def test_same_inputs_give_byte_identical_output_whatever_the_workers(tmp_path):
    rows = [chat(f"Question numéro {i % 150} ?", f"Réponse {i % 150}.") for i in range(400)]
    rows += ['{"broken": ']
    for i in range(3):
        write_jsonl(tmp_path / "in" / f"part{i}.jsonl", rows[i::3])
    stages = [{"type": "normalize"}, {"type": "exact_dedup"}, {"type": "select", "max_per_source": 100}]
    outs = []
    for run_i, workers in enumerate((1, 3)):
        d = tmp_path / f"run{run_i}"
        d.mkdir()
        path = write_pipeline(
            d, [{"name": "s", "path": str(tmp_path / "in")}], stages, {"type": "local", "tasks": 3, "workers": workers}
        )
        outs.append(run_pipeline(path))
    assert outs[0].fingerprint == outs[1].fingerprint
    assert file_hashes(outs[0].version_dir) == file_hashes(outs[1].version_dir)
    stats = check_accounting(outs[0].version_dir)
    assert stats["stages"]["exact_dedup"]["rejected"] == {"exact_dedup.duplicate": 250}
    assert stats["stages"]["select"]["rejected"] == {"select.over_source_cap": 50}
    assert stats["totals"] == {"read": 401, "kept": 100, "rejected": 301}


def test_versions_are_immutable_and_interrupted_runs_are_not_overwritten(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", [chat("q ?", "a.")])
    path = write_pipeline(tmp_path, [{"name": "s", "path": str(tmp_path / "d.jsonl")}], version="1.0.0")
    first = run_pipeline(path)
    assert first.version_dir == tmp_path / "out" / "test" / "1.0.0"
    with pytest.raises(RunError, match=r"version: 1.0.0 already exists at .*, and versions are immutable: set "):
        run_pipeline(path)
    result = runner.invoke(app, ["run", "-q", str(path)])
    assert result.exit_code == 2 and "versions are immutable" in result.output  # a configuration error
    path = write_pipeline(tmp_path, [{"name": "s", "path": str(tmp_path / "d.jsonl")}], version="1.0.1")
    plan = build_plan(load_pipeline(path))
    plan.paths.work.mkdir(parents=True)
    with pytest.raises(RunError, match=r"an interrupted run of this pipeline exists at .*--resume"):
        run_plan(plan)
    assert run_plan(build_plan(load_pipeline(path)), resume=True).version == "1.0.1"


def test_a_finished_run_leaves_no_work_and_runs_again_once_its_version_is_deleted(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", [chat(f"q{i} ?", "a.") for i in range(5)])
    path = write_pipeline(
        tmp_path,
        [{"name": "s", "path": str(tmp_path / "d.jsonl")}],
        [{"type": "exact_dedup"}],
        {"type": "local", "tasks": 2},
    )
    first = run_pipeline(path)
    assert list((tmp_path / "out" / "test" / ".work").iterdir()) == []
    shutil.rmtree(first.version_dir)
    second = run_pipeline(path)  # no stale "interrupted run", no skipped finalize job
    assert second.fingerprint == first.fingerprint and second.version_dir.is_dir()


def test_per_record_stage_after_global_stages_makes_two_barriers(tmp_path):
    rows = [
        chat("Bonjour ?", "Salut."),
        chat("Bonjour ?", "Salut."),
        chat("Long ?", "Une longue réponse ici."),
        chat("Autre ?", "Encore une longue réponse."),
    ]
    write_jsonl(tmp_path / "d.jsonl", rows)
    stages = [
        {"type": "exact_dedup"},
        {"type": "length", "min_assistant_chars": 10, "short_answers": False},  # "Salut." to "Bonjour ?" is too short
        {"type": "exact_dedup", "view": "prompt"},
        {"type": "select", "max_records": 1, "seed": 4},
    ]
    path = write_pipeline(
        tmp_path,
        [{"name": "s", "path": str(tmp_path / "d.jsonl")}],
        stages,
        {"type": "local", "tasks": 2, "workers": 1},
    )
    plan = build_plan(load_pipeline(path))
    assert [(len(p.record_stages), len(p.global_after)) for p in plan.phases] == [(0, 1), (1, 2), (0, 0)]
    result = run_pipeline(path)
    stats = check_accounting(result.version_dir)
    assert list(stats["stages"]) == ["read", "exact_dedup", "length", "exact_dedup_2", "select"]
    assert stats["stages"]["exact_dedup"]["rejected"] == {"exact_dedup.duplicate": 1}
    assert stats["stages"]["length"]["rejected"] == {"length.answer_too_short": 1}
    assert stats["stages"]["select"] == {
        "in": 2,
        "kept": 1,
        "rejected": {"select.over_total_cap": 1},
        "seconds": stats["stages"]["select"]["seconds"],
    }
    rejects = pl.read_parquet(result.version_dir / "rejects" / "*.parquet")
    dup = rejects.filter(pl.col("reason") == "exact_dedup.duplicate").row(0, named=True)
    assert dup["source"]["location"] == "d.jsonl:2"
    assert dup["detail"] == f"dup_of={_id_at_line(result, rejects, 'd.jsonl:1')}"


def _id_at_line(result, rejects: pl.DataFrame, location: str) -> str:
    kept = pl.read_parquet(result.version_dir / "data" / "*.parquet")
    both = pl.concat([kept.select("id", "source"), rejects.select("id", "source")])
    return both.filter(pl.col("source").struct.field("location") == location)["id"][0]


def test_source_limit_is_exact_across_tasks(tmp_path):
    for i in range(3):
        write_jsonl(tmp_path / "in" / f"f{i}.jsonl", [chat(f"q{i}-{j}", f"a{i}-{j}") for j in range(10)])
    path = write_pipeline(
        tmp_path,
        [{"name": "s", "path": str(tmp_path / "in"), "limit": 15}],
        executor={"type": "local", "tasks": 3, "workers": 1},
    )
    stats = check_accounting(run_pipeline(path).version_dir)
    assert stats["sources"]["s"]["read"] == 15


def test_dry_run_prints_the_plan_and_slurm_scripts(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", [chat("q ?", "a.")])
    path = write_pipeline(
        tmp_path,
        [{"name": "s", "path": str(tmp_path / "d.jsonl")}],
        [{"type": "normalize"}, {"type": "exact_dedup"}],
        {"type": "slurm", "tasks": 8, "partition": "cpu", "time": "01:00:00"},
    )
    result = runner.invoke(app, ["run", "--dry-run", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert "phase 0: read -> normalize -> signatures(exact_dedup)  [8 task(s)]" in out
    assert "barrier 0: decide exact_dedup  [1 task(s)]" in out
    assert "finalize: stats, manifest, card, publish  [1 task(s)]" in out
    assert "#SBATCH --partition=cpu" in out and "#SBATCH --array=0-7" in out
    assert "launch_pickled_pipeline" in out
    assert not (tmp_path / "out").exists(), "a dry run writes nothing"


def _big_input(tmp_path: Path, files: int, rows: int) -> Path:
    folder = tmp_path / "in"
    for f in range(files):
        write_jsonl(
            folder / f"part{f:02d}.jsonl",
            [
                chat(f"Question {f}-{i % (rows // 2)} : comment faire ?", "Réponse détaillée. " * 20)
                for i in range(rows)
            ],
        )
    return folder


@pytest.mark.slow
def test_resume_after_kill_9_gives_the_uninterrupted_output(tmp_path):
    folder = _big_input(tmp_path, files=12, rows=6000)
    stages = [{"type": "normalize"}, {"type": "length", "min_chars": 10}, {"type": "exact_dedup"}]
    executor = {"type": "local", "tasks": 12, "workers": 1}
    ref_dir, killed_dir = tmp_path / "ref", tmp_path / "killed"
    ref_dir.mkdir()
    killed_dir.mkdir()
    reference = run_pipeline(
        write_pipeline(ref_dir, [{"name": "s", "path": str(folder)}], stages, executor, version="1.0.0")
    )
    path = write_pipeline(killed_dir, [{"name": "s", "path": str(folder)}], stages, executor, version="1.0.0")
    frcorpus = [sys.executable, "-m", "frcorpus.cli", "run", "-q", str(path)]
    proc = subprocess.Popen(
        frcorpus, cwd=killed_dir, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    completions = killed_dir / "out" / "test" / ".work"
    deadline = time.time() + 120
    while time.time() < deadline:
        done = list(completions.glob("*/logs/phase0/completions/*"))
        if len(done) >= 3:
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed_dir / "out" / "test" / "1.0.0").exists(), "the run finished before the kill"
    assert len(list(completions.glob("*/logs/phase0/completions/*"))) < 12
    again = subprocess.run(frcorpus, cwd=killed_dir, capture_output=True, text=True)
    assert again.returncode == 1 and "--resume" in again.stderr
    resumed = subprocess.run(frcorpus + ["--resume"], cwd=killed_dir, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    version_dir = killed_dir / "out" / "test" / "1.0.0"
    assert file_hashes(version_dir) == file_hashes(reference.version_dir)
    assert json.loads((version_dir / "manifest.json").read_text())["fingerprint"] == reference.fingerprint
    stats = check_accounting(version_dir)
    assert stats["totals"]["read"] == 72000
    expected = json.loads((reference.version_dir / "stats.json").read_text())
    for body in (stats, expected):  # timings differ between runs; every count must not
        for stage in body["stages"].values():
            stage.pop("seconds")
    assert stats == expected


def test_barrier_decisions_land_on_their_rows_in_every_slice():
    from frcorpus.batch import work_schema
    from frcorpus.engine.steps import decided_table, sorted_decisions

    schema = work_schema([])
    table = pa.table({"id": [f"r{i}" for i in range(10)]})
    decided = sorted_decisions({"7": ["exact_dedup", "exact_dedup.duplicate", "dup_of=r1"], "2": ["s", "r", "d"]})
    rejected = []
    for first in (0, 4, 8):  # slices of 4 rows, as ReadShard cuts a shard
        part = decided_table(table.slice(first, 4), decided, first, schema)
        rejected += [(row["id"], row["_reject"]) for row in part.to_pylist() if row["_reject"]]
    assert rejected == [
        ("r2", {"stage": "s", "reason": "r", "detail": "d"}),
        ("r7", {"stage": "exact_dedup", "reason": "exact_dedup.duplicate", "detail": "dup_of=r1"}),
    ]
