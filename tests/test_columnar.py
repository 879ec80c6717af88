"""The columnar paths (Arrow reader, `process_table`, `signature_table`) give exactly what the
per-record paths give: the same records, reasons, counters and byte-identical datasets."""

from __future__ import annotations

import copy
import json
import random

import pytest

from frcorpus.batch import Batch, unstable_class, work_schema
from frcorpus.sources.config import SourceConfig
from frcorpus.sources.reader import SourceReader
from frcorpus.sources.resolve import resolve_source
from frcorpus.stages.dedup import ExactDedup, MinhashDedup
from frcorpus.stages.normalize import Normalize
from frcorpus.stages.select import Select
from tests.conftest import run_pipeline, write_jsonl, write_pipeline
from tests.test_engine import check_accounting, file_hashes

# pieces that exercise every branch: NFC/NFKC changes, combining marks, Hangul, code fences, CR,
# trailing spaces, blank lines, Unicode whitespace that only str.split knows, casing oddities
PIECES = [
    "a", "é", "e\u0301", "\u212b", "ﬁ", " ", "  ", "\t", "\n", "\n\n\n", " \n", "\r\n", "\r",
    "```py\nx  = 1 \n\n\n```", "~~~\n y\n~~~", "\u00a0", "\u3000", "\x1c", "Merci", "’", "« ", " »",
    "\u202f", "가", "\u1100\u1161", "İ", "ß", "ǅ", "ΑΣ", "\x85",
]  # fmt: skip


def tricky_text(rng: random.Random) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12)))


def tricky_rows(n: int, seed: int = 1) -> list[dict]:
    """Chat rows, about one in five broken or unusual in a way the reader must notice."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        msgs = [
            {"role": "user", "content": f"question {i} {tricky_text(rng)}"},
            {"role": "assistant", "content": f"réponse {i}"},
        ]
        row: dict = {"id": f"x{i}", "messages": msgs}
        k = rng.random()
        if k < 0.03:
            msgs[0]["role"] = "Human"  # an alias: the fast path maps it
        elif k < 0.05:
            msgs[1]["content"] = " \u3000\x1c "  # empty once stripped
        elif k < 0.07:
            msgs.insert(1, {"role": "system", "content": "sys"})  # misplaced system turn
        elif k < 0.09:
            msgs.append({"role": "assistant", "content": "again"})  # consecutive roles
        elif k < 0.10:
            row["messages"] = msgs[:1]  # no assistant turn
        elif k < 0.12:
            row["id"] = f"x{i - 1}"  # repeats an id
        elif k < 0.14:
            del row["id"]  # hashed id
        elif k < 0.15:
            msgs.insert(0, {"role": "system", "content": ""})  # empty system prompt
        elif k < 0.16:
            row["messages"] = []
        elif k < 0.17:
            msgs[0]["role"] = "wizard"  # unknown role
        elif k < 0.18:
            msgs[1]["extra"] = 3  # an extra field in a turn
        elif k < 0.19:
            row["messages"] = [msgs[1], msgs[0]]  # opens with the assistant
        rows.append(row)
    return rows


def read_both_ways(monkeypatch, path, **cfg):
    out = {}
    for mode in ("1", "0"):
        monkeypatch.setenv("FRCORPUS_COLUMNAR", mode)
        src = resolve_source(SourceConfig(name="s", path=str(path), **cfg))
        reader = SourceReader(src, 0)
        batches = list(reader.read_batches(list(range(len(src.files))), cfg.get("limit"), work_schema([])))
        tables = sum(b.is_table for b in batches)
        out[mode] = ([r for b in batches for r in b.records()], reader.formats, tables)
    return out["1"], out["0"]


@pytest.mark.parametrize(
    ("variant", "cfg"),
    [("plain", {"format": "messages"}), ("plain", {"format": "auto", "limit": 1234}), ("int_ids", {}), ("blank", {})],
)
def test_reader_fast_path_reads_exactly_what_the_row_reader_reads(tmp_path, monkeypatch, variant, cfg):
    rows = tricky_rows(3000)
    if variant == "int_ids":
        rows = [{**r, "id": i} for i, r in enumerate(rows)]
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    if variant == "blank":  # a blank line and a broken one: the chunk goes row by row
        lines[10:10] = ["", '{"broken": ']
    path = write_jsonl(tmp_path / "d.jsonl", lines)
    (fast, fast_formats, tables), (slow, slow_formats, slow_tables) = read_both_ways(monkeypatch, path, **cfg)
    assert slow_tables == 0
    assert tables == (0 if variant == "blank" else 1)
    assert fast == slow
    assert fast_formats == slow_formats
    reasons = {r["_reject"]["reason"] for r in slow if r["_reject"]}
    # the rows really were broken in every way the generator intended
    assert {"read.misplaced_system", "read.consecutive_roles", "read.no_assistant_turn"} <= reasons
    assert {"read.empty_content", "read.unknown_role", "read.starts_with_assistant"} <= reasons
    assert ("read.duplicate_id" in reasons) == (variant != "int_ids")  # int ids are all distinct


def test_reader_fast_path_on_real_data(monkeypatch, shared_data):
    (fast, formats, tables), (slow, slow_formats, _) = read_both_ways(
        monkeypatch, shared_data / "instruct_fr" / "vigogne", format="auto"
    )
    assert tables == 2  # both OASST files (UTILISATEUR/ASSISTANT roles) take the fast path
    assert fast == slow and formats == slow_formats == {"alpaca": 28, "messages": 1439}


def tricky_records(n: int = 3000, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    source = {k: None for k in ("uri", "revision", "license", "language", "location", "record_id")}
    records = []
    for i in range(n):
        msgs = []
        if rng.random() < 0.3:
            msgs.append({"role": "system", "content": rng.choice(["", " ", tricky_text(rng)])})
        for _ in range(rng.randint(1, 3)):
            msgs.append({"role": "user", "content": tricky_text(rng) or "q"})
            msgs.append({"role": "assistant", "content": tricky_text(rng) or " "})
        dead = rng.random() < 0.1
        records.append(
            {
                "id": f"r{i}",
                "messages": msgs,
                "source": {"name": "s", **source},
                "_order": [0, 0, i],
                "_reject": {"stage": "read", "reason": "read.x", "detail": ""} if dead else None,
                "_raw": None,
            }
        )
    return records


@pytest.mark.parametrize(
    "cfg",
    [{}, {"unicode_form": "NFKC"}, {"whitespace": False}, {"collapse_spaces": True}, {"unicode_form": "none"}],
)
def test_normalize_columnar_equals_per_record(cfg):
    schema = work_schema([])
    records = tricky_records()
    per_record = Normalize(Normalize.Config(type="normalize", **cfg), "normalize")
    columnar = Normalize(Normalize.Config(type="normalize", **cfg), "normalize")
    expected = copy.deepcopy(records)
    per_record.run_batch(expected)
    got = columnar.run_table(Batch(schema, records=copy.deepcopy(records)).table())
    assert got is not None
    assert got.to_pylist() == Batch(schema, records=expected).table().to_pylist()
    for stage in (per_record, columnar):
        stage.stats.seconds = 0
    assert per_record.stats.to_json() == columnar.stats.to_json()
    assert per_record.stats.counters["turns_changed"] > 1000  # the data did exercise it


def test_normalize_system_policies_fall_back_to_records():
    stage = Normalize(Normalize.Config(type="normalize", system_prompt="drop"), "normalize")
    assert stage.run_table(Batch(work_schema([]), records=tricky_records(10)).table()) is None


@pytest.mark.parametrize(
    "cfg",
    [
        {},
        {"ignore": ["whitespace", "case"]},
        {"ignore": ["punctuation", "accents"]},
        {"view": "prompt"},
        {"view": "response"},
    ],
)
def test_exact_dedup_signature_table_equals_signature(cfg):
    records = tricky_records()
    stage = ExactDedup(ExactDedup.Config(type="exact_dedup", **cfg), "exact_dedup")
    table = Batch(work_schema([]), records=copy.deepcopy(records)).table()
    assert stage.signature_table(table).to_pylist() == [stage.signature(r) for r in records]


@pytest.mark.parametrize("cfg", [{}, {"view": "prompt", "n_grams": 2}, {"keep": "longest_answer"}])
def test_minhash_signature_table_equals_signature_records(cfg):
    records = tricky_records(500)
    stage = MinhashDedup(MinhashDedup.Config(type="minhash_dedup", **cfg), "minhash_dedup")
    stage.setup()
    table = Batch(work_schema([]), records=copy.deepcopy(records)).table()
    assert stage.signature_table(table).to_pylist() == stage.signature_records(records).to_pylist()


def test_select_signature_table_equals_signature():
    records = tricky_records(200)
    stage = Select(Select.Config(type="select", seed=7, fraction=0.5), "select")
    table = Batch(work_schema([]), records=copy.deepcopy(records)).table()
    assert stage.signature_table(table) == [stage.signature(r) for r in records]


def test_unstable_class_flags_every_character_that_normalisation_changes():
    import unicodedata

    import pyarrow as pa
    import pyarrow.compute as pc

    texts = ["e\u0301", "\u212b", "ﬁ", "\u1100\u1161", "Å", "é", "plain", "’«»\u202f"]
    flagged = {
        form: pc.match_substring_regex(pa.array(texts), unstable_class(form)).to_pylist() for form in ("NFC", "NFKC")
    }
    for form, flags in flagged.items():
        for text, flag in zip(texts, flags, strict=True):
            if unicodedata.normalize(form, text) != text:
                assert flag, (form, text)
    # ordinary French text is left alone by NFC; NFKC turns the narrow no-break space into a space
    assert flagged["NFC"][-2:] == [False, False]
    assert flagged["NFKC"][-2:] == [False, True]


def test_pipeline_is_byte_identical_with_and_without_the_columnar_paths(tmp_path, monkeypatch):
    rows = [json.dumps(r, ensure_ascii=False) for r in tricky_rows(2500, seed=5)]
    rows += [json.dumps(r, ensure_ascii=False) for r in tricky_rows(500, seed=5)]  # exact duplicates
    for i in range(3):
        write_jsonl(tmp_path / "in" / f"part{i}.jsonl", rows[i::3])
    stages = [
        {"type": "normalize"},
        {"type": "exact_dedup"},
        {"type": "fix_text"},
        {"type": "langid", "annotate_only": True},  # annotation columns go through both paths
        {"type": "heuristics"},
        {"type": "length", "min_assistant_chars": 8},
        {"type": "select", "fraction": 0.8},
    ]
    results = {}
    for mode in ("1", "0"):
        monkeypatch.setenv("FRCORPUS_COLUMNAR", mode)
        d = tmp_path / f"run{mode}"
        d.mkdir()
        path = write_pipeline(d, [{"name": "s", "path": str(tmp_path / "in")}], stages, {"type": "local", "tasks": 2})
        results[mode] = run_pipeline(path)
    fast, slow = results["1"], results["0"]
    assert fast.fingerprint == slow.fingerprint
    assert file_hashes(fast.version_dir) == file_hashes(slow.version_dir)
    stats = check_accounting(fast.version_dir)
    assert stats["stages"]["exact_dedup"]["rejected"]["exact_dedup.duplicate"] >= 400
    assert stats["stages"]["select"]["rejected"]["select.sampled_out"] > 0
