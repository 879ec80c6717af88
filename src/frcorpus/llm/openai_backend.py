"""Generation through any OpenAI-compatible chat completions server (vLLM serve, llama.cpp, TGI, OpenAI).

The official `openai` client runs asynchronously in a private event loop on a daemon thread, so that
a synchronous stage can send `concurrency` requests at once. Retries are ours (the client's are off):
timeouts, 429, 5xx and connection errors are retried with exponential backoff; other HTTP errors are
not. A request that still fails comes back as a Generation with `error` set; a server that could not
be reached at all before any request succeeded raises BackendError instead (the run cannot work).
The API key is read from the environment variable `api_key_env` and never logged or put in a message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import threading
from collections.abc import Callable
from typing import Any

from frcorpus.llm.base import Backend, BackendError, ChatRequest, Generation, LLMConfig, SamplingConfig
from frcorpus.llm.models import LLM_HINT

logger = logging.getLogger(__name__)

DUMMY_KEY = "EMPTY"  # local servers take any key, but the client refuses none
CHOICE_TOKENS = 48  # tokens a JSON-wrapped choice may need besides the choice itself (llama.cpp allows whitespace)
BACKOFF_MAX_S = 30.0


class _Unreachable(Exception):
    """Every attempt of a request failed to connect."""


def choice_schema(choices: tuple[str, ...]) -> dict[str, Any]:
    """`{"answer": <one of the choices>}`: OpenAI's structured outputs want an object at the root."""
    return {
        "type": "object",
        "properties": {"answer": {"type": "string", "enum": list(choices)}},
        "required": ["answer"],
        "additionalProperties": False,
    }


def parse_choice(text: str, choices: tuple[str, ...]) -> str | None:
    """The bare choice out of the constrained answer, None when it is not one (truncated, unconstrained)."""
    try:
        answer = json.loads(text)
    except ValueError:
        return None
    if isinstance(answer, dict):
        answer = answer.get("answer")
    return answer if isinstance(answer, str) and answer in choices else None


class OpenAIBackend(Backend):
    supports_json_schema = True  # response_format json_schema / structured outputs
    backoff_s = 0.5  # first retry delay; doubles each attempt

    def __init__(self, config: LLMConfig):
        super().__init__(config)
        try:
            import openai
        except ImportError:
            raise BackendError(f"the openai backend needs the openai package; install it with: {LLM_HINT}") from None
        self._openai = openai
        self.base_url = config.base_url
        self._api_key = os.environ.get(config.api_key_env) or DUMMY_KEY
        self._reached = False  # a response (any status) came back from the server once
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="frcorpus-openai", daemon=True)
        self._thread.start()
        self._client = self._run(self._make_client())

    async def _make_client(self):
        # created inside the private loop, which its connection pool belongs to
        return self._openai.AsyncOpenAI(
            api_key=self._api_key, base_url=self.base_url, timeout=self.config.timeout_s, max_retries=0
        )

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def generate(
        self,
        requests: list[ChatRequest],
        sampling: SamplingConfig,
        progress: Callable[[list[tuple[int, Generation]]], None] | None = None,
    ) -> list[Generation]:
        """All requests at once, `concurrency` in flight; `progress([(index, generation)])` after each one,
        called from the backend's event-loop thread (while the calling thread waits)."""
        if not requests:
            return []
        try:
            return self._run(self._generate_all(requests, sampling, progress))
        except _Unreachable as e:
            raise BackendError(
                f"cannot connect to the OpenAI-compatible server at {self.base_url} ({e}); start the server "
                "(e.g. `vllm serve MODEL --port 8000`) or fix llm.base_url, which must end with /v1 for most servers"
            ) from None

    async def _generate_all(self, requests, sampling, progress) -> list[Generation]:
        semaphore = asyncio.Semaphore(self.config.concurrency)

        async def one(index: int, request: ChatRequest) -> Generation:
            async with semaphore:
                gen = await self._generate_one(request, sampling)
            if progress is not None:
                progress([(index, gen)])
            return gen

        tasks = [asyncio.ensure_future(one(i, r)) for i, r in enumerate(requests)]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            raise

    def request_kwargs(self, request: ChatRequest, sampling: SamplingConfig) -> dict[str, Any]:
        """The chat.completions.create arguments of one request."""
        effective = sampling.for_attempt(request.attempt)
        kwargs: dict[str, Any] = {
            "model": self.config.model,
            "messages": request.message_dicts(),
            **request.sampling_args(sampling),
        }
        if self.config.structured_output == "auto":
            if request.choices:
                schema = {"name": "choice", "strict": True, "schema": choice_schema(request.choices)}
                kwargs["response_format"] = {"type": "json_schema", "json_schema": schema}
                # the grammar bounds the answer's length, so a larger budget cannot run away
                longest = max(len(c) for c in request.choices)
                kwargs["max_tokens"] = max(effective.max_tokens, CHOICE_TOKENS + 4 * longest)
            elif request.json_schema is not None:
                schema = {"name": "output", "strict": True, "schema": request.schema()}
                kwargs["response_format"] = {"type": "json_schema", "json_schema": schema}
        return kwargs

    async def _generate_one(self, request: ChatRequest, sampling: SamplingConfig) -> Generation:
        openai = self._openai
        kwargs = self.request_kwargs(request, sampling)
        attempts = self.config.max_retries + 1
        error = ""
        retry_after: float | None = None
        only_connection_errors = True
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(self._delay(attempt, retry_after))
            try:
                response = await self._client.chat.completions.create(**kwargs)
            except openai.APITimeoutError:  # a subclass of APIConnectionError: test it first
                self._reached = True  # the server accepted the connection
                only_connection_errors = False
                error = f"timeout after {attempts} attempts"
                logger.debug("%s: timeout (attempt %d/%d)", self.base_url, attempt + 1, attempts)
                continue
            except openai.APIConnectionError as e:
                error = f"connection error after {attempts} attempts: {e.__cause__ or e}"
                logger.debug("%s: connection error (attempt %d/%d)", self.base_url, attempt + 1, attempts)
                continue
            except openai.APIStatusError as e:
                self._reached = True
                only_connection_errors = False
                error = f"HTTP {e.status_code}: {_detail(e)}"
                if e.status_code == 429 or e.status_code >= 500:
                    logger.debug("%s: %s (attempt %d/%d)", self.base_url, error, attempt + 1, attempts)
                    retry_after = _retry_after(e) if e.status_code == 429 else None
                    continue
                return Generation(text="", finish_reason="error", error=error)
            self._reached = True
            return self._to_generation(response, request)
        if only_connection_errors and not self._reached:
            raise _Unreachable(error.removeprefix(f"connection error after {attempts} attempts: "))
        logger.warning("request failed: %s", error)
        return Generation(text="", finish_reason="error", error=error)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with a little jitter (so that concurrent retries spread), or the server's
        Retry-After when it asks for longer."""
        delay = min(BACKOFF_MAX_S, self.backoff_s * 2 ** (attempt - 1)) * (1 + 0.1 * random.random())
        return max(delay, min(retry_after, BACKOFF_MAX_S * 2)) if retry_after else delay

    def _to_generation(self, response, request: ChatRequest) -> Generation:
        choice = response.choices[0]
        text = choice.message.content or ""
        if request.choices and self.config.structured_output == "auto":
            text = parse_choice(text, request.choices) or text
        finish = choice.finish_reason or "stop"  # "stop", "length" (or a server's own, e.g. content_filter)
        usage = response.usage
        return Generation(
            text=text,
            finish_reason=finish,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._run(self._client.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()


def _detail(error) -> str:
    """The server's own error message (OpenAI, vLLM and llama.cpp put it in error.message), shortened."""
    body = error.body
    if isinstance(body, dict):
        body = body.get("error", body)
        if isinstance(body, dict):
            body = body.get("message", body)
    text = body if isinstance(body, str) else (error.response.text if error.response is not None else str(error))
    text = " ".join(str(text).split())
    return text[:300] + ("..." if len(text) > 300 else "")


def _retry_after(error) -> float | None:
    try:
        return float(error.response.headers.get("retry-after", ""))
    except (AttributeError, TypeError, ValueError):
        return None
