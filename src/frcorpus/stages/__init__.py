"""The stage registry: one explicit dict, one line per stage; and what is derived from it (the
record model with every stage's columns)."""

from __future__ import annotations

from functools import cache
from typing import Any

import pyarrow as pa
from pydantic import ConfigDict, create_model

from frcorpus.record import BaseRecord
from frcorpus.stages.base import GlobalStage, Stage
from frcorpus.stages.decontam import Decontaminate
from frcorpus.stages.dedup import ExactDedup, MinhashDedup, SemanticDedup
from frcorpus.stages.fix_text import FixText
from frcorpus.stages.heuristics import Heuristics, Length
from frcorpus.stages.instructions.stage import VerifyInstructions
from frcorpus.stages.langid import LangId
from frcorpus.stages.mix import Mix
from frcorpus.stages.normalize import Normalize
from frcorpus.stages.quality import LlmJudge, QualityClassifier
from frcorpus.stages.quality.relevance import Relevance
from frcorpus.stages.select import Select
from frcorpus.stages.split import Split
from frcorpus.stages.translate import Translate


def build_registry(classes: list[type[Stage]]) -> dict[str, type[Stage]]:
    registry: dict[str, type[Stage]] = {}
    for cls in classes:
        if cls.name in registry:
            other = registry[cls.name]
            raise ValueError(
                f"duplicate stage name {cls.name!r}: {other.__module__}.{other.__qualname__} "
                f"and {cls.__module__}.{cls.__qualname__}"
            )
        registry[cls.name] = cls
    return registry


REGISTRY: dict[str, type[Stage]] = build_registry(
    [
        Normalize,
        FixText,
        Length,
        Heuristics,
        VerifyInstructions,
        LangId,
        Decontaminate,
        ExactDedup,
        MinhashDedup,
        SemanticDedup,
        Translate,
        LlmJudge,
        QualityClassifier,
        Relevance,
        Select,
        Mix,
        Split,
    ]
)


@cache
def record_model() -> type[BaseRecord]:
    """The pydantic model of a whole record: the base fields, plus each column a registered stage adds
    (`Stage.annotations`), optional and typed from its Arrow type."""
    columns: dict[str, Any] = {}
    for cls in REGISTRY.values():
        for name, arrow_type in cls.annotations:
            columns.setdefault(name, (_python_type(arrow_type, name) | None, None))
    return create_model("Record", __base__=BaseRecord, **columns)


def _python_type(arrow_type: pa.DataType, name: str) -> Any:
    """The Python type a value of an Arrow type reads as (`to_pylist`), a struct as a strict model."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return str
    if pa.types.is_boolean(arrow_type):
        return bool
    if pa.types.is_integer(arrow_type):
        return int
    if pa.types.is_floating(arrow_type):
        return float
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return list[_python_type(arrow_type.value_type, name)]
    if pa.types.is_map(arrow_type):
        key, value = _python_type(arrow_type.key_type, name), _python_type(arrow_type.item_type, name)
        return dict[key, value] | list[tuple[key, value]]  # polars reads a map as a dict, pyarrow as pairs
    if pa.types.is_struct(arrow_type):
        fields = {f.name: (_python_type(f.type, f"{name}_{f.name}") | None, None) for f in arrow_type}
        return create_model(name.title().replace("_", ""), __config__=ConfigDict(extra="forbid"), **fields)
    raise TypeError(f"column {name!r}: no Python type for Arrow type {arrow_type}")


__all__ = ["REGISTRY", "GlobalStage", "Stage", "build_registry", "record_model"]
