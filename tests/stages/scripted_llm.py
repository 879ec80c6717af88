"""A backend that answers from a script, for stage tests that need exact model outputs (bad JSON,
English leftovers, a timeout). Real generation is tested with SmolLM2 in tests/llm/."""

from __future__ import annotations

from collections.abc import Callable

from frcorpus.llm.base import Backend, ChatRequest, Generation, LLMConfig, SamplingConfig


class ScriptedBackend(Backend):
    """`answer(request) -> str | Generation` decides each output; every call is recorded."""

    def __init__(self, config: LLMConfig, answer: Callable[[ChatRequest], str | Generation], json_schema=False):
        super().__init__(config)
        self.answer = answer
        self.calls: list[list[ChatRequest]] = []
        self.supports_json_schema = json_schema

    def generate(self, requests, sampling: SamplingConfig, progress=None) -> list[Generation]:
        self.calls.append(list(requests))
        out = []
        for r in requests:
            a = self.answer(r)
            out.append(a if isinstance(a, Generation) else Generation(a, "stop", 10, max(1, len(a) // 4)))
        return out

    @property
    def requests(self) -> list[ChatRequest]:
        return [r for call in self.calls for r in call]


def use_scripted(monkeypatch, answer, json_schema=False) -> list[ScriptedBackend]:
    """Make every LLM stage load a ScriptedBackend; returns the list of backends created."""
    made: list[ScriptedBackend] = []

    def load(config, on_status=None):
        backend = ScriptedBackend(config, answer, json_schema)
        made.append(backend)
        return backend

    monkeypatch.setattr("frcorpus.llm.load_backend", load)
    monkeypatch.setattr("frcorpus.stages.llm_support._BACKENDS", {})  # no model kept from another test
    return made
