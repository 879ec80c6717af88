"""`frcorpus validate` reads the first rows of every file against the sources' configuration (field
mappings, format, a source that would keep nothing at `read`), chat JSON of any shape loads through
`fields:`, and a run warns when a source loses 90% or more of its records at one stage."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from frcorpus.cli import app
from frcorpus.sources.config import SourceConfig
from frcorpus.sources.reader import SourceReader
from frcorpus.sources.resolve import resolve_source
from frcorpus.sources.sample import SAMPLE_BYTES, SAMPLE_ROWS, sample_source, source_findings
from tests.conftest import chat, write_jsonl

runner = CliRunner()
MIFEVAL = "instruct_fr/mifeval_fr_responses/fr_input_response_data_gpt-4o-2024-08-06.jsonl"


def validate(tmp_path: Path, sources: str) -> tuple[int, list[str]]:
    """Exit code, and the problem and warning lines of `frcorpus validate` (paths as `T`)."""
    (tmp_path / "p.yaml").write_text(f"name: t\nsources:\n{sources}", encoding="utf-8")
    result = runner.invoke(app, ["validate", str(tmp_path / "p.yaml")], env={"COLUMNS": "300"})
    lines = result.output.replace(str(tmp_path), "T").splitlines()
    return result.exit_code, [line.strip() for line in lines if line.startswith(("  T/", "warning:"))]


def test_a_field_mapping_the_rows_do_not_have_is_an_error(tmp_path, shared_data):
    """The friction of issue 21: `fields: {prompt: instruction, response: output}` on the M-IFEval answers
    (`{prompt, response}`) passed validate, and the run rejected the whole source as read.missing_field."""
    sources = (
        f"  - name: mifeval\n    path: {shared_data / MIFEVAL}\n    format: prompt_response\n"
        "    license: apache-2.0\n    fields: {prompt: instruction, response: output}\n"
    )
    code, problems = validate(tmp_path, sources)
    assert code == 2
    name = Path(MIFEVAL).name
    assert problems == [
        f"T/p.yaml:7: sources[0].fields.prompt: source 'mifeval': 'instruction' is not a field of the first 100 rows "
        f"of {name} (they have: prompt, response); did you mean 'prompt'?",
        f"T/p.yaml:7: sources[0].fields.response: source 'mifeval': 'output' is not a field of the first 100 rows "
        f"of {name} (they have: prompt, response); did you mean 'response'?",
    ]
    # with format auto, the same mapping (detection tries it first, finds no format) is the same error
    code, problems = validate(tmp_path, sources.replace("    format: prompt_response\n", ""))
    assert code == 2 and problems[0].startswith("T/p.yaml:6: sources[0].fields.prompt: source 'mifeval': 'instruction'")
    # the mapping the rows have passes
    code, problems = validate(tmp_path, sources.replace("instruction", "prompt").replace("output", "response"))
    assert (code, problems) == (0, [])


def test_a_close_name_is_suggested(tmp_path):
    write_jsonl(tmp_path / "qa.jsonl", [{"question": "Quelle heure est-il ?", "reponse": "Midi."}])
    sources = "  - name: qa\n    path: qa.jsonl\n    format: prompt_response\n    fields:\n      prompt: question\n"
    sources += "      response: réponse\n"
    code, problems = validate(tmp_path, sources.replace("qa.jsonl", str(tmp_path / "qa.jsonl")))
    assert code == 2
    assert problems == [
        "T/p.yaml:8: sources[0].fields.response: source 'qa': 'réponse' is not a field of the first row of qa.jsonl "
        "(they have: question, reponse); did you mean 'reponse'?"
    ]


def test_a_format_that_does_not_match_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "chat.jsonl", [chat("Bonjour ?", "Bonjour !"), chat("Ça va ?", "Oui.")])
    code, problems = validate(tmp_path, f"  - name: c\n    path: {path}\n    format: sharegpt\n")
    assert code == 2
    assert problems == [
        "T/p.yaml:5: sources[0].format: source 'c': format sharegpt does not match the first 2 rows of chat.jsonl: "
        "it rejects every one (read.missing_field: 2); they look like messages; set format: messages or auto"
    ]


def test_a_format_that_cannot_be_detected_is_an_error(tmp_path, shared_data):
    path = shared_data / "benchmarks_fr/mt_bench/question_fr.jsonl"  # questions without answers
    code, problems = validate(tmp_path, f"  - name: mt\n    path: {path}\n")
    assert code == 2
    assert problems == [
        "T/p.yaml:3: sources[0].format: source 'mt': cannot detect the format of the first 80 rows of "
        "question_fr.jsonl (fields: category, lang, question_id, reference, turns); set format: (messages, sharegpt, "
        "alpaca, prompt_response) and name the rows' fields in fields: (prompt, response; or messages, role, content)"
    ]


def test_a_source_that_would_keep_nothing_is_an_error(tmp_path):
    rows = [
        {"messages": [{"role": "user", "content": "Bonjour ?"}, {"role": "assistant", "content": " "}]},
        {"messages": [{"role": "user", "content": "Tu es là ?"}]},
        {"messages": [{"role": "user", "content": "Allô ?"}, {"role": "assistant", "content": ""}]},
    ]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    code, problems = validate(tmp_path, f"  - name: d\n    path: {path}\n")
    assert code == 2
    assert problems == [
        "T/p.yaml:3: sources[0]: source 'd': the reader rejects every one of the first 3 rows of d.jsonl, so a run "
        "would keep nothing of it (read.empty_content: 2, read.no_assistant_turn: 1); the first: d.jsonl:1: "
        "turn 1 (assistant): content is empty"
    ]


def test_a_source_that_rejects_half_its_rows_is_a_warning(tmp_path):
    rows = [chat("Bonjour ?", "Bonjour !"), "{broken", {"messages": [{"role": "narrateur", "content": "Il était"}]}]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    code, problems = validate(tmp_path, f"  - name: d\n    path: {path}\n    license: cc-by-4.0\n")
    assert code == 0
    assert problems == [
        "warning: T/p.yaml:3: sources[0]: source 'd': the reader rejects 2 of the first 3 rows of d.jsonl "
        "(read.invalid_json: 1, read.unknown_role: 1); the first: d.jsonl:2: unexpected character, expected a string "
        "key: line 1 column 2 (char 1)"
    ]


def test_the_sample_is_the_first_100_rows_or_the_first_megabyte(tmp_path):
    rows = write_jsonl(tmp_path / "rows.jsonl", [chat(f"Question {i} ?", "Oui.") for i in range(150)])
    long = "x" * (SAMPLE_BYTES // 3)
    big = write_jsonl(tmp_path / "big.jsonl", [chat(f"Question {i} ?", long) for i in range(5)])
    for path, expected in ((rows, SAMPLE_ROWS), (big, 2)):  # 2 whole lines fit in 1 MB, the third does not
        src = resolve_source(SourceConfig(name="s", path=str(path)))
        (sample,) = sample_source(src)
        assert (len(sample.rows), sample.kept) == (expected, expected)
    one = write_jsonl(tmp_path / "one.jsonl", [chat("Q ?", "x" * 2 * SAMPLE_BYTES), chat("R ?", "Oui.")])
    _, rows_read, records = SourceReader(resolve_source(SourceConfig(name="s", path=str(one))), 0).sample(0, 100, 1000)
    assert len(rows_read) == 1 and records[0]["_reject"] is None  # at least the first line, however long


def test_a_gzip_file_that_ends_early_gives_its_rows_and_the_reject(tmp_path):
    import gzip

    data = gzip.compress(b"".join(json.dumps(chat(f"Q{i} ?", "Oui.")).encode() + b"\n" for i in range(3)))
    (tmp_path / "d.jsonl.gz").write_bytes(data[: len(data) - 12])
    src = resolve_source(SourceConfig(name="s", path=str(tmp_path / "d.jsonl.gz")))
    (sample,) = sample_source(src)
    reasons = [(r["_reject"] or {}).get("reason") for r in sample.records]
    assert reasons[-1] == "read.corrupt_file" and set(reasons[:-1]) == {None}


# ---------------------------------------------------------------------------------- chat field mapping

SHAREGPT_LIKE = [
    {
        "id": "a",
        "dialog": [
            {"from": "human", "value": "Peux-tu me donner une recette de crêpes ?"},
            {"from": "gpt", "value": "Mélangez 250 g de farine, 4 œufs et 50 cl de lait."},
        ],
    },
    {
        "id": "b",
        "dialog": [
            {"from": "system", "value": "Réponds en une phrase."},
            {"from": "human", "value": "What is the capital of France?"},
            {"from": "gpt", "value": "Paris."},
        ],
    },
]


@pytest.mark.parametrize("columnar", ["1", "0"])
def test_chat_json_of_any_shape_loads_through_fields(tmp_path, monkeypatch, columnar):
    monkeypatch.setenv("FRCORPUS_COLUMNAR", columnar)
    path = write_jsonl(tmp_path / "d.jsonl", SHAREGPT_LIKE)
    fields = {"messages": "dialog", "role": "from", "content": "value"}
    for fmt in ("auto", "sharegpt", "messages"):
        src = resolve_source(SourceConfig(name="s", path=str(path), format=fmt, fields=fields))
        records = list(SourceReader(src, 0).read_files([0], None))
        assert [r["_reject"] for r in records] == [None, None]
        assert [r["id"] for r in records] == ["s:a", "s:b"]
        assert records[1]["messages"] == [
            {"role": "system", "content": "Réponds en une phrase."},
            {"role": "user", "content": "What is the capital of France?"},
            {"role": "assistant", "content": "Paris."},
        ]
    # other keys entirely, and roles named as the role aliases allow
    speakers = {"human": "utilisateur", "gpt": "assistant", "system": "system"}
    other = [
        {"turns": [{"speaker": speakers[t["from"]], "text": t["value"]} for t in row["dialog"]]}
        for row in SHAREGPT_LIKE
    ]
    path = write_jsonl(tmp_path / "o.jsonl", other)
    src = resolve_source(
        SourceConfig(name="o", path=str(path), fields={"messages": "turns", "role": "speaker", "content": "text"})
    )
    records = list(SourceReader(src, 0).read_files([0], None))
    assert [r["messages"][-1] for r in records] == [
        {"role": "assistant", "content": "Mélangez 250 g de farine, 4 œufs et 50 cl de lait."},
        {"role": "assistant", "content": "Paris."},
    ]
    # without the mapping, the turns are not found
    src = resolve_source(SourceConfig(name="o", path=str(path), format="messages"))
    (first, _) = SourceReader(src, 0).read_files([0], None)
    assert first["_reject"]["detail"] == "o.jsonl:1: no 'messages' field"


def test_a_chat_mapping_the_rows_do_not_have_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", SHAREGPT_LIKE)
    sources = f"  - name: d\n    path: {path}\n    fields: {{messages: dialog, role: form, content: text}}\n"
    code, problems = validate(tmp_path, sources)
    assert code == 2
    assert problems == [
        "T/p.yaml:5: sources[0].fields.role: source 'd': 'form' is not a key of the turns in the first 2 rows of "
        "d.jsonl (their turns have: from, value); did you mean 'from'?",
        "T/p.yaml:5: sources[0].fields.content: source 'd': 'text' is not a key of the turns in the first 2 rows of "
        "d.jsonl (their turns have: from, value); did you mean 'value'?",
    ]
    code, problems = validate(tmp_path, sources.replace("dialog", "dialogue"))
    assert code == 2
    assert problems == [
        "T/p.yaml:5: sources[0].fields.messages: source 'd': 'dialogue' is not a field of the first 2 rows of "
        "d.jsonl (they have: dialog, id); did you mean 'dialog'?"
    ]


def test_findings_of_a_clean_source_are_none(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", SHAREGPT_LIKE)
    src = resolve_source(SourceConfig(name="d", path=str(path), fields={"messages": "dialog"}))
    assert source_findings(src, sample_source(src)) == []


# ---------------------------------------------------------------------------------- the run's warning


def run(tmp_path: Path, sources: str, stages: str = "") -> tuple[str, dict]:
    (tmp_path / "p.yaml").write_text(
        f"name: t\nsources:\n{sources}stages:\n{stages or '  []'}\noutput: {{dir: {tmp_path / 'out'}}}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["run", "-q", str(tmp_path / "p.yaml")], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    (version,) = [p for p in (tmp_path / "out" / "t").iterdir() if not p.name.startswith(".")]
    return result.output, json.loads((version / "stats.json").read_text())


def test_a_run_warns_when_a_source_loses_90_percent_at_read(tmp_path, shared_data, caplog):
    """The friction's run: exit 0, but now loudly: a WARNING log line, the summary, stats.json."""
    sources = (
        f"  - name: mifeval\n    path: {shared_data / MIFEVAL}\n    format: prompt_response\n"
        "    fields: {prompt: instruction, response: output}\n"
        f"  - name: ok\n    path: {write_jsonl(tmp_path / 'ok.jsonl', [chat('Bonjour ?', 'Bonjour !')])}\n"
    )
    with caplog.at_level(logging.WARNING, logger="frcorpus.engine.losses"):
        output, stats = run(tmp_path, sources)
    message = (
        "source 'mifeval' lost 100% of its records at stage 'read': 235 of 235 rejected (read.missing_field: 235); "
        "see rejects/ for each record's detail"
    )
    assert f"warning: {message}" in output
    assert [r.getMessage() for r in caplog.records if r.name == "frcorpus.engine.losses"] == [message]
    assert stats["warnings"] == [
        {
            "source": "mifeval",
            "stage": "read",
            "in": 235,
            "rejected": 235,
            "reasons": {"read.missing_field": 235},
            "message": message,
        }
    ]


def test_the_warning_counts_what_reached_the_stage(tmp_path):
    """9 of 10 records reach `length` (one is rejected at read) and all 9 are too short there; another
    source loses 8 of 10 (under 90%) at the same stage: no warning for it."""
    short = [chat(f"Question {i} ?", "Oui.") for i in range(9)] + ["{broken"]
    mixed = [chat(f"Question {i} ?", "Oui.") for i in range(8)]
    mixed += [chat(f"Question {i} ?", "Une réponse assez longue pour passer le seuil.") for i in range(2)]
    sources = (
        f"  - name: short\n    path: {write_jsonl(tmp_path / 's.jsonl', short)}\n"
        f"  - name: mixed\n    path: {write_jsonl(tmp_path / 'm.jsonl', mixed)}\n"
    )
    output, stats = run(tmp_path, sources, "  - {type: length, min_chars: 40}")
    message = (
        "source 'short' lost 100% of its records at stage 'length': 9 of 9 rejected (length.too_short: 9); "
        "see rejects/ for each record's detail"
    )
    assert [w["message"] for w in stats["warnings"]] == [message]
    assert f"warning: {message}" in output and "'mixed' lost" not in output


def test_no_warning_no_key(tmp_path):
    sources = f"  - name: ok\n    path: {write_jsonl(tmp_path / 'ok.jsonl', [chat('Bonjour ?', 'Bonjour !')])}\n"
    output, stats = run(tmp_path, sources)
    assert "warnings" not in stats and "lost" not in output


def test_the_command_line_says_a_loss_once(tmp_path):
    """`frcorpus run` prints the warning in its summary; the WARNING log line for API users is not
    printed beside it."""
    short = [chat(f"Question {i} ?", "Oui.") for i in range(3)]
    (tmp_path / "p.yaml").write_text(
        f"name: t\nsources:\n  - name: short\n    path: {write_jsonl(tmp_path / 's.jsonl', short)}\n"
        f"stages:\n  - {{type: length, min_chars: 40}}\noutput: {{dir: {tmp_path / 'out'}}}\n",
        encoding="utf-8",
    )
    command = [sys.executable, "-c", "from frcorpus.cli import main; main()", "run", str(tmp_path / "p.yaml")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "300"})
    assert done.returncode == 0, done.stdout + done.stderr
    output = done.stdout + done.stderr
    assert output.count("source 'short' lost 100% of its records at stage 'length'") == 1, output
    assert "warning: source 'short' lost 100%" in output
