"""Fuzzing the readers: generated rows of every edge shape the JSON-lines chat formats allow (and
many they do not), read by the columnar fast path and by the per-row reader, must give the same
records, reasons and locations; and random damaged files of every format must make a run that
accounts for every record and never crashes."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from frcorpus.batch import work_schema
from frcorpus.config import SourceConfig
from frcorpus.stages import io
from frcorpus.stages.io import SourceReader, resolve_source

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
        monkeypatch.setattr(io, "CHUNK_BYTES", chunk_bytes)  # several chunks: state crosses them
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
