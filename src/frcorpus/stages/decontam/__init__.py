"""Benchmark decontamination: the `decontaminate` stage and its two methods.

- `benchmarks`: the benchmark files, presets and field mappings, reading items, aligning an English
  original with its French items;
- `ngram`: word n-gram overlap (the numpy tokenizer and the n-gram index);
- `embedding`: cosine similarity of prompt turns to the items, for paraphrased items and items in
  another language (through frcorpus.embeddings and its on-disk cache);
- `stage`: the stage, which runs the configured methods and gives each matched record its reason.
"""

from frcorpus.stages.decontam.benchmarks import (
    PRESETS,
    Benchmark,
    BenchmarkError,
    BenchmarkFields,
    BenchmarkFiles,
    Item,
    Side,
    align_english,
    load_benchmarks,
    read_side,
)
from frcorpus.stages.decontam.embedding import EmbeddingIndex, build_embedding_index
from frcorpus.stages.decontam.ngram import NgramIndex, build_index, tokenize
from frcorpus.stages.decontam.stage import Decontaminate

__all__ = [
    "PRESETS",
    "Benchmark",
    "BenchmarkError",
    "BenchmarkFields",
    "BenchmarkFiles",
    "Decontaminate",
    "EmbeddingIndex",
    "Item",
    "NgramIndex",
    "Side",
    "align_english",
    "build_embedding_index",
    "build_index",
    "load_benchmarks",
    "read_side",
    "tokenize",
]
