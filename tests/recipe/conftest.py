from __future__ import annotations

from pathlib import Path

import pytest

from .tiny import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A random 2-layer Qwen3 chat model with its tokenizer, in a folder (built once per test session)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-qwen3")


@pytest.fixture(scope="session")
def tiny_model_b(tmp_path_factory) -> Path:
    """The same architecture and tokenizer with other random weights: a stand-in for a fine-tuned model."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny_b") / "tiny-qwen3-b", seed=1)
