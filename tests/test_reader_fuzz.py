"""Fuzzing the readers: generated rows of every edge shape the JSON-lines chat formats allow (and
many they do not), read by the columnar fast path and by the per-row reader, must give the same
records, reasons and locations; and random damaged files of every format must make a run that
accounts for every record and never crashes."""

from __future__ import annotations

import gzip
import json
import random
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from frcorpus.batch import work_schema
from frcorpus.sources import lines as source_lines
from frcorpus.sources.config import SourceConfig
from frcorpus.sources.reader import SourceReader
from frcorpus.sources.resolve import resolve_source
from tests.conftest import write_pipeline

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# texts that probe whitespace, control characters, escapes and non-ASCII
TEXT = st.one_of(
    st.sampled_from(["Bonjour", "Réponse.", "", " ", "\u3000", "\x1c\x1d", "\n", "a\nb", "\x00", "\\", '"', "\u2028"]),
    st.text(max_size=4),
)
ROLE = st.sampled_from(["user", "assistant", "system", "Human", "gpt", "UTILISATEUR", " User ", "wizard", ""])
ANY_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False), TEXT)


@st.composite
def good_turns(draw, role_key: str, content_key: str) -> list[dict]:
    turns = []
    if draw(st.booleans()):
        turns.append({role_key: "system", content_key: draw(TEXT)})
    for _ in range(draw(st.integers(1, 3))):
        turns.append({role_key: "user", content_key: "Question " + draw(TEXT)})
        turns.append({role_key: "assistant", content_key: "Réponse " + draw(TEXT)})
    return turns


@st.composite
def odd_turns(draw, role_key: str, content_key: str) -> list:
    """Turns that break some rule, or wear unusual types, keys or values."""
    turn = st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                role_key: st.one_of(ROLE, ANY_SCALAR),
                content_key: st.one_of(
                    TEXT,
                    ANY_SCALAR,
                    st.lists(st.fixed_dictionaries({"type": st.sampled_from(["text", "image"]), "text": TEXT})),
                ),
                "extra": ANY_SCALAR,
            },
        ),
        ANY_SCALAR,
        st.lists(TEXT, max_size=2),
    )
    return draw(st.lists(turn, max_size=5))


@st.composite
def typed_row(draw, style: str, id_kind: str):
    """A row whose fields have the types the fast path reads (strings, or nulls, where the turns and
    ids go), broken in every way those types allow: it must find each break the per-row reader finds."""
    role_key, content_key = ("role", "content") if style == "messages" else ("from", "value")
    keys = ["messages", "conversations", "conversation"] if style == "messages" else ["conversations", "conversation"]
    text = st.one_of(TEXT, st.none())
    turn = st.one_of(
        st.fixed_dictionaries({}, optional={role_key: st.one_of(ROLE, st.none()), content_key: text, "x": text}),
        st.none(),
    )
    turns = st.one_of(good_turns(role_key, content_key), st.lists(turn, max_size=5), st.none())
    key = draw(st.sampled_from(keys))
    obj = {key: draw(turns) if draw(st.integers(0, 3)) == 0 else draw(good_turns(role_key, content_key))}
    for other in draw(st.lists(st.sampled_from(keys), max_size=2, unique=True)):
        obj.setdefault(other, None)  # a null in another chat field (what `datasets` writes for absent columns)
    if id_kind != "none" and draw(st.integers(0, 3)):
        pool = {"str": st.sampled_from(["a", "b", "a#1", "s:x", "0123456789abcdef", "%3A"]), "int": st.integers(0, 4)}
        obj["id"] = draw(st.one_of(pool[id_kind], st.none()))
    return obj


@st.composite
def row(draw, style: str, id_kind: str):
    role_key, content_key = ("role", "content") if style == "messages" else ("from", "value")
    keys = ["messages", "conversations", "conversation"] if style == "messages" else ["conversations", "conversation"]
    obj: dict = {}
    if draw(st.integers(0, 7)):  # mostly well-formed, so that the fast path has chunks to take
        obj[draw(st.sampled_from(keys))] = draw(good_turns(role_key, content_key))
    else:
        for key in draw(st.lists(st.sampled_from(keys + ["messages"]), max_size=3, unique=True)):
            obj[key] = draw(st.one_of(odd_turns(role_key, content_key), good_turns(role_key, content_key), ANY_SCALAR))
    if draw(st.integers(0, 5)) == 0:  # another format's fields, or a null where a chat field could be
        obj[draw(st.sampled_from(keys + ["instruction", "output", "x"]))] = draw(ANY_SCALAR)
    ids = {"str": st.sampled_from(["a", "b", "c", "a#1", "s:x"]), "int": st.integers(0, 4)}
    if id_kind != "none" and draw(st.integers(0, 3)):
        obj["id"] = draw(ids[id_kind]) if draw(st.integers(0, 6)) else draw(ANY_SCALAR)
    return obj


def line_of(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


RAW_LINES = st.sampled_from(
    [
        "",  # a blank line
        "   ",
        '{"messages": ',  # broken JSON
        "[1, 2]",  # not an object
        "42",
        '{"messages": NaN}',  # JSON that Arrow accepts and JSON does not
        "\ufeff{}",
        '{"messages": [{"role": "user", "content": "a", "role": "assistant"}]}',  # a key twice
        '{"id": "a"} {"id": "b"}',  # two objects on one line
    ]
)


@st.composite
def jsonl_file(draw) -> tuple[bytes, str]:
    style = draw(st.sampled_from(["messages", "sharegpt"]))
    id_kind = draw(st.sampled_from(["str", "int", "none"]))
    lines = []
    damaged = draw(st.booleans())  # else only JSON objects: whole chunks for the fast path
    for _ in range(draw(st.integers(1, 25))):
        if damaged and draw(st.integers(0, 8)) == 0:
            lines.append(draw(RAW_LINES).encode())
        elif damaged and draw(st.integers(0, 30)) == 0:
            lines.append(b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}')  # not UTF-8
        else:
            lines.append(line_of(draw(row(style, id_kind) if damaged else typed_row(style, id_kind))).encode())
    ending = draw(st.sampled_from([b"\n", b"\r\n"]))
    body = ending.join(lines) + (ending if draw(st.booleans()) else b"")
    fmt = draw(st.sampled_from(["auto", style]))
    return body, fmt


def read(path: Path, fmt: str, columnar: str, monkeypatch) -> tuple[list[dict], dict, int]:
    monkeypatch.setenv("FRCORPUS_COLUMNAR", columnar)
    src = resolve_source(SourceConfig(name="s", path=str(path), format=fmt))
    reader = SourceReader(src, 0)
    batches = list(reader.read_batches([0], None, work_schema([])))
    tables = sum(b.is_table for b in batches)  # before records(), which drops a batch's table
    return [r for b in batches for r in b.records()], reader.formats, tables


@FUZZ
@given(jsonl_file(), st.sampled_from([64, 700, 1 << 20]))
def test_the_two_readers_agree_on_every_generated_file(data, chunk_bytes):
    body, fmt = data
    with pytest.MonkeyPatch.context() as monkeypatch, tempfile.TemporaryDirectory() as tmp:
        monkeypatch.setattr(source_lines, "CHUNK_BYTES", chunk_bytes)  # several chunks: state crosses them
        path = Path(tmp) / "d.jsonl"
        path.write_bytes(body)
        fast, fast_formats, tables = read(path, fmt, "1", monkeypatch)
        slow, slow_formats, _ = read(path, fmt, "0", monkeypatch)
    event(f"fast path took {'some' if tables else 'no'} chunk")
    assert fast == slow
    assert fast_formats == slow_formats
    ids = [r["id"] for r in slow]
    assert len(ids) == len(set(ids))  # every record id is unique
    for r in slow:
        if r["_reject"] is not None:
            assert r["_reject"]["detail"].startswith(r["source"]["location"] + ":")
            assert r["source"]["location"].startswith("d.jsonl:")


# ----------------------------------------------------------------------------------- whole runs


def _chat_row(rng: random.Random, i: int) -> dict:
    turns = [
        {"role": "user", "content": f"Question {i} : {rng.choice(WORDS)} {rng.choice(WORDS)} ?"},
        {"role": "assistant", "content": f"Réponse {i} : {' '.join(rng.choices(WORDS, k=rng.randint(1, 12)))}."},
    ]
    return {"id": f"r{i}", "messages": turns} if rng.random() < 0.7 else {"messages": turns}


WORDS = ["le", "chat", "mange", "une", "pomme", "verte", "dans", "la", "cuisine", "été", "où", "ça"]


def _damage_row(rng: random.Random, obj: dict) -> object:
    """A row broken in one of the ways real files are."""
    kind = rng.randrange(9)
    if kind == 0:
        return None  # a JSON null
    if kind == 1:
        return {**obj, "messages": rng.choice([None, "texte", 3, [], [None], [{"role": "user"}]])}
    if kind == 2:
        return {**obj, "id": rng.choice([None, 1.5, True, {"a": 1}, "r0"])}
    if kind == 3:
        return {**obj, "messages": obj["messages"][::-1]}
    if kind == 4:
        return {**obj, "messages": None, "conversations": obj["messages"]}
    if kind == 5:
        return {"instruction": "Fais ceci.", "output": rng.choice(["Fait.", None, ""])}
    if kind == 6:
        return [obj]
    if kind == 7:
        return {**obj, "messages": [{**t, "content": rng.choice([" ", "\u3000", None, 5])} for t in obj["messages"]]}
    return {**obj, "messages": [{"role": rng.choice(["Human", "gpt", "wizard", None]), "content": "x"}]}


def _jsonl_bytes(rng: random.Random, n: int) -> bytes:
    lines = []
    for i in range(n):
        obj = _chat_row(rng, i)
        roll = rng.random()
        if roll < 0.15:
            lines.append(json.dumps(_damage_row(rng, obj), ensure_ascii=False).encode())
        elif roll < 0.18:
            lines.append(rng.choice([b"", b"  ", b'{"messages": [', b"NaN", b"\xff\xfe{}", b'{"id": "a"} {"id": "b"}']))
        elif roll < 0.20:
            line = json.dumps(obj, ensure_ascii=False).encode()
            lines.append(line[: rng.randrange(1, len(line))])  # a line cut short
        else:
            lines.append(json.dumps(obj, ensure_ascii=False).encode())
    return b"\n".join(lines) + (b"\n" if rng.random() < 0.7 else b"")


def _write_random_files(rng: random.Random, folder: Path) -> list[dict]:
    """One source per file, each of a random kind and damage."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = []
    for k in range(7):
        kind = rng.choice(["jsonl", "jsonl", "gz", "gz_cut", "json", "parquet", "parquet_bad", "empty"])
        n = rng.randint(5, 60)
        if kind == "jsonl":
            path = folder / f"f{k}.jsonl"
            path.write_bytes(_jsonl_bytes(rng, n))
        elif kind.startswith("gz"):
            path = folder / f"f{k}.jsonl.gz"
            data = gzip.compress(_jsonl_bytes(rng, n))
            path.write_bytes(data[: rng.randrange(20, len(data))] if kind == "gz_cut" else data)
        elif kind == "json":
            path = folder / f"f{k}.json"
            rows = [_damage_row(rng, _chat_row(rng, i)) if rng.random() < 0.2 else _chat_row(rng, i) for i in range(n)]
            path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
        elif kind.startswith("parquet"):
            path = folder / f"f{k}.parquet"
            rows = [_chat_row(rng, i) for i in range(n)]
            for i in rng.sample(range(n), k=n // 5):  # odd values that keep the table's types
                rows[i]["messages"] = rng.choice([[], None, rows[i]["messages"][::-1], rows[i]["messages"][:1]])
            pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=max(1, n // 3), compression="none")
            if kind == "parquet_bad":
                column = pq.ParquetFile(path).metadata.row_group(1).column(0)
                data = bytearray(path.read_bytes())
                offset = column.dictionary_page_offset or column.data_page_offset
                data[offset : offset + 12] = bytes(rng.randrange(256) for _ in range(12))
                path.write_bytes(bytes(data))
        else:
            path = folder / f"f{k}.jsonl"
            path.write_bytes(rng.choice([b"", b"\n\n"]))
        sources.append({"name": f"s{k}", "path": str(path)})
    return sources


def _run(pipeline: Path, columnar: str, monkeypatch) -> tuple[int, str]:
    from typer.testing import CliRunner

    from frcorpus.cli import app

    monkeypatch.setenv("FRCORPUS_COLUMNAR", columnar)
    result = CliRunner().invoke(app, ["run", "-q", str(pipeline)], env={"COLUMNS": "200"})
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not crashed and "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def _decisions(version_dir: Path) -> dict[str, tuple]:
    out = {}
    for folder in ("data", "rejects"):
        for r in pq.read_table(version_dir / folder).to_pylist() if (version_dir / folder).is_dir() else []:
            out[r["id"]] = (r["source"]["location"], r.get("reason"), r.get("detail"))
    return out


@pytest.mark.parametrize("seed", [1, 5, 6])  # 6: a .gz cut inside its first block
def test_runs_over_random_damaged_files_account_for_every_record(tmp_path, monkeypatch, seed):
    rng = random.Random(seed)
    sources = _write_random_files(rng, tmp_path / "in")
    stages = [{"type": "normalize"}, {"type": "exact_dedup"}]
    decisions = []
    for columnar in ("1", "0"):
        pipeline = write_pipeline(tmp_path, sources, stages, name=f"fuzz{columnar}")
        code, output = _run(pipeline, columnar, monkeypatch)
        if code == 2:  # a file no reader can start on (a broken JSON array, a gzip header): named, before any work
            assert "problem(s) in the pipeline" in output and "cannot read" in " ".join(output.split())
            assert not (tmp_path / "out" / f"fuzz{columnar}").exists()
            decisions.append(None)
            continue
        assert code == 0, output
        (version_dir,) = [p for p in (tmp_path / "out" / f"fuzz{columnar}").iterdir() if not p.name.startswith(".")]
        stats = json.loads((version_dir / "stats.json").read_text())
        assert list(stats["sources"]) == [s["name"] for s in sources]
        for name, counts in stats["sources"].items():
            assert counts["read"] == counts["kept"] + counts["rejected"], name
        found = _decisions(version_dir)
        assert len(found) == stats["totals"]["read"]  # ids are unique, and every record read is there
        for location, reason, detail in found.values():
            assert location and location.startswith("f")  # the file, then :line or [row]
            if reason is not None and reason.startswith("read."):
                assert detail.startswith(location + ":")
        decisions.append(found)
    assert decisions[0] == decisions[1]
