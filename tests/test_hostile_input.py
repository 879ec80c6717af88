"""Input files that used to end a whole run: empty sources, damaged files, symbolic-link loops, and
the record ids two rows could share. Each is a warning, rejects with a reason and a location, or one
error before any work; never a traceback."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from frcorpus.cli import app
from frcorpus.record import MESSAGE_TYPE
from tests.conftest import chat, run_pipeline, write_jsonl, write_pipeline
from tests.test_engine import check_accounting

runner = CliRunner()


def chats(n: int, start: int = 0) -> list[dict]:
    return [chat(f"Question numéro {i} sur la cuisine française ?", f"Réponse numéro {i}, assez longue.") for i in
            range(start, start + n)]  # fmt: skip


@pytest.mark.parametrize("tasks", [1, 2])
def test_empty_sources_are_a_row_of_zeros_and_a_warning(tmp_path, tasks):
    ok = write_jsonl(tmp_path / "ok.jsonl", chats(3))
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "blank.jsonl").write_text("\n  \n\t\n", encoding="utf-8")
    pq.write_table(pa.table({"messages": pa.array([], pa.list_(MESSAGE_TYPE))}), tmp_path / "zero.parquet")
    sources = [{"name": "ok", "path": str(ok)}] + [
        {"name": n, "path": str(tmp_path / f)}
        for n, f in (("empty", "empty.jsonl"), ("blank", "blank.jsonl"), ("zero", "zero.parquet"))
    ]
    # a global stage too: its barrier sees shards with no record at all
    stages = [{"type": "exact_dedup"}, {"type": "minhash_dedup"}]
    pipeline = write_pipeline(tmp_path, sources, stages, executor={"type": "local", "tasks": tasks, "workers": 1})
    result = runner.invoke(app, ["run", "-q", str(pipeline)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in ("empty", "blank", "zero"):
        assert f"warning: source '{name}' holds no records (empty files, blank lines or tables of 0 rows)" in (
            result.output
        )
    (version_dir,) = [p for p in (tmp_path / "out" / "test").iterdir() if not p.name.startswith(".")]
    stats = check_accounting(version_dir)
    assert list(stats["sources"]) == ["ok", "empty", "blank", "zero"]  # the pipeline's order
    for name in ("empty", "blank", "zero"):
        assert stats["sources"][name] == {"read": 0, "kept": 0, "rejected": 0, "formats": {}, "license": None}
    assert stats["sources"]["ok"]["read"] == 3


def test_a_run_whose_every_source_is_empty_publishes_an_empty_version(tmp_path):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    pipeline = write_pipeline(
        tmp_path, [{"name": "e", "path": str(tmp_path / "empty.jsonl")}], [{"type": "exact_dedup"}]
    )
    result = run_pipeline(pipeline)
    assert check_accounting(result.version_dir)["totals"] == {"read": 0, "kept": 0, "rejected": 0}
    assert json.loads((result.version_dir / "stats.json").read_text())["sources"]["e"]["read"] == 0
