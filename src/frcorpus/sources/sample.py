"""What the first rows of a source's files say about its configuration, for `frcorpus validate`.

Each file's first `SAMPLE_ROWS` rows (of JSON lines, those within its first `SAMPLE_BYTES`) go through
the run's own reader (`SourceReader.sample`). Errors: a `fields:` name that none of those rows has, a
format that cannot be detected or that rejects every row while the rows look like another, a source
whose every sampled row the reader rejects. A source that keeps some rows but rejects
`WARN_SHARE` or more of them is a warning.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from frcorpus.sources.config import FORMATS
from frcorpus.sources.filestate import FileState
from frcorpus.sources.formats import CHAT_FORMATS, ReadIssue, chat_fields, detect_format
from frcorpus.sources.reader import SourceReader
from frcorpus.sources.resolve import ResolvedSource
from frcorpus.yamlconf import suggest

SAMPLE_ROWS = 100
SAMPLE_BYTES = 1 << 20
WARN_SHARE = 0.5  # of the sampled rows rejected at `read`, for a warning
LISTED = 12  # field names listed in a message
# the names a row usually has for each mapped field, suggested when no name is close to the mapped one
USUAL = {
    "prompt": ("prompt", "instruction", "question"),
    "response": ("response", "output", "answer", "completion"),
    "system": ("system",),
    "messages": ("messages", "conversations", "conversation"),
    "role": ("role", "from"),
    "content": ("content", "value"),
}


@dataclass
class Finding:
    """A problem of a source's configuration: `where` is its YAML path below the source's entry."""

    where: tuple[str, ...]
    text: str
    error: bool = True


@dataclass
class FileSample:
    """The first rows of one file: the reader's state after them, the rows as parsed, their records."""

    state: FileState
    rows: list[Any]
    records: list[dict[str, Any]]

    @property
    def objects(self) -> list[dict]:
        return [row for row in self.rows if isinstance(row, dict)]

    @property
    def rejected(self) -> Counter:
        return Counter(r["_reject"]["reason"] for r in self.records if r["_reject"] is not None)

    @property
    def kept(self) -> int:
        return len(self.records) - sum(self.rejected.values())


def sample_source(src: ResolvedSource) -> list[FileSample]:
    """The first rows of every file of a source, read as a run reads them."""
    reader = SourceReader(src, 0)
    return [FileSample(*reader.sample(i, SAMPLE_ROWS, SAMPLE_BYTES)) for i in range(len(src.files))]


def source_findings(src: ResolvedSource, samples: list[FileSample]) -> list[Finding]:
    """The problems the sampled rows show, most specific first: a field mapping the rows do not have hides
    the format and `read` problems it causes, a format problem hides the `read` one."""
    findings = _field_findings(src, samples)
    if not findings:
        findings = [f for sample in samples for f in _format_findings(src, sample)]
    if not any(f.error for f in findings):
        findings += _read_findings(src, samples)
    return findings


def _names(names: set[str]) -> str:
    shown = sorted(names)
    return ", ".join(shown[:LISTED]) + (f", ... ({len(shown)} in all)" if len(shown) > LISTED else "")


def _rows_of(samples: list[FileSample]) -> str:
    """'the first 3 rows of qa.jsonl', or 'the first rows of its 2 files (150 rows)'."""
    rows = sum(len(s.rows) for s in samples)
    if len(samples) == 1:
        return f"the first {f'{rows} rows' if rows != 1 else 'row'} of {samples[0].state.rel}"
    return f"the first rows of its {len(samples)} files ({rows} rows)"


def _suggestion(name: str, present: set[str], key: str) -> str:
    close = suggest(name, sorted(present))
    if close:
        return close
    usual = next((n for n in USUAL[key] if n in present), None)
    return f"; did you mean {usual!r}?" if usual else ""


def _turn_keys(sample: FileSample) -> set[str]:
    """The keys of the turns of the sampled rows, in the field the file's chat format reads them from."""
    turn_fields, _, _ = chat_fields(sample.state.fmt, sample.state.fields)
    keys: set[str] = set()
    for row in sample.objects:
        turns = next((row[f] for f in turn_fields if isinstance(row.get(f), list)), [])
        keys.update(k for turn in turns if isinstance(turn, dict) for k in turn)
    return keys


def _field_findings(src: ResolvedSource, samples: list[FileSample]) -> list[Finding]:
    """A name of `fields:`, set in the pipeline, that no sampled row of the files that use it has."""
    cfg = src.config
    name = cfg.name
    undetected = [s for s in samples if cfg.format == "auto" and not s.state.detected]
    by_format = {
        fmt: [s for s in samples if s.state.detected and s.state.fmt in fmts] + undetected
        for fmt, fmts in (("prompt_response", ("prompt_response",)), ("chat", CHAT_FORMATS))
    }
    findings = []
    for key in ("prompt", "response", "system", "messages", "role", "content"):
        value = getattr(cfg.fields, key)
        if key not in cfg.fields.model_fields_set or value is None:
            continue
        users = by_format["prompt_response" if key in ("prompt", "response", "system") else "chat"]
        users = [s for s in users if s.objects]
        if key in ("role", "content"):
            users = [s for s in users if s.state.detected]
            present = set().union(*(_turn_keys(s) for s in users))
            what = f"a key of the turns in {_rows_of(users)}"
        else:
            present = {k for s in users for row in s.objects for k in row}
            what = f"a field of {_rows_of(users)}"
        if not users or not present or value in present:
            continue
        has = "their turns have" if key in ("role", "content") else "they have"
        hint = _suggestion(value, present, key)
        findings.append(
            Finding(
                ("fields", key),
                f"source {name!r}: {value!r} is not {what} ({has}: {_names(present)}){hint}",
                error=key != "system",  # a system prompt may be absent from the first rows
            )
        )
    return findings


def _format_findings(src: ResolvedSource, sample: FileSample) -> list[Finding]:
    """A file whose format cannot be detected, or whose configured format rejects every sampled row while
    the rows look like another format."""
    cfg = src.config
    rows = sample.objects
    if not rows:
        return []
    fields = _names({k for row in rows for k in row})
    formats = ", ".join(f for f in FORMATS if f != "auto")
    what = _rows_of([sample])
    if cfg.format == "auto" and not sample.state.detected:
        return [
            Finding(
                ("format",),
                f"source {cfg.name!r}: cannot detect the format of {what} (fields: {fields}); set format: "
                f"({formats}) and name the rows' fields in fields: (prompt, response; or messages, role, content)",
            )
        ]
    if cfg.format == "auto" or sample.kept:
        return []
    try:
        looks, _ = detect_format(rows[0], cfg)
    except ReadIssue:
        looks = None
    if looks == cfg.format:
        return []
    like = f"they look like {looks}; set format: {looks} or auto" if looks else f"their fields: {fields}"
    return [
        Finding(
            ("format",),
            f"source {cfg.name!r}: format {cfg.format} does not match {what}: it rejects every one "
            f"({_reasons(sample.rejected)}); {like}",
        )
    ]


def _reasons(rejected: Counter) -> str:
    return ", ".join(f"{reason}: {n}" for reason, n in sorted(rejected.items(), key=lambda item: (-item[1], item[0])))


def _read_findings(src: ResolvedSource, samples: list[FileSample]) -> list[Finding]:
    """A source whose every sampled row is rejected at `read` (an error), or WARN_SHARE or more of them."""
    rows = sum(len(s.records) for s in samples)
    rejected = sum((s.rejected for s in samples), Counter())
    n = sum(rejected.values())
    if not rows or n < WARN_SHARE * rows:
        return []
    first = next(r["_reject"]["detail"] for s in samples for r in s.records if r["_reject"] is not None)
    what = _rows_of([s for s in samples if s.records])
    if n == rows:
        text = f"the reader rejects every one of {what}, so a run would keep nothing of it"
    else:
        text = f"the reader rejects {n} of {what}"
    return [Finding((), f"source {src.config.name!r}: {text} ({_reasons(rejected)}); the first: {first}", n == rows)]
