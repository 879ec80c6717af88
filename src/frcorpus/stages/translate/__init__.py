"""`translate`: English -> French translation with an LLM, its masking and its quality gates."""

from frcorpus.stages.translate.stage import Translate

__all__ = ["Translate"]
