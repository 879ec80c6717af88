"""Deduplication: `exact_dedup` (hash of a normalised view), `minhash_dedup` (near duplicates by
MinHash LSH on datatrove's MinHash stages)."""

from frcorpus.stages.dedup.exact import ExactDedup, view_turns
from frcorpus.stages.dedup.minhash import MinhashDedup

__all__ = ["ExactDedup", "MinhashDedup", "view_turns"]
