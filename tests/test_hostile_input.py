"""Input files that used to end a whole run: empty sources, damaged files, symbolic-link loops, and
the record ids two rows could share. Each is a warning, rejects with a reason and a location, or one
error before any work; never a traceback."""

from __future__ import annotations

import gzip
import json
import os
import time
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from frcorpus.batch import work_schema
from frcorpus.cli import app
from frcorpus.record import MESSAGE_TYPE
from frcorpus.sources.config import SourceConfig
from frcorpus.sources.filestate import FileState
from frcorpus.sources.reader import SourceReader, check_readable
from frcorpus.sources.resolve import resolve_source
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


def read_source(monkeypatch, path: Path, columnar: str = "1") -> list[dict]:
    monkeypatch.setenv("FRCORPUS_COLUMNAR", columnar)
    src = resolve_source(SourceConfig(name="s", path=str(path)))
    check_readable(src)
    reader = SourceReader(src, 0)
    return [r for b in reader.read_batches(list(range(len(src.files))), None, work_schema([])) for r in b.records()]


def test_a_truncated_gzip_keeps_every_whole_line_and_rejects_the_rest(tmp_path, monkeypatch):
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chats(20000)).encode()
    data = gzip.compress(lines)
    cut = len(data) * 2 // 3
    (tmp_path / "d.jsonl.gz").write_bytes(data[:cut])
    # what the truncated stream still holds, decompressed as far as it goes
    readable = zlib.decompressobj(wbits=31).decompress(data[:cut])
    whole = readable.count(b"\n")
    for columnar in ("1", "0"):
        records = read_source(monkeypatch, tmp_path / "d.jsonl.gz", columnar)
        kept = [r for r in records if r["_reject"] is None]
        assert len(kept) == whole and len(records) == whole + 1
        assert kept[-1]["messages"][0]["content"] == chats(1, whole - 1)[0]["messages"][0]["content"]
        last = records[-1]
        assert last["_reject"]["reason"] == "read.corrupt_file"
        assert last["source"]["location"] == f"d.jsonl.gz:{whole + 1}"
        assert last["_reject"]["detail"] == (
            f"d.jsonl.gz:{whole + 1}: the gzip stream ends early (a truncated download or copy?); the lines before "
            f"line {whole + 1} were read, the rest of d.jsonl.gz is lost"
        )
        assert last["_raw"] == readable[readable.rfind(b"\n") + 1 :].decode()


def test_gzip_members_and_padding_read_like_gzip(tmp_path, monkeypatch):
    first, second = chats(3), chats(2, 3)
    body = b"".join(gzip.compress(("".join(json.dumps(r) + "\n" for r in rows)).encode()) for rows in (first, second))
    (tmp_path / "m.jsonl.gz").write_bytes(body + b"\0" * 16)
    records = read_source(monkeypatch, tmp_path / "m.jsonl.gz")
    assert [r["messages"] for r in records] == [r["messages"] for r in first + second]


def test_plain_text_named_gz_is_one_error_before_any_work(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl.gz", chats(2))
    pipeline = write_pipeline(tmp_path, [{"name": "s", "path": str(path)}])
    for command in (["validate", str(pipeline)], ["run", "-q", str(pipeline)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2
        assert (
            f"pipeline.yaml:5: source 's': cannot read {path}: not a valid gzip stream (Error -3 while decompressing "
            "data: incorrect header check); if it holds plain JSON lines, rename it to .jsonl"
        ) in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()


def corrupt_row_group(path: Path, group: int) -> None:
    """Overwrite the first page header of a row group's first column: it can no longer be decoded."""
    column = pq.ParquetFile(path).metadata.row_group(group).column(0)
    offset = column.dictionary_page_offset or column.data_page_offset
    data = bytearray(path.read_bytes())
    data[offset : offset + 16] = b"\xff" * 16
    path.write_bytes(bytes(data))


def test_a_corrupt_parquet_page_rejects_its_rows_and_keeps_the_other_row_groups(tmp_path):
    rows = chats(300)
    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=100, compression="none")
    corrupt_row_group(path, 1)
    result = run_pipeline(write_pipeline(tmp_path, [{"name": "s", "path": str(path)}]))
    stats = check_accounting(result.version_dir)
    assert stats["sources"]["s"] | {"formats": None} == {
        "read": 300, "kept": 200, "rejected": 100, "formats": None, "license": None
    }  # fmt: skip
    kept = pq.read_table(result.version_dir / "data").to_pylist()
    assert [r["source"]["location"] for r in kept] == [f"d.parquet[{i}]" for i in [*range(100), *range(200, 300)]]
    rejects = pq.read_table(result.version_dir / "rejects").to_pylist()
    assert [r["source"]["location"] for r in rejects] == [f"d.parquet[{i}]" for i in range(100, 200)]
    assert {r["reason"] for r in rejects} == {"read.corrupt_file"}
    assert rejects[0]["detail"].startswith("d.parquet[100]: row group 1 (rows 100-199) cannot be decoded: ")
    assert "\n" not in rejects[0]["detail"]


@pytest.mark.parametrize("loops", [1, 2])
def test_globs_read_each_real_file_once_through_link_loops(tmp_path, loops):
    root = tmp_path / "loop"
    write_jsonl(root / "a.jsonl", chats(2))
    write_jsonl(root / "sub" / "b.jsonl", chats(2, 2))
    os.symlink("..", root / "sub" / "up")  # loop 1: sub/up -> loop
    if loops == 2:
        os.symlink("../sub", root / "sub" / "again")  # loop 2: sub/again -> sub
        os.symlink("a.jsonl", root / "alias.jsonl")  # a second name for a file
    pipeline = write_pipeline(tmp_path, [{"name": "s", "path": str(root / "**" / "*.jsonl")}])
    start = time.perf_counter()
    result = run_pipeline(pipeline)
    assert time.perf_counter() - start < 30  # was: 41 copies of each file with one loop, hours with two
    stats = check_accounting(result.version_dir)
    assert stats["sources"]["s"]["read"] == 4
    locations = sorted(r["source"]["location"] for r in pq.read_table(result.version_dir / "data").to_pylist())
    assert locations == ["a.jsonl:1", "a.jsonl:2", "sub/b.jsonl:1", "sub/b.jsonl:2"]


def test_a_null_chat_field_is_an_absent_one_for_both_readers(tmp_path, monkeypatch):
    # `datasets` writes null for the columns of another format; one blank line used to flip the decision
    rows = [
        {"messages": None, "conversations": chat("Q ?", "R.")["messages"]},
        {"conversations": None, "conversation": chat("Q2 ?", "R2.")["messages"]},
        {"messages": None},
    ]
    for blank in (False, True):
        lines = [json.dumps(r) for r in rows] + ([""] if blank else [])
        path = write_jsonl(tmp_path / "d.jsonl", lines)
        for columnar in ("1", "0"):
            records = read_source(monkeypatch, path, columnar)
            assert [r["_reject"] and r["_reject"]["reason"] for r in records] == [None, None, "read.missing_field"]
            assert records[0]["messages"] == chat("Q ?", "R.")["messages"]
            assert records[2]["_reject"]["detail"] == "d.jsonl:3: 'messages' must be a list of turns"


def test_record_ids_are_unambiguous_and_a_version_diffs_empty_against_itself(tmp_path):
    # the reported collisions: a file name holding ':' and an id holding ':'; an id `x#1` beside a
    # rejected row of id `x` at row 1; and an id that looks like a hashed one
    write_jsonl(tmp_path / "in" / "a.jsonl", [{**chat("Q1 ?", "R1."), "id": "b.jsonl:7"}])
    write_jsonl(tmp_path / "in" / "a.jsonl:b.jsonl", [{**chat("Q2 ?", "R2."), "id": "7"}])
    hashed_shape = (
        "s:"
        + SourceReader(resolve_source(SourceConfig(name="s", path=str(tmp_path))), 0)
        .record_id(FileState(0, "x.jsonl", "auto", {}, False), 2, None, b"line")
        .split(":")[1]
    )
    lines = [
        {**chat("Q3 ?", "R3."), "id": "x"},
        {**chat("Q4 ?", ""), "id": "x"},  # rejected (empty answer): its id gets the row number, #1
        {**chat("Q5 ?", "R5."), "id": "x#1"},
        {**chat("Q6 ?", "R6."), "id": hashed_shape.split(":")[1]},
    ]
    write_jsonl(tmp_path / "single" / "x.jsonl", lines)
    sources = [
        {"name": "m", "path": str(tmp_path / "in" / "*.jsonl*")},
        {"name": "s", "path": str(tmp_path / "single" / "x.jsonl")},
    ]
    result = run_pipeline(write_pipeline(tmp_path, sources))
    check_accounting(result.version_dir)
    ids = [r["id"] for folder in ("data", "rejects") for r in pq.read_table(result.version_dir / folder).to_pylist()]
    assert len(ids) == len(set(ids)) == 6
    assert sorted(ids) == sorted(
        [
            "m:a.jsonl:b.jsonl%3A7",
            "m:a.jsonl%3Ab.jsonl:7",
            "s:x",
            "s:x#1",
            "s:x%231",
            "s:%" + f"{ord(hashed_shape[2]):02X}" + hashed_shape[3:],
        ]
    )
    diff = runner.invoke(app, ["diff", str(result.version_dir), str(result.version_dir), "--json"])
    assert diff.exit_code == 0, diff.output
    body = json.loads(diff.stdout)
    assert body["identical"] is True
    assert [body["records"][k]["count"] for k in ("added", "removed", "changed", "kept_to_rejected")] == [0, 0, 0, 0]


def test_validate_finds_damage_the_run_would_reject(tmp_path):
    data = gzip.compress("".join(json.dumps(r) + "\n" for r in chats(2000)).encode())
    (tmp_path / "d.jsonl.gz").write_bytes(data[: len(data) // 2])
    whole = zlib.decompressobj(wbits=31).decompress(data[: len(data) // 2]).count(b"\n")
    pq.write_table(pa.Table.from_pylist(chats(30)), tmp_path / "t.parquet", row_group_size=10, compression="none")
    corrupt_row_group(tmp_path / "t.parquet", 2)
    sources = [  # licensed: validate's only warnings are then the damage
        {"name": "g", "path": str(tmp_path / "d.jsonl.gz"), "license": "cc0-1.0"},
        {"name": "p", "path": str(tmp_path / "t.parquet"), "license": "cc0-1.0"},
    ]
    pipeline = write_pipeline(tmp_path, sources)
    result = runner.invoke(app, ["validate", str(pipeline)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert (
        f"warning: source 'g': {tmp_path / 'd.jsonl.gz'}: the gzip stream ends early (a truncated download or "
        f"copy?); a run keeps its first {whole} lines and rejects the rest as read.corrupt_file"
    ) in text
    assert f"warning: source 'p': {tmp_path / 't.parquet'}: row group 2 (rows 20-29) cannot be decoded: " in text
    assert "; a run rejects these 10 rows as read.corrupt_file and reads the others" in text
    quick = runner.invoke(app, ["validate", "--quick", str(pipeline)])
    assert quick.exit_code == 0 and "warning" not in quick.output


@pytest.mark.parametrize(
    ("state", "problem"),
    [
        ("{not json", "is not the metadata `datasets.save_to_disk` writes (no `_data_files` list)"),
        ('{"_data_files": [{"filename": "../../../etc/passwd"}]}', "names '../../../etc/passwd': not a file of"),
        ('{"_data_files": [3]}', "names None: not a file of"),
    ],
)
def test_a_broken_save_to_disk_folder_is_one_error_naming_its_file(tmp_path, state, problem):
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "dataset_info.json").write_text("{}")
    (folder / "state.json").write_text(state)
    result = runner.invoke(app, ["validate", str(write_pipeline(tmp_path, [{"name": "s", "path": str(folder)}]))])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert f"source 's': {folder / 'state.json'} " in text and problem in text and "; fix or remove it" in text
