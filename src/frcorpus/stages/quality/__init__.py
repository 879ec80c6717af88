"""Quality scoring: `llm_judge` (an LLM's verdict or score with a prompt template) and
`quality_classifier` (a head trained on an LLM judge's verdicts over embeddings, the FineWeb-Edu
recipe; see `frcorpus.scorer` and `frcorpus.embeddings.heads`). Scores go into the record's `scores` map."""

from frcorpus.stages.quality.classifier import QualityClassifier
from frcorpus.stages.quality.judge import LlmJudge

__all__ = ["LlmJudge", "QualityClassifier"]
