"""The stage registry: one explicit dict, one line per stage (DESIGN section 4, point 5)."""

from __future__ import annotations

from frcorpus.stages.base import GlobalStage, Stage
from frcorpus.stages.decontam import Decontaminate
from frcorpus.stages.dedup import ExactDedup, MinhashDedup, SemanticDedup
from frcorpus.stages.fix_text import FixText
from frcorpus.stages.heuristics import Heuristics, Length
from frcorpus.stages.langid import LangId
from frcorpus.stages.mix import Mix
from frcorpus.stages.normalize import Normalize
from frcorpus.stages.quality import LlmJudge, QualityClassifier
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
        LangId,
        Decontaminate,
        ExactDedup,
        MinhashDedup,
        SemanticDedup,
        Translate,
        LlmJudge,
        QualityClassifier,
        Select,
        Mix,
        Split,
    ]
)

__all__ = ["REGISTRY", "GlobalStage", "Stage", "build_registry"]
