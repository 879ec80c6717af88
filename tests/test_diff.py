from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from frcorpus.cli import app
from frcorpus.version.diff import DiffError, diff_versions, stats_diff
from frcorpus.version.layout import VersionDirError
from tests.conftest import chat, run_pipeline, write_jsonl, write_pipeline

runner = CliRunner()
STAGES = [{"type": "length", "max_chars_per_turn": 50}, {"type": "exact_dedup"}]


def qa(i: int | str, rid: str | None = None, answer: str | None = None) -> dict:
    return chat(f"Question {i} ?", answer or f"Réponse {i}.", id=rid or str(i))


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> tuple[Path, Path]:
    """A and B: B drops 3 and its bad line, changes 2, makes 4 a copy of 1 and 6 too long, adds 7, and
    makes 8 (a copy of 1 in A) unique."""
    a_rows = [qa(i) for i in range(1, 7)] + [qa(1, rid="8"), "not json"]
    b_rows = [
        qa(1),
        chat("Question 2 modifiée ?", "Réponse 2.", id="2"),
        qa(1, rid="4"),
        qa(5),
        qa(6, answer="x" * 60),
        qa(7),
        qa(8),
    ]
    out = []
    for name, rows in (("a", a_rows), ("b", b_rows)):
        root = tmp_path_factory.mktemp(name)
        write_jsonl(root / "in" / "d.jsonl", rows)
        out.append(run_pipeline(write_pipeline(root, [{"name": "s", "path": str(root / "in")}], STAGES)).version_dir)
    return out[0], out[1]


def test_records_added_removed_changed_and_moved_to_rejects(versions):
    rec = diff_versions(*versions)["records"]
    assert {k: rec["added"][k] for k in ("count", "rejected_in_a", "not_in_a")} == {
        "count": 2,
        "rejected_in_a": 1,
        "not_in_a": 1,
    }
    assert [e["id"] for e in rec["added"]["examples"]] == ["s:7", "s:8"]
    assert rec["added"]["examples"][0] == {"id": "s:7", "source": "s", "turns": 2, "preview": "Question 7 ?"}
    assert {k: rec["removed"][k] for k in ("count", "rejected_in_b", "not_in_b")} == {
        "count": 3,
        "rejected_in_b": 2,
        "not_in_b": 1,
    }
    assert [e["id"] for e in rec["removed"]["examples"]] == ["s:3", "s:4", "s:6"]
    assert rec["changed"]["count"] == 1
    assert rec["changed"]["examples"] == [
        {
            "id": "s:2",
            "columns": ["messages"],
            "turns": {"a": 2, "b": 2},
            "first_difference": {
                "turn": 0,
                "role": {"a": "user", "b": "user"},
                "a": "Question 2 ?",
                "b": "Question 2 modifiée ?",
            },
        }
    ]
    assert rec["unchanged"] == 2  # s:1 and s:5
    moved = rec["kept_to_rejected"]
    assert moved["count"] == 2
    assert moved["by_reason"] == {"exact_dedup.duplicate": 1, "length.turn_too_long": 1}
    assert [(e["id"], e["stage"], e["reason"]) for e in moved["examples"]] == [
        ("s:4", "exact_dedup", "exact_dedup.duplicate"),
        ("s:6", "length", "length.turn_too_long"),
    ]
    assert moved["examples"][0]["detail"] == "dup_of=s:1"
    back = rec["rejected_to_kept"]
    assert (back["count"], back["by_reason"]) == (1, {"exact_dedup.duplicate": 1})
    assert back["examples"][0]["id"] == "s:8"


def test_stats_deltas_per_stage_reason_and_source(versions):
    result = diff_versions(*versions)
    stages = result["stages"]
    assert list(stages) == ["read", "length", "exact_dedup"]
    assert stages["read"]["in"] == {"a": 8, "b": 7, "delta": -1}
    assert stages["read"]["reasons"] == {"read.invalid_json": {"a": 1, "b": 0, "delta": -1}}
    assert stages["length"]["kept"] == {"a": 7, "b": 6, "delta": -1}
    assert stages["length"]["reasons"] == {"length.turn_too_long": {"a": 0, "b": 1, "delta": 1}}
    assert stages["exact_dedup"]["reasons"] == {"exact_dedup.duplicate": {"a": 1, "b": 1, "delta": 0}}
    assert stages["exact_dedup"]["rejected"] == {"a": 1, "b": 1, "delta": 0}
    assert all(s["only_in"] is None for s in stages.values())
    expected = {
        "only_in": None,
        "read": {"a": 8, "b": 7, "delta": -1},
        "kept": {"a": 6, "b": 5, "delta": -1},
        "rejected": {"a": 2, "b": 2, "delta": 0},
    }
    assert result["sources"] == {"s": expected}
    assert result["totals"] == {k: v for k, v in expected.items() if k != "only_in"}


def test_a_stage_or_source_on_one_side_only():
    a = {"stages": {"read": {"in": 3, "kept": 3, "rejected": {}}}, "sources": {"x": {"read": 3, "kept": 3}}}
    b = {
        "stages": {"read": {"in": 3, "kept": 3, "rejected": {}}, "length": {"in": 3, "kept": 2, "rejected": {"r": 1}}},
        "sources": {"y": {"read": 3, "kept": 2, "rejected": 1}},
    }
    diff = stats_diff(a, b)
    assert diff["stages"]["length"]["only_in"] == "b"
    assert diff["stages"]["length"]["reasons"] == {"r": {"a": 0, "b": 1, "delta": 1}}
    assert list(diff["sources"]) == ["y", "x"]  # B's order, then what only A has
    assert diff["sources"]["x"]["only_in"] == "a" and diff["sources"]["x"]["kept"] == {"a": 3, "b": 0, "delta": -3}


def test_a_version_against_itself(versions):
    result = diff_versions(versions[0], versions[0])
    assert result["identical"] is True
    rec = result["records"]
    assert [rec[k]["count"] for k in ("added", "removed", "changed", "kept_to_rejected")] == [0, 0, 0, 0]
    assert rec["unchanged"] == 6
    assert all(c["delta"] == 0 for s in result["stages"].values() for c in (s["in"], s["kept"], s["rejected"]))


def test_cli_json_has_the_documented_keys(versions):
    result = runner.invoke(app, ["diff", str(versions[0]), str(versions[1]), "--json", "--examples", "1"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert list(body) == [
        "format",
        "a",
        "b",
        "identical",
        "content_columns",
        "records",
        "stages",
        "sources",
        "totals",
    ]
    assert body["format"] == 1 and body["identical"] is False and body["content_columns"] == ["messages"]
    assert set(body["a"]) == {"path", "name", "version", "fingerprint"} and body["a"]["version"] == versions[0].name
    assert list(body["records"]) == [
        "added",
        "removed",
        "changed",
        "unchanged",
        "kept_to_rejected",
        "rejected_to_kept",
    ]
    assert len(body["records"]["removed"]["examples"]) == 1
    assert set(body["stages"]["length"]) == {"only_in", "in", "kept", "rejected", "reasons"}


def test_cli_tables(versions):
    result = runner.invoke(app, ["diff", str(versions[0]), str(versions[1])], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "kept in A, rejected in B: by reason" in text
    assert "│ removed   │       3 │ 2 rejected in B, 1 not in B │" in text
    assert "length.turn_too_long" in text and "0 → 1 (+1)" in text
    assert "changed s:2 turn 0 (user): 'Question 2 ?' → 'Question 2 modifiée ?'" in text


def test_not_a_version_directory(versions, tmp_path):
    name_dir = versions[0].parent
    result = runner.invoke(app, ["diff", str(name_dir), str(versions[1])], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {name_dir} is not a version directory (no stats.json and no data/); give "
        f"<out>/<name>/<version>; this folder holds the versions: {versions[0].name}"
    )
    with pytest.raises(VersionDirError, match=r"no such folder; give a version directory"):
        diff_versions(tmp_path / "nope", versions[1])
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "stats.json").write_text("{}")
    with pytest.raises(VersionDirError, match=r"half is not a version directory \(no data/\)"):
        diff_versions(versions[0], tmp_path / "half")


def test_unknown_content_column(versions):
    with pytest.raises(DiffError, match=r"data has no column nope; its columns: id, messages, "):
        diff_versions(*versions, columns=("messages", "nope"))
    result = runner.invoke(app, ["diff", str(versions[0]), str(versions[1]), "--columns", "nope"])
    assert result.exit_code == 2 and "data has no column nope" in result.output
