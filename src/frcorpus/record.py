"""The canonical record: its fields, its Arrow schemas, and helpers to read its parts.

Two faces of one shape:
- pydantic models (`BaseRecord`, and the whole record with every stage's columns from
  `frcorpus.stages.record_model()`) validate records at the edges (tests, users building records in
  Python) and document the schema;
- inside the hot loop a record is a plain dict with the same keys, because building a pydantic
  object per record would cost more than the stages themselves. Engine-private keys start with
  `_` (`_order`, `_reject`, `_raw`) and are never written to the dataset.

The Parquet schema is explicit (`data_schema`, `rejects_schema`) so that every shard of every run
has the same columns and types, whatever the first batch happened to contain.
"""

from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant"]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    content: str = Field(min_length=1)


class SourceInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    uri: str
    revision: str | None = None
    license: str | None = None
    language: str | None = None
    location: str | None = Field(None, description="file:line (or file:row) the record was read from")
    record_id: str | None = Field(None, description="the id the source gave the record, if any")


class BaseRecord(BaseModel):
    """The fields every record has. The columns stages add (`Stage.annotations`) come on top:
    `frcorpus.stages.record_model()` builds the whole model from the registry."""

    model_config = ConfigDict(extra="forbid")
    id: str
    messages: list[Message] = Field(min_length=1)
    source: SourceInfo


MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])
SOURCE_TYPE = pa.struct(
    [
        ("name", pa.string()),
        ("uri", pa.string()),
        ("revision", pa.string()),
        ("license", pa.string()),
        ("language", pa.string()),
        ("location", pa.string()),
        ("record_id", pa.string()),
    ]
)
BASE_FIELDS: list[tuple[str, pa.DataType]] = [
    ("id", pa.string()),
    ("messages", pa.list_(MESSAGE_TYPE)),
    ("source", SOURCE_TYPE),
]
REJECT_FIELDS: list[tuple[str, pa.DataType]] = [
    ("stage", pa.string()),
    ("reason", pa.string()),
    ("detail", pa.string()),
    ("raw", pa.string()),
]


def data_schema(annotation_fields: list[tuple[str, pa.DataType]]) -> pa.Schema:
    """Columns of `data/*.parquet`: the base record plus the columns the pipeline's stages add."""
    return pa.schema(BASE_FIELDS + annotation_fields)


def intermediate_schema(annotation_fields: list[tuple[str, pa.DataType]]) -> pa.Schema:
    """Records between two phases: the data columns plus the global order (source, file, row)."""
    return pa.schema(BASE_FIELDS + annotation_fields + [("_order", pa.list_(pa.int64()))])


def rejects_schema(annotation_fields: list[tuple[str, pa.DataType]]) -> pa.Schema:
    return pa.schema(BASE_FIELDS + annotation_fields + REJECT_FIELDS)


def record_language(record: dict[str, Any]) -> str | None:
    """The record's language: the `langid` annotation's, else a translation's target, else the source's
    declared one."""
    summary = record.get("langid")
    if summary and summary.get("lang") not in (None, "und"):
        return summary["lang"]
    lineage = record.get("lineage")
    if lineage and lineage.get("target_lang"):
        return lineage["target_lang"]
    return (record.get("source") or {}).get("language")


#: values of the `split` annotation (the `split` stage); a version with it writes data/<split>-<rank>.parquet
SPLITS = ("train", "test")

#: the `scores` annotation: one float per scoring stage, keyed by its name (quality_classifier, llm_judge)
SCORES_TYPE = pa.map_(pa.string(), pa.float32())


def record_scores(record: dict[str, Any]) -> dict[str, float]:
    """The record's `scores` annotation as a dict (empty when there is none). A stage writes a dict;
    a record read back from Arrow holds a map column as a list of (key, value) tuples."""
    scores = record.get("scores")
    if not scores:
        return {}
    return dict(scores.items() if isinstance(scores, dict) else scores)


def new_record(
    *,
    record_id: str,
    messages: list[dict[str, str]],
    source: dict[str, Any],
    order: tuple[int, int, int],
) -> dict[str, Any]:
    """A record dict as the readers emit it."""
    return {
        "id": record_id,
        "messages": messages,
        "source": source,
        "_order": list(order),
        "_reject": None,
        "_raw": None,
    }


def reject_record(
    *,
    record_id: str,
    source: dict[str, Any],
    order: tuple[int, int, int],
    stage: str,
    reason: str,
    detail: str,
    raw: str | None,
    messages: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A record that could not be read: it goes straight to rejects/ with its location."""
    return {
        "id": record_id,
        "messages": messages or [],
        "source": source,
        "_order": list(order),
        "_reject": {"stage": stage, "reason": reason, "detail": detail},
        "_raw": raw,
    }
