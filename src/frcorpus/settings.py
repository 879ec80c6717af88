"""Machine settings: the environment variables frcorpus reads, each in one function here.

They say where this machine keeps things and how it should run, never what a pipeline does (that
is in its YAML, and in the version's fingerprint). Each is read when its function is called, not at
import, so that a test's `monkeypatch.setenv` or a benchmark's change to `os.environ` takes effect.
This module imports nothing of frcorpus: anything may import it.
"""

from __future__ import annotations

import os
from pathlib import Path

TRUE_WORDS = {"1", "true", "yes", "on"}  # what Hugging Face reads as a set boolean variable, in any case


def columnar_enabled() -> bool:
    """`FRCORPUS_COLUMNAR` (default `1`): `0` turns every columnar path off (readers and stages), which
    the tests use to check that both paths give byte-identical datasets."""
    return os.environ.get("FRCORPUS_COLUMNAR", "1") != "0"


def cache_root() -> Path:
    """`FRCORPUS_CACHE_DIR` (default `~/.cache/frcorpus`): frcorpus' cache folder, for embeddings,
    generations, converted models, tokenizers and content hashes."""
    configured = os.environ.get("FRCORPUS_CACHE_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "frcorpus"


def shared_data_dir() -> Path | None:
    """`FRCORPUS_SHARED_DATA` (no default): the folder that holds the shared data (benchmarks_fr/ for
    the recipe's evaluation); None when unset or empty, and the caller picks its own default."""
    configured = os.environ.get("FRCORPUS_SHARED_DATA")
    return Path(configured).expanduser() if configured else None


def datatrove_log_level() -> str:
    """`FRCORPUS_DATATROVE_LOG_LEVEL` (default `WARNING`): the level of datatrove's log on the console
    (loguru's level names: DEBUG, INFO, WARNING, ...)."""
    return os.environ.get("FRCORPUS_DATATROVE_LOG_LEVEL", "WARNING")


def hub_offline() -> bool:
    """`HF_HUB_OFFLINE` (Hugging Face's own, default unset): whether the Hub must not be reached, by
    the variable (1, true, yes or on, in any case) or by huggingface_hub's constant (which it read at
    its import, and which tests patch)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in TRUE_WORDS:
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(constants.HF_HUB_OFFLINE)
