"""The openai backend against a real llama.cpp server (xllamacpp, SmolLM2 GGUF) and a scripted local
server for timeouts, retries, errors, concurrency and the request mapping."""

from __future__ import annotations

import logging
import time

import pytest

pytest.importorskip("openai", reason="needs frcorpus[llm]")

from frcorpus.llm.base import BackendError, ChatRequest, LLMConfig, SamplingConfig
from frcorpus.llm.openai_backend import OpenAIBackend, choice_schema, parse_choice

from .conftest import Reply, completion, free_port

GREEDY = SamplingConfig(max_tokens=16)


def backend(base_url: str, **options) -> OpenAIBackend:
    b = OpenAIBackend(LLMConfig(backend="openai", model="smollm2", base_url=base_url, **options))
    b.backoff_s = 0.01  # keep the retry tests fast
    return b


def ask(question: str, **kwargs) -> ChatRequest:
    return ChatRequest.of([{"role": "user", "content": question}], **kwargs)


@pytest.fixture
def llama(llama_server):
    b = backend(llama_server, concurrency=2)
    yield b
    b.close()


def test_chat_against_llama_cpp(llama):
    requests = [ask("What is the capital of France?"), ask("hi"), ask("Name a colour."), ask("Count to five.")]
    progress: list[int] = []
    together = llama.generate(requests, GREEDY, progress=progress.append)
    assert [len(done) for done in progress] == [1, 1, 1, 1]
    assert all(g.error is None and g.text and g.finish_reason in ("stop", "length") for g in together)
    assert all(g.prompt_tokens > 20 and 0 < g.completion_tokens <= 16 for g in together)
    # greedy: two requests in flight at once give what one at a time gives
    alone = [llama.generate([r], GREEDY)[0].text for r in requests]
    assert [g.text for g in together] == alone


def test_choices_against_llama_cpp(llama):
    choices = ["yes", "no", "maybe so"]
    requests = [ask("Is the sky blue?", choices=choices), ask("Is fire cold?", choices=choices)]
    gens = llama.generate(requests, GREEDY)
    assert [g.text in choices for g in gens] == [True, True]  # parsed back from {"answer": ...}
    assert [g.finish_reason for g in gens] == ["stop", "stop"]
    parse_only = backend(llama.base_url, structured_output="parse")
    (free,) = parse_only.generate(requests[:1], GREEDY)
    parse_only.close()
    assert free.text not in choices  # unconstrained, the model writes a sentence


def test_request_mapping(scripted_server, monkeypatch):
    monkeypatch.setenv("FRCORPUS_TEST_KEY", "sk-test-secret")
    b = backend(scripted_server.base_url, api_key_env="FRCORPUS_TEST_KEY")
    sampling = SamplingConfig(max_tokens=8, temperature=0.3, top_p=0.9, seed=7, stop=["\n\n"])
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    b.generate([ask("a"), ask("b", choices=["yes", "no"]), ask("c", json_schema=schema), ask("d", attempt=2)], sampling)
    bodies = {r["body"]["messages"][0]["content"]: r["body"] for r in scripted_server.requests}
    common = {"model": "smollm2", "top_p": 0.9, "stop": ["\n\n"]}
    messages = [{"role": "user", "content": "a"}]
    assert bodies["a"] == {**common, "messages": messages, "temperature": 0.3, "max_tokens": 8, "seed": 7}
    assert bodies["b"]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "choice", "strict": True, "schema": choice_schema(("yes", "no"))},
    }
    assert bodies["b"]["max_tokens"] == 48 + 4 * 3  # room for the JSON around the answer
    assert bodies["c"]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "strict": True, "schema": schema},
    }
    assert (bodies["d"]["temperature"], bodies["d"]["seed"]) == (0.7, 9)  # a retry: retry temperature, seed + 2
    assert {r["headers"]["authorization"] for r in scripted_server.requests} == {"Bearer sk-test-secret"}
    b.close()


def test_unset_key_sends_a_dummy(scripted_server, monkeypatch):
    monkeypatch.delenv("FRCORPUS_TEST_KEY", raising=False)
    b = backend(scripted_server.base_url, api_key_env="FRCORPUS_TEST_KEY")
    assert b.generate([ask("a")], GREEDY)[0].text == "hello"
    assert scripted_server.requests[0]["headers"]["authorization"] == "Bearer EMPTY"
    b.close()


def test_usage_and_finish_reason(scripted_server):
    scripted_server.default = Reply(body=completion("cut", "length", prompt_tokens=11, completion_tokens=4))
    b = backend(scripted_server.base_url)
    (gen,) = b.generate([ask("a")], GREEDY)
    assert (gen.text, gen.finish_reason, gen.prompt_tokens, gen.completion_tokens, gen.error) == (
        "cut",
        "length",
        11,
        4,
        None,
    )
    b.close()


def test_concurrency_limit(scripted_server):
    scripted_server.default = Reply(delay_s=0.3)
    b = backend(scripted_server.base_url, concurrency=3)
    started = time.monotonic()
    gens = b.generate([ask(str(i)) for i in range(6)], GREEDY)
    elapsed = time.monotonic() - started
    assert [g.text for g in gens] == ["hello"] * 6
    assert scripted_server.max_in_flight == 3
    assert elapsed < 6 * 0.3  # two waves of three, not six in a row
    b.close()


def test_timeout_is_retried_then_reported(scripted_server, caplog, monkeypatch):
    monkeypatch.setenv("FRCORPUS_TEST_KEY", "sk-test-secret")
    scripted_server.default = Reply(delay_s=1.5)
    b = backend(scripted_server.base_url, timeout_s=0.3, max_retries=1, api_key_env="FRCORPUS_TEST_KEY")
    with caplog.at_level(logging.DEBUG):
        (gen,) = b.generate([ask("slow")], GREEDY)
    assert (gen.text, gen.finish_reason, gen.error) == ("", "error", "timeout after 2 attempts")
    assert len(scripted_server.requests) == 2
    assert "sk-test-secret" not in caplog.text
    b.close()


def test_server_errors_are_retried(scripted_server):
    error = {"error": {"code": 500, "message": "the model   crashed", "type": "server_error"}}
    scripted_server.plan = [Reply(500, error), Reply(503, error)]
    b = backend(scripted_server.base_url, max_retries=3)
    (gen,) = b.generate([ask("a")], GREEDY)
    assert (gen.text, gen.error) == ("hello", None)
    assert len(scripted_server.requests) == 3

    scripted_server.requests.clear()
    scripted_server.default = Reply(500, error)
    (gen,) = b.generate([ask("b")], GREEDY)
    assert (gen.text, gen.finish_reason, gen.error) == ("", "error", "HTTP 500: the model crashed")
    assert len(scripted_server.requests) == 4
    b.close()


def test_rate_limit_is_retried_but_a_bad_request_is_not(scripted_server):
    scripted_server.plan = [Reply(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "0"})]
    b = backend(scripted_server.base_url, max_retries=2)
    assert b.generate([ask("a")], GREEDY)[0].text == "hello"
    assert len(scripted_server.requests) == 2
    scripted_server.requests.clear()
    scripted_server.plan = [Reply(400, {"error": {"message": "max_tokens is too large"}})]
    (gen,) = b.generate([ask("b")], GREEDY)
    assert (gen.finish_reason, gen.error) == ("error", "HTTP 400: max_tokens is too large")
    assert len(scripted_server.requests) == 1
    b.close()


def test_unreachable_server_is_a_backend_error():
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    b = backend(url, max_retries=1)
    with pytest.raises(BackendError) as e:
        b.generate([ask("a"), ask("b")], GREEDY)
    message = str(e.value)
    assert message.startswith(f"cannot connect to the OpenAI-compatible server at {url} (")
    assert message.endswith(
        "); start the server (e.g. `vllm serve MODEL --port 8000`) or fix llm.base_url, which must end with /v1 "
        "for most servers"
    )
    b.close()


def test_server_lost_after_it_answered_is_a_failed_request(scripted_server):
    b = backend(scripted_server.base_url, max_retries=1)
    assert b.generate([ask("a")], GREEDY)[0].text == "hello"
    scripted_server.stop()
    (gen,) = b.generate([ask("b")], GREEDY)
    assert gen.finish_reason == "error"
    assert gen.error.startswith("connection error after 2 attempts: ")
    b.close()


def test_parse_choice():
    assert parse_choice('{"answer": "no"}', ("yes", "no")) == "no"
    assert parse_choice('"yes"', ("yes", "no")) == "yes"
    assert parse_choice('{"answer": "perhaps"}', ("yes", "no")) is None
    assert parse_choice('{"answer": "ye', ("yes", "no")) is None
