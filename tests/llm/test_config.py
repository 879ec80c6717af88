"""LLMConfig and SamplingConfig validation: options of another backend are refused, with the reason."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from frcorpus.llm.base import ChatRequest, LLMConfig, SamplingConfig, template_hash


def error_of(**kwargs) -> str:
    with pytest.raises(ValidationError) as e:
        LLMConfig(**kwargs)
    (error,) = e.value.errors()
    return error["msg"]


def test_options_of_another_backend_are_refused():
    assert error_of(model="smollm2", base_url="http://localhost:8000/v1", concurrency=4) == (
        "Value error, base_url, concurrency: only for backend openai, not transformers"
    )
    assert error_of(backend="openai", model="m", base_url="http://x/v1", tensor_parallel_size=2) == (
        "Value error, tensor_parallel_size: only for backend vllm, not openai"
    )
    assert error_of(backend="vllm", model="m", device="cuda") == (
        "Value error, device: only for backend transformers, not vllm"
    )


def test_openai_needs_base_url():
    assert error_of(backend="openai", model="m") == (
        "Value error, backend openai needs base_url (the server, e.g. http://localhost:8000/v1)"
    )


def test_unknown_keys_and_ranges():
    assert error_of(model="m", temperature=0.5) == "Extra inputs are not permitted"
    assert error_of(model="m", batch_size=0) == "Input should be greater than or equal to 1"
    with pytest.raises(ValidationError, match="less than or equal to 2"):
        SamplingConfig(temperature=3)


def test_defaults_are_valid():
    config = LLMConfig(model="smollm2")
    assert (config.backend, config.device, config.batch_size, config.structured_output) == (
        "transformers",
        "auto",
        8,
        "auto",
    )


def test_sampling_for_attempt():
    greedy = SamplingConfig(max_tokens=5)
    assert greedy.for_attempt(0) is greedy
    assert greedy.for_attempt(2).temperature == 0.7
    assert greedy.for_attempt(2).for_attempt(2) == greedy.for_attempt(2)  # applying it twice changes nothing
    assert "retry_temperature" not in greedy.cache_dict()


def test_chat_request_and_template_hash():
    request = ChatRequest.of([{"role": "user", "content": "hi"}], json_schema={"b": 1, "a": 2}, choices=["x"])
    assert request.messages == (("user", "hi"),)
    assert request.json_schema == '{"a": 2, "b": 1}'
    assert request.schema() == {"a": 2, "b": 1}
    assert request.choices == ("x",)
    assert template_hash("a", "b") != template_hash("ab")
    assert len(template_hash("a")) == 16
