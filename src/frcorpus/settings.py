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


def barrier_memory() -> int:
    """`FRCORPUS_BARRIER_MEMORY` (default `256M`): how much sort data a global stage holds at once at the
    barrier, in bytes or with a K, M or G suffix (powers of 1024). Past it, `exact_dedup` and
    `minhash_dedup` partition their signatures into files under the run's work folder and sort one part at
    a time; the barrier's peak is a few times this. Their decisions do not depend on it."""
    given = os.environ.get("FRCORPUS_BARRIER_MEMORY", "256M")
    text = given.strip().upper().removesuffix("B").removesuffix("I")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    try:
        value = int(float(text[:-1] if scale > 1 else text) * scale)
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"FRCORPUS_BARRIER_MEMORY={given!r}: a size above 0, in bytes or with K, M or G (256M)")
    return value
