"""The vllm backend against a fake `vllm` module that records the calls: vLLM needs CUDA and cannot be
installed beside the CPU stack, so the real engine is exercised only on GPU machines. These tests check
the mapping of configs and requests to vLLM's API and of its outputs back to Generations."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field

import pytest

from frcorpus.llm import load_backend
from frcorpus.llm.base import BackendError, ChatRequest, LLMConfig, SamplingConfig


@dataclass
class Params:
    """Stands in for SamplingParams, StructuredOutputsParams and GuidedDecodingParams: keeps its kwargs."""

    kwargs: dict = field(default_factory=dict)

    @classmethod
    def make(cls, **kwargs):
        return cls(kwargs)


class FakeLLM:
    instances: list[FakeLLM] = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.calls: list[dict] = []
        FakeLLM.instances.append(self)

    def chat(self, messages, sampling_params=None, use_tqdm=True):
        self.calls.append({"messages": messages, "sampling_params": sampling_params, "use_tqdm": use_tqdm})
        outputs = []
        for conversation in messages:
            text = conversation[-1]["content"].upper()
            finish = "abort" if text == "ABORT" else "length" if text.startswith("LONG") else "stop"
            completion = types.SimpleNamespace(text=text, finish_reason=finish, token_ids=[1] * len(text))
            outputs.append(types.SimpleNamespace(outputs=[completion], prompt_token_ids=[0] * 10))
        return outputs


@pytest.fixture
def fake_vllm(monkeypatch):
    FakeLLM.instances.clear()
    vllm = types.ModuleType("vllm")
    vllm.LLM = FakeLLM
    vllm.SamplingParams = Params.make
    sampling_params = types.ModuleType("vllm.sampling_params")
    sampling_params.StructuredOutputsParams = Params.make
    vllm.sampling_params = sampling_params
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sampling_params)
    return vllm


@pytest.fixture
def model_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama"}')
    return folder


def ask(question: str, **kwargs) -> ChatRequest:
    return ChatRequest.of([{"role": "user", "content": question}], **kwargs)


def test_engine_and_request_mapping(fake_vllm, model_folder):
    config = LLMConfig(
        backend="vllm",
        model=str(model_folder),
        batch_size=2,
        dtype="bfloat16",
        gpu_memory_utilization=0.5,
        max_model_len=4096,
        tensor_parallel_size=2,
    )
    backend = load_backend(config)
    assert backend.revision.startswith("sha256:")
    (llm,) = FakeLLM.instances
    assert llm.kwargs == {
        "model": str(model_folder),
        "tensor_parallel_size": 2,
        "dtype": "bfloat16",
        "gpu_memory_utilization": 0.5,
        "max_model_len": 4096,
        "seed": 0,
    }
    sampling = SamplingConfig(max_tokens=32, temperature=0.2, top_p=0.95, seed=5, stop=["###"])
    schema = {"type": "object", "properties": {"score": {"type": "integer"}}}
    requests = [ask("hello"), ask("judge", choices=["good", "bad"]), ask("json", json_schema=schema)]
    requests.append(ask("long story", attempt=1))
    progress: list[int] = []
    gens = backend.generate(requests, sampling, progress=progress.append)

    assert [[i for i, _ in done] for done in progress] == [[0, 1], [2, 3]]
    assert [call["use_tqdm"] for call in llm.calls] == [False, False]
    assert [call["messages"] for call in llm.calls] == [
        [[{"role": "user", "content": "hello"}], [{"role": "user", "content": "judge"}]],
        [[{"role": "user", "content": "json"}], [{"role": "user", "content": "long story"}]],
    ]
    params = [p.kwargs for call in llm.calls for p in call["sampling_params"]]
    base = {"temperature": 0.2, "top_p": 0.95, "max_tokens": 32, "seed": 5, "stop": ["###"]}
    assert params[0] == base
    assert params[1] == {**base, "structured_outputs": Params({"choice": ["good", "bad"]})}
    assert params[2] == {**base, "structured_outputs": Params({"json": schema})}
    assert params[3] == {**base, "temperature": 0.7, "seed": 6}
    assert [(g.text, g.finish_reason, g.prompt_tokens, g.completion_tokens) for g in gens] == [
        ("HELLO", "stop", 10, 5),
        ("JUDGE", "stop", 10, 5),
        ("JSON", "stop", 10, 4),
        ("LONG STORY", "length", 10, 10),
    ]


def test_parse_mode_sends_no_constraint(fake_vllm, model_folder):
    backend = load_backend(LLMConfig(backend="vllm", model=str(model_folder), structured_output="parse"))
    backend.generate([ask("judge", choices=["good", "bad"])], SamplingConfig())
    (call,) = FakeLLM.instances[0].calls
    assert "structured_outputs" not in call["sampling_params"][0].kwargs


def test_aborted_request_is_an_error(fake_vllm, model_folder):
    backend = load_backend(LLMConfig(backend="vllm", model=str(model_folder)))
    (gen,) = backend.generate([ask("abort")], SamplingConfig())
    assert (gen.text, gen.finish_reason, gen.error) == ("", "error", "vLLM aborted the request")


def test_older_vllm_uses_guided_decoding(fake_vllm, model_folder):
    del fake_vllm.sampling_params.StructuredOutputsParams
    fake_vllm.sampling_params.GuidedDecodingParams = Params.make
    backend = load_backend(LLMConfig(backend="vllm", model=str(model_folder)))
    backend.generate([ask("judge", choices=["good", "bad"])], SamplingConfig())
    (call,) = FakeLLM.instances[0].calls
    assert call["sampling_params"][0].kwargs["guided_decoding"] == Params({"choice": ["good", "bad"]})


def test_missing_vllm_names_the_extra(monkeypatch, model_folder):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` fail
    with pytest.raises(BackendError) as e:
        load_backend(LLMConfig(backend="vllm", model=str(model_folder)))
    assert str(e.value).startswith("the vllm backend needs vllm (")
    assert str(e.value).endswith(
        "); install it with: pip install 'frcorpus[gpu]' (on a machine with an NVIDIA GPU and CUDA)"
    )
