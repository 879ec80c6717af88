"""A backend behind the generation cache: only what was never generated reaches the model, and a model
is loaded only when something misses the cache (`Generator.lazy`)."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

from frcorpus.llm.base import Backend, ChatRequest, Generation, GenerationStats, LLMConfig, SamplingConfig
from frcorpus.llm.cache import CallRecord, GenerationCache, cache_key
from frcorpus.llm.models import model_identity

logger = logging.getLogger(__name__)


class Generator:
    """`generate` looks every request up in the cache, sends each distinct miss to the backend once,
    stores what did not fail as soon as the backend reports it, and returns one Generation per request
    in order (`cached=True` for hits).

    Built with `lazy`, it loads the backend on the first miss only: the cache keys need the model's
    identity (name and revision, a content hash for a local file), which `model_identity` finds without
    loading, so a worker with nothing to generate or a fully cached re-run never loads the model.

    `stats`: hits (answered from the cache), misses (distinct requests sent to the backend), errors (of
    those, the failed ones), tokens of the new generations, and `extra["duplicates"]` (requests answered
    by an identical request of the same call)."""

    def __init__(
        self,
        backend: Backend | None,
        cache: GenerationCache | None = None,
        *,
        config: LLMConfig | None = None,
        load: Callable[[], Backend] | None = None,
    ):
        if backend is None and (config is None or load is None):
            raise ValueError("a Generator needs a backend, or the config and loader of one")
        self._backend = backend
        self._load = load
        self.config: LLMConfig = backend.config if backend is not None else config
        self.cache = cache
        self.stats = GenerationStats()
        self._identity: tuple[str, str | None] | None = None

    @classmethod
    def lazy(cls, config: LLMConfig, load: Callable[[], Backend], cache: GenerationCache | None = None) -> Generator:
        """A generator whose backend `load()` builds on the first request that misses the cache."""
        return cls(None, cache, config=config, load=load)

    @property
    def loaded(self) -> bool:
        return self._backend is not None

    @property
    def backend(self) -> Backend:
        """The backend, loaded now if it was not."""
        if self._backend is None:
            self._backend = self._load()
            if self._identity is not None and self._identity != self._backend_identity():
                logger.warning(
                    "model %s: identity %s before loading, %s after: cache keys of this run may not match",
                    self.config.model,
                    self._identity,
                    self._backend_identity(),
                )
        return self._backend

    def _backend_identity(self) -> tuple[str, str | None]:
        return self._backend.model_id, self._backend.revision

    @property
    def identity(self) -> tuple[str, str | None]:
        """(model id, revision) as lineage and cache keys record them, without loading where it can."""
        if self._backend is not None:
            return self._backend_identity()
        if self._identity is None:
            self._identity = model_identity(self.config)
        if self._identity is None:  # only loading tells (a Hub model not in the local cache)
            return self.backend.model_id, self.backend.revision
        return self._identity

    @property
    def supports_json_schema(self) -> bool:
        """Whether the backend holds an answer to a JSON schema: known from its class before loading; without
        a cache every request reaches the model anyway, so it is loaded and asked."""
        if self._backend is None and self.cache is None:
            return self.backend.supports_json_schema
        if self._backend is not None:
            return self._backend.supports_json_schema
        from frcorpus.llm import backend_class

        return backend_class(self.config.backend).supports_json_schema

    def key(self, request: ChatRequest, sampling: SamplingConfig, template_hash: str) -> str:
        model_id, revision = self.identity
        constrained = self.config.structured_output == "auto"
        return cache_key(model_id, revision, template_hash, sampling, request, constrained=constrained)

    def generate(
        self,
        requests: list[ChatRequest],
        sampling: SamplingConfig,
        template_hash: str,
        progress: Callable[[int], None] | None = None,
        on_tokens: Callable[[int], None] | None = None,
        record: bool = True,
    ) -> list[Generation]:
        """One Generation per request, in order; `progress(n)` as n requests are answered, `on_tokens(n)`
        as the backend generates tokens, where it can tell. `record`: the call goes into the cache's
        history of calls, which dry runs estimate from (a dry run's probe, with no retries, does not)."""
        keys = [self.key(r, sampling, template_hash) for r in requests]
        hits = self.cache.get_many(keys) if self.cache is not None else {}
        todo: dict[str, ChatRequest] = {}
        for key, request in zip(keys, requests, strict=True):
            if key not in hits:
                todo.setdefault(key, request)
        n_hits = sum(key in hits for key in keys)
        stats = self.stats
        stats.hits += n_hits
        if progress is not None and n_hits:
            progress(n_hits)
        fresh: dict[str, Generation] = {}
        if todo:
            logger.debug("%d cached, %d to generate", n_hits, len(todo))
            fresh = self._generate_misses(todo, sampling, template_hash, progress, on_tokens, record)
        duplicates = len(keys) - n_hits - len(todo)
        if progress is not None and duplicates:
            progress(duplicates)

        results: list[Generation] = []
        seen: set[str] = set()
        for key in keys:
            if key in hits:
                results.append(dataclasses.replace(hits[key], cached=True))
            elif key in seen:  # a copy, so that a caller changing one result does not change the other
                results.append(dataclasses.replace(fresh[key]))
            else:
                seen.add(key)
                results.append(fresh[key])
        if duplicates:
            stats.extra["duplicates"] = stats.extra.get("duplicates", 0) + duplicates
        return results

    def _generate_misses(
        self,
        todo: dict[str, ChatRequest],
        sampling: SamplingConfig,
        template_hash: str,
        progress: Callable[[int], None] | None,
        on_tokens: Callable[[int], None] | None = None,
        record: bool = True,
    ) -> dict[str, Generation]:
        """Send the distinct misses to the backend; each result is stored and counted as soon as the backend
        reports it, so that a run killed in a long call loses seconds of work, not the call."""
        todo_keys = list(todo)
        counted: set[str] = set()

        def finished(done: list[tuple[int, Generation]]) -> None:
            pairs = [(todo_keys[i], g) for i, g in done if todo_keys[i] not in counted]
            if self.cache is not None:
                self.cache.put_many(pairs)
            counted.update(key for key, _ in pairs)
            stats = self.stats
            stats.misses += len(pairs)
            stats.errors += sum(g.error is not None for _, g in pairs)
            stats.prompt_tokens += sum(g.prompt_tokens for _, g in pairs)
            stats.completion_tokens += sum(g.completion_tokens for _, g in pairs)
            if progress is not None and pairs:
                progress(len(pairs))

        backend = self.backend  # loaded here, on the first miss, and not timed with the generation
        started = time.perf_counter()
        backend.on_tokens = on_tokens
        try:
            generations = backend.generate(list(todo.values()), sampling, progress=finished)
        finally:
            backend.on_tokens = None
        seconds = time.perf_counter() - started
        finished(list(enumerate(generations)))  # what a backend did not report as it went
        fresh = dict(zip(todo_keys, generations, strict=True))
        if self.cache is not None and record:
            self.cache.record_call(
                CallRecord.of(backend, template_hash, list(todo.values()), generations, sampling, seconds)
            )
        return fresh

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
        if self.cache is not None:
            self.cache.close()
