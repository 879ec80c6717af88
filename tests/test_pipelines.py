"""The shipped pipelines validate; the translation example moves to vLLM by changing two lines per `llm:`."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from frcorpus.config import load_pipeline, missing_dependencies

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "pipelines").glob("*.yaml")))
def test_shipped_pipelines_validate(name):
    loaded = load_pipeline(REPO / "pipelines" / name)
    assert loaded.config.stages
    assert missing_dependencies(loaded) == []


def test_translation_example_runs_on_vllm_by_changing_the_backend_and_model_lines(tmp_path):
    text = (REPO / "pipelines" / "translate_en_fr.yaml").read_text(encoding="utf-8")
    gpu = re.sub(r"backend: transformers( +# <-)", r"backend: vllm\1", text)
    gpu = re.sub(r"model: smollm2( +# <-)", r"model: Qwen/Qwen3-32B\1", gpu)
    changed = [a for a, b in zip(text.splitlines(), gpu.splitlines(), strict=True) if a != b]
    assert len(changed) == 4  # backend and model, in the translate and the judge stage
    path = tmp_path / "gpu.yaml"
    path.write_text(gpu, encoding="utf-8")
    loaded = load_pipeline(path)
    assert [s.llm.backend for s in loaded.config.stages if hasattr(s, "llm")] == ["vllm", "vllm"]
    problems = missing_dependencies(loaded)
    if importlib.util.find_spec("vllm") is None:  # the CPU machines: only vLLM is missing
        assert len(problems) == 2 and all("needs the 'vllm' package" in p for p in problems)
    else:
        assert problems == []
