"""One big file read by several tasks (`sources.split`): the parts, read one after another, give
exactly the records of the whole file, whatever its lines hold; and a file whose parts could not know
what the reader of the whole file knows is read whole, with the reason."""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from frcorpus.batch import work_schema
from frcorpus.sources import lines as source_lines
from frcorpus.sources.config import SourceConfig
from frcorpus.sources.reader import SourceReader
from frcorpus.sources.resolve import resolve_source
from frcorpus.sources.split import split_file
from tests.test_reader_fuzz import FUZZ, jsonl_file

FUZZ_PARTS = settings(FUZZ, max_examples=150)  # each example reads a file whole and in parts, with both readers


def _records(path: Path, fmt: str = "auto", parts: int | None = None, **config) -> list[dict]:
    """The records of the file, read whole, or part by part when `parts` is given (the parts must exist)."""
    cfg = SourceConfig(name="s", path=str(path), format=fmt, **config)
    reader = SourceReader(resolve_source(cfg), 0)
    if parts is None:
        return [r for b in reader.read_batches([0], None, work_schema([])) for r in b.records()]
    split = split_file(path, cfg, parts)
    assert split.parts, split.why_whole
    assert [p.index for p in split.parts] == list(range(len(split.parts)))
    return [r for p in split.parts for b in reader.read_batches([0], None, work_schema([]), p) for r in b.records()]


@FUZZ_PARTS
@given(jsonl_file(), st.integers(2, 5), st.sampled_from([64, 1 << 20]), st.sampled_from(["0", "1"]))
def test_the_parts_of_any_generated_file_give_the_records_of_the_whole_file(data, parts, chunk_bytes, columnar):
    body, fmt = data
    with pytest.MonkeyPatch.context() as monkeypatch, tempfile.TemporaryDirectory() as tmp:
        monkeypatch.setattr(source_lines, "CHUNK_BYTES", chunk_bytes)
        monkeypatch.setenv("FRCORPUS_COLUMNAR", columnar)
        path = Path(tmp) / "d.jsonl"
        path.write_bytes(body)
        cfg = SourceConfig(name="s", path=str(path), format=fmt)
        split = split_file(path, cfg, parts)
        event(f"split: {split.why_whole or 'yes'}")
        if not split.parts:
            return
        whole = _records(path, fmt)
        reader = SourceReader(resolve_source(cfg), 0)
        in_parts = [
            r for p in split.parts for b in reader.read_batches([0], None, work_schema([]), p) for r in b.records()
        ]
    assert in_parts == whole


def _chat(i: int, with_id: bool = True) -> dict:
    turns = [{"role": "user", "content": f"Question {i} ?"}, {"role": "assistant", "content": f"Réponse {i}."}]
    return {"id": f"q{i}", "messages": turns} if with_id else {"messages": turns}


def test_a_file_with_blank_lines_broken_rows_and_a_late_format_splits_into_parts_that_read_as_the_whole(tmp_path):
    lines = ["not json", "[1, 2]", '{"x": 1}']  # no format detected before the fourth line
    for i in range(60):
        lines.append(json.dumps({"instruction": f"Dis {i}", "output": f"Je dis {i}."}))
        if i % 7 == 0:
            lines += ["", "  \t", '{"instruction": "sans réponse"}']
    path = tmp_path / "d.jsonl"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    split = split_file(path, SourceConfig(name="s", path=str(path)), 4)
    assert [p.index for p in split.parts] == [0, 1, 2, 3]
    assert split.parts[0].detected is False and split.parts[1].fmt == "alpaca"
    whole = _records(path)
    assert _records(path, parts=4) == whole
    assert [r["source"]["location"] for r in whole[:4]] == ["d.jsonl:1", "d.jsonl:2", "d.jsonl:3", "d.jsonl:4"]
    assert [r["_reject"]["reason"] for r in whole[:3]] == [
        "read.invalid_json",
        "read.not_an_object",
        "read.unknown_format",
    ]


def test_a_repeated_id_keeps_the_file_whole_as_only_one_reader_can_reject_it(tmp_path):
    path = tmp_path / "d.jsonl"
    rows = [_chat(i) for i in range(40)] + [_chat(3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    split = split_file(path, SourceConfig(name="s", path=str(path)), 3)
    assert split.parts == []
    assert split.why_whole == "an id (field 'id') repeats in it"
    # the id is found however it is written: a JSON escape spells the same field and value
    path.write_text(
        "".join(json.dumps(r) + "\n" for r in rows[:40]) + '{"\\u0069d": "q\\u0033", "messages": []}\n',
        encoding="utf-8",
    )
    assert split_file(path, SourceConfig(name="s", path=str(path)), 3).why_whole == "an id (field 'id') repeats in it"
    # without the repeat, it splits
    path.write_text("".join(json.dumps(r) + "\n" for r in rows[:40]), encoding="utf-8")
    assert len(split_file(path, SourceConfig(name="s", path=str(path)), 3).parts) == 3


def test_gzip_arrays_and_arrow_streams_are_read_whole_with_the_reason(tmp_path):
    body = "".join(json.dumps(_chat(i)) + "\n" for i in range(30)).encode()
    gz = tmp_path / "d.jsonl.gz"
    gz.write_bytes(gzip.compress(body))
    array = tmp_path / "d.json"
    array.write_text(json.dumps([_chat(i) for i in range(30)]), encoding="utf-8")
    arrow = tmp_path / "d.arrow"
    table = pa.Table.from_pylist([_chat(i) for i in range(30)])
    with pa.ipc.new_stream(str(arrow), table.schema) as writer:
        writer.write_table(table)
    why = {p.name: split_file(p, SourceConfig(name="s", path=str(p)), 2).why_whole for p in (gz, array, arrow)}
    assert why == {
        "d.jsonl.gz": "a gzip stream cannot be read from the middle",
        "d.json": "a JSON array is parsed whole",
        "d.arrow": "an Arrow stream is read from its start",
    }


def test_a_parquet_file_splits_between_row_groups_into_parts_that_read_as_the_whole(tmp_path):
    rows = [_chat(i, with_id=i % 3 != 1) for i in range(100)]  # Arrow takes its columns from row 0
    rows[50]["messages"] = [{"role": "robot", "content": "?"}]  # a rejected row in a later part
    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=10)
    split = split_file(path, SourceConfig(name="s", path=str(path)), 4)
    assert [(p.start, p.end, p.first_row) for p in split.parts] == [(0, 3, 0), (3, 5, 30), (5, 8, 50), (8, 10, 80)]
    whole = _records(path)
    assert _records(path, parts=4) == whole
    assert whole[50]["_reject"]["reason"] == "read.unknown_role"
    assert whole[50]["source"]["location"] == "d.parquet[50]"
    rows[97]["id"] = "q3"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=10)
    assert split_file(path, SourceConfig(name="s", path=str(path)), 4).why_whole == "an id (field 'id') repeats in it"


def _version_rows(result, what: str) -> list[dict]:
    files = sorted((result.version_dir / what).glob("*.parquet"))
    return sorted((r for f in files for r in pq.read_table(f).to_pylist()), key=lambda r: r["id"])


def test_a_run_reads_a_big_file_on_every_task_with_the_records_of_one_task_reading_it(tmp_path, caplog):
    from tests.conftest import run_pipeline, write_pipeline

    rows = []
    for i in range(2600):  # 2.4 MB: the 3 tasks would take 3 parts, but parts of at least 1 MB make 2
        row = _chat(i % 2300, with_id=False)  # the last 300 rows repeat earlier ones, across the parts
        row["messages"][1]["content"] += " " + "mot " * 200
        rows.append(json.dumps(row))
        if i % 500 == 0:
            rows.append('{"messages": [{"role": "user"}]}')  # rejected by the reader, in every part
    big = tmp_path / "big.jsonl"
    big.write_text("\n".join(rows) + "\n", encoding="utf-8")
    small = tmp_path / "small.jsonl"
    small.write_text(json.dumps(_chat(1, with_id=False)) + "\n", encoding="utf-8")
    sources = [{"name": "big", "path": str(big)}, {"name": "small", "path": str(small)}]
    stages = [{"type": "normalize"}, {"type": "exact_dedup"}]
    results = {}
    for split_mb in (0, 1):
        executor = {"type": "local", "tasks": 3, "workers": 1, "split_mb": split_mb}
        (tmp_path / str(split_mb)).mkdir()
        pipeline = write_pipeline(tmp_path / str(split_mb), sources, stages, executor)
        with caplog.at_level("INFO", logger="frcorpus.engine.run"):
            results[split_mb] = run_pipeline(pipeline)
    said = [r.getMessage() for r in caplog.records if r.name == "frcorpus.engine.run"]
    assert said == [
        f"source 'big': big.jsonl (2 MB) cut into 2 parts for 2 tasks (read in {said[0].split('(read in ')[1]}"
    ]
    whole, split = results[0], results[1]
    assert _version_rows(split, "data") == _version_rows(whole, "data")
    assert _version_rows(split, "rejects") == _version_rows(whole, "rejects")
    assert split.stats["sources"] == whole.stats["sources"]
    assert split.stats["sources"]["big"]["rejected"] == 6 + 300  # the reader's six, and the repeats
    inputs = {
        r.version_dir: json.loads((r.version_dir / "manifest.json").read_text())["inputs"] for r in results.values()
    }
    assert inputs[split.version_dir] == inputs[whole.version_dir]  # the big file hashed once, by its first part
    assert len(inputs[split.version_dir][0]["files"][0]["sha256"]) == 64
