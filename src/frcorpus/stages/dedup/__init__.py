"""Deduplication: `exact_dedup` (hash of a normalised view), `minhash_dedup` (near duplicates by
MinHash LSH on datatrove's MinHash stages), `semantic_dedup` (embeddings, also across languages)."""

from frcorpus.stages.dedup.exact import ExactDedup
from frcorpus.stages.dedup.minhash import MinhashDedup
from frcorpus.stages.dedup.semantic import SemanticDedup

__all__ = ["ExactDedup", "MinhashDedup", "SemanticDedup"]
