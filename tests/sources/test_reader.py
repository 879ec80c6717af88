"""Readers: formats, detection, locations and a reason for every malformed record."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from frcorpus.sources.config import SourceConfig
from frcorpus.sources.reader import SourceReader, peek_format
from frcorpus.sources.resolve import SourceError, resolve_source
from tests.conftest import chat, write_jsonl


def read_all(path: Path | str, **cfg) -> list[dict]:
    src = resolve_source(SourceConfig(name="s", path=str(path), **cfg))
    return list(SourceReader(src, 0).read_files(list(range(len(src.files))), cfg.get("limit")))


def reasons(records):
    return [(r["_reject"] or {}).get("reason") for r in records]


def test_every_malformed_line_is_rejected_with_reason_and_location(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(
        b"\n".join(
            [
                json.dumps(chat("Bonjour ?", "Bonjour !", id=1)).encode(),
                b'{"messages": [',
                b'{"messages": [{"role": "user", "content": "caf\xe9"}]}',
                json.dumps({"id": 4, "messages": [{"role": "user", "content": "q"}]}).encode(),
                json.dumps(
                    {
                        "id": 5,
                        "messages": [{"role": "narrateur", "content": "q"}, {"role": "assistant", "content": "a"}],
                    }
                ).encode(),
                json.dumps(
                    {"id": 6, "messages": [{"role": "user", "content": " "}, {"role": "assistant", "content": "a"}]}
                ).encode(),
                json.dumps(
                    {
                        "id": 7,
                        "messages": [
                            {"role": "user", "content": "a"},
                            {"role": "user", "content": "b"},
                            {"role": "assistant", "content": "c"},
                        ],
                    }
                ).encode(),
                json.dumps({"id": 8, "messages": [{"role": "user"}, {"role": "assistant", "content": "c"}]}).encode(),
                json.dumps(
                    {"id": 9, "messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]}
                ).encode(),
                json.dumps(
                    {
                        "id": 10,
                        "messages": [
                            {"role": "user", "content": "a"},
                            {"role": "assistant", "content": "b"},
                            {"role": "system", "content": "c"},
                        ],
                    }
                ).encode(),
                json.dumps(chat("encore", "oui", id=1)).encode(),
                b"[1, 2]",
            ]
        )
        + b"\n"
    )
    records = read_all(path, format="messages")
    assert reasons(records) == [
        None,
        "read.invalid_json",
        "read.invalid_utf8",
        "read.no_assistant_turn",
        "read.unknown_role",
        "read.empty_content",
        "read.consecutive_roles",
        "read.missing_content",
        "read.starts_with_assistant",
        "read.misplaced_system",
        "read.duplicate_id",
        "read.not_an_object",
    ]
    details = [r["_reject"]["detail"] for r in records[1:]]
    assert details[0].startswith("d.jsonl:2: ")
    assert details[1] == "d.jsonl:3: invalid UTF-8 at byte 46"
    assert details[3] == "d.jsonl:5: turn 0: role 'narrateur' is not known; add it to filters/role_aliases.yaml"
    assert details[5] == "d.jsonl:7: turns 0 and 1 are both 'user'"
    assert details[9] == "d.jsonl:11: id '1' already appeared earlier in d.jsonl"
    assert records[1]["_raw"] == '{"messages": ['  # the malformed line is kept for the user to see
    assert records[0]["source"]["location"] == "d.jsonl:1"
    assert records[0]["id"] == "s:1"
    assert len({r["id"] for r in records}) == len(records)


@pytest.mark.parametrize(
    ("row", "expected_format", "expected"),
    [
        (chat("q?", "a."), "messages", [("user", "q?"), ("assistant", "a.")]),
        (
            {"conversations": [{"from": "human", "value": "q?"}, {"from": "gpt", "value": "a."}]},
            "sharegpt",
            [("user", "q?"), ("assistant", "a.")],
        ),
        (
            {"conversation": [{"role": "UTILISATEUR", "content": "q?"}, {"role": "ASSISTANT", "content": "a."}]},
            "messages",
            [("user", "q?"), ("assistant", "a.")],
        ),
        (
            {"instruction": "Traduis.", "input": "Hello", "output": "Bonjour"},
            "alpaca",
            [("user", "Traduis.\n\nHello"), ("assistant", "Bonjour")],
        ),
        ({"prompt": "q?", "response": "a."}, "prompt_response", [("user", "q?"), ("assistant", "a.")]),
        ({"question": "q?", "answer": "a."}, "prompt_response", [("user", "q?"), ("assistant", "a.")]),
        (
            {
                "messages": [
                    {"role": "system", "content": "Sois bref."},
                    {"role": "user", "content": [{"type": "text", "text": "q?"}]},
                    {"role": "assistant", "content": "a."},
                ]
            },
            "messages",
            [("system", "Sois bref."), ("user", "q?"), ("assistant", "a.")],
        ),
    ],
)
def test_format_auto_detection(tmp_path, row, expected_format, expected):
    path = write_jsonl(tmp_path / "d.jsonl", [row])
    src = resolve_source(SourceConfig(name="s", path=str(path)))
    assert peek_format(src) == f"{expected_format} (detected)"
    (record,) = read_all(path)
    assert record["_reject"] is None
    assert [(m["role"], m["content"]) for m in record["messages"]] == expected


def test_prompt_response_with_configured_fields(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"q": "Question ?", "r": "Réponse.", "sys": "Tu es poli."}])
    (record,) = read_all(path, format="prompt_response", fields={"prompt": "q", "response": "r", "system": "sys"})
    assert record["messages"] == [
        {"role": "system", "content": "Tu es poli."},
        {"role": "user", "content": "Question ?"},
        {"role": "assistant", "content": "Réponse."},
    ]


def test_wrong_format_is_a_reason(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"instruction": "x", "output": "y"}])
    (record,) = read_all(path, format="sharegpt")
    assert record["_reject"]["reason"] == "read.missing_field"
    assert record["_reject"]["detail"] == "d.jsonl:1: no 'conversations' field"
    path = write_jsonl(tmp_path / "e.jsonl", [{"text": "hello"}])
    (record,) = read_all(path)
    assert record["_reject"]["reason"] == "read.unknown_format"


def test_json_array_parquet_folder_glob_and_limit(tmp_path):
    rows = [{"instruction": f"Question {i} ?", "input": "", "output": f"Réponse {i}."} for i in range(5)]
    (tmp_path / "a.json").write_text(json.dumps(rows))
    (tmp_path / "sub").mkdir()
    pq.write_table(
        pa.Table.from_pylist([{"prompt": f"p{i}", "response": f"r{i}"} for i in range(3)]),
        tmp_path / "sub" / "b.parquet",
    )
    records = read_all(tmp_path / "a.json")
    assert [r["source"]["location"] for r in records][:2] == ["a.json[0]", "a.json[1]"]
    assert [r["messages"][0]["content"] for r in records] == [f"Question {i} ?" for i in range(5)]
    parquet = read_all(tmp_path / "sub" / "b.parquet")
    assert [r["messages"][1]["content"] for r in parquet] == ["r0", "r1", "r2"]
    folder = read_all(tmp_path)  # folder: every data file, sorted, with paths relative to it
    assert [r["source"]["location"] for r in folder][-1] == "sub/b.parquet[2]"
    assert len(folder) == 8
    assert len(read_all(str(tmp_path / "*.json"))) == 5
    assert len(read_all(tmp_path, limit=6)) == 6


def test_huggingface_save_to_disk_folder(tmp_path):
    import datasets

    datasets.Dataset.from_list([chat("q1", "a1"), chat("q2", "a2")]).save_to_disk(str(tmp_path / "hf"))
    records = read_all(tmp_path / "hf")
    assert [r["messages"][0]["content"] for r in records] == ["q1", "q2"]
    assert records[0]["source"]["location"].endswith(".arrow[0]")


def test_missing_path_and_broken_json_array_are_errors(tmp_path):
    with pytest.raises(SourceError, match=r"source 's': path 'nope.jsonl' not found"):
        resolve_source(SourceConfig(name="s", path="nope.jsonl"), cwd=tmp_path)
    (tmp_path / "bad.json").write_text('[{"prompt": "a", "response": "b"},')
    with pytest.raises(SourceError, match=r"bad.json: not a valid JSON array"):
        read_all(tmp_path / "bad.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match=r"folder .*empty holds no data file"):
        resolve_source(SourceConfig(name="s", path=str(tmp_path / "empty")))


def test_bundled_sample_resolves():
    src = resolve_source(SourceConfig(name="s", path="frcorpus://samples/conversations_fr.jsonl"))
    assert src.files[0].name == "conversations_fr.jsonl"
    assert peek_format(src) == "messages (detected)"
