"""A backend behind the generation cache: only what was never generated reaches the model."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from frcorpus.llm.base import Backend, ChatRequest, Generation, GenerationStats, SamplingConfig
from frcorpus.llm.cache import GenerationCache, cache_key

logger = logging.getLogger(__name__)


class Generator:
    """`generate` looks every request up in the cache, sends each distinct miss to the backend once,
    stores what did not fail, and returns one Generation per request in order (`cached=True` for hits).

    `stats`: hits (answered from the cache), misses (distinct requests sent to the backend), errors (of
    those, the failed ones), tokens of the new generations, and `extra["duplicates"]` (requests answered
    by an identical request of the same call)."""

    def __init__(self, backend: Backend, cache: GenerationCache | None = None):
        self.backend = backend
        self.cache = cache
        self.stats = GenerationStats()

    def key(self, request: ChatRequest, sampling: SamplingConfig, template_hash: str) -> str:
        constrained = self.backend.config.structured_output == "auto"
        return cache_key(
            self.backend.model_id, self.backend.revision, template_hash, sampling, request, constrained=constrained
        )

    def generate(
        self,
        requests: list[ChatRequest],
        sampling: SamplingConfig,
        template_hash: str,
        progress: Callable[[int], None] | None = None,
    ) -> list[Generation]:
        keys = [self.key(r, sampling, template_hash) for r in requests]
        hits = self.cache.get_many(keys) if self.cache is not None else {}
        todo: dict[str, ChatRequest] = {}
        for key, request in zip(keys, requests, strict=True):
            if key not in hits:
                todo.setdefault(key, request)
        n_hits = sum(key in hits for key in keys)
        if progress is not None and n_hits:
            progress(n_hits)
        fresh: dict[str, Generation] = {}
        if todo:
            logger.debug("%d cached, %d to generate", n_hits, len(todo))
            generations = self.backend.generate(list(todo.values()), sampling, progress=progress)
            fresh = dict(zip(todo, generations, strict=True))
            if self.cache is not None:
                self.cache.put_many(fresh.items())
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

        stats = self.stats
        stats.hits += n_hits
        stats.misses += len(fresh)
        stats.errors += sum(g.error is not None for g in fresh.values())
        stats.prompt_tokens += sum(g.prompt_tokens for g in fresh.values())
        stats.completion_tokens += sum(g.completion_tokens for g in fresh.values())
        if duplicates:
            stats.extra["duplicates"] = stats.extra.get("duplicates", 0) + duplicates
        return results

    def close(self) -> None:
        self.backend.close()
        if self.cache is not None:
            self.cache.close()
