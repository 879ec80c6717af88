"""Quality heads over embeddings, as `frcorpus train-scorer` saves them and `quality_classifier` uses
them: `head.npz` (the weights, float64) and `scorer.json` (the embedding model, the view, the
classes, the metrics...), no pickle, so a scorer can be shared and loaded without running code from
it. `load_scorer(folder)` gives a `Scorer` whose `score(vectors)` is a numpy forward pass giving
exactly scikit-learn's `predict_proba`, folded into one number per record: P(True) for boolean
labels, the expected value sum(p_c * c) for numeric labels (1-5 scores), P(positive) for string
labels. Training lives in `frcorpus.scorer`, above the version directory it reads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np

from frcorpus.text.views import View, view_text

SCORER_FILE = "scorer.json"
HEAD_FILE = "head.npz"
FORMAT = 1  # of scorer.json + head.npz; bumped when the layout changes
LabelKind = Literal["boolean", "numeric", "string"]


class ScorerError(ValueError):
    """Input a scorer cannot be trained on or loaded from (the CLI exits with 2)."""


def record_texts(records: list[dict[str, Any]], view: View) -> list[str]:
    """Each record's view (what is embedded): the first prompt, the last answer or the conversation."""
    texts = []
    for i, r in enumerate(records):
        messages = r.get("messages")
        if not isinstance(messages, list):
            raise ScorerError(
                f"record {r.get('id', i)!r} has no `messages` list (it has: {', '.join(map(str, r))}); "
                "records must be in the `messages` format ([{role, content}, ...])"
            )
        texts.append(view_text(messages, view).strip())
    return texts


class Scorer:
    """A trained head over embeddings: `probabilities(vectors)` and `score(vectors)` in numpy.

    `meta` is the content of scorer.json; `layers` the (W, b) pairs, ReLU between them and a sigmoid
    (one output: two classes) or a softmax at the end, as scikit-learn computes them."""

    def __init__(self, meta: dict[str, Any], layers: list[tuple[np.ndarray, np.ndarray]], path: Path | None = None):
        self.meta = meta
        self.layers = layers
        self.path = path

    @property
    def classes(self) -> list[Any]:
        return self.meta["label"]["classes"]

    @property
    def label_kind(self) -> LabelKind:
        return self.meta["label"]["kind"]

    @property
    def positive(self) -> Any:
        return self.meta["label"]["positive"]

    @property
    def view(self) -> View:
        return self.meta["view"]

    @property
    def embedding_model(self) -> str:
        return self.meta["embedding"]["model"]

    @property
    def dim(self) -> int:
        return int(self.layers[0][0].shape[0])

    @property
    def score_range(self) -> tuple[float, float]:
        low, high = self.meta["score_range"]
        return float(low), float(high)

    @property
    def metrics(self) -> dict[str, Any]:
        return self.meta.get("metrics") or {}

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """(n, classes) probabilities, in the order of `classes`: sklearn's predict_proba."""
        h = np.asarray(vectors, dtype=np.float64)
        if h.ndim != 2 or h.shape[1] != self.dim:
            raise ValueError(f"expected vectors of shape (n, {self.dim}), got {h.shape}")
        for weights, bias in self.layers[:-1]:
            h = np.maximum(h @ weights + bias, 0.0)
        weights, bias = self.layers[-1]
        z = h @ weights + bias
        if z.shape[1] == 1:  # two classes: sklearn keeps one logit, P(second class)
            p = 1.0 / (1.0 + np.exp(-z[:, 0]))
            return np.column_stack([1.0 - p, p])
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def score(self, vectors: np.ndarray) -> np.ndarray:
        """One float64 per vector: P(True), the expected class value, or P(positive)."""
        p = self.probabilities(vectors)
        if self.label_kind == "numeric":
            return p @ np.asarray(self.classes, dtype=np.float64)
        return p[:, self.classes.index(True if self.label_kind == "boolean" else self.positive)]

    def embedder(self, **kwargs):
        """An `Embedder` for this scorer's model (kwargs: device, batch_size, cache, progress...)."""
        from frcorpus.embeddings import Embedder

        return Embedder(self.embedding_model, **kwargs)

    def score_records(self, records: list[dict[str, Any]], embedder=None) -> np.ndarray:
        """The score of each record's view; NaN for a record whose view is empty."""
        texts = record_texts(records, self.view)
        present = [i for i, t in enumerate(texts) if t]
        scores = np.full(len(records), np.nan)
        if present:
            embedder = embedder or self.embedder()
            scores[present] = self.score(embedder.embed([texts[i] for i in present]))
        return scores

    def save(self, folder: Path | str) -> Path:
        """Write `head.npz` and `scorer.json` into `folder` (created); returns the folder."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for i, (weights, bias) in enumerate(self.layers):
            arrays[f"W{i}"], arrays[f"b{i}"] = weights, bias
        np.savez(folder / HEAD_FILE, **arrays)
        (folder / SCORER_FILE).write_text(json.dumps(self.meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        self.path = folder
        return folder


class TrainedScorer(Scorer):
    """A scorer just trained: also the fitted scikit-learn estimator (for comparison, never saved)."""

    def __init__(self, meta, layers, estimator):
        super().__init__(meta, layers)
        self.estimator = estimator


def read_scorer_meta(path: Path | str) -> dict[str, Any]:
    """scorer.json of a scorer folder, checked; ScorerError names the path when anything is wrong."""
    folder = Path(path)
    if folder.name == SCORER_FILE:
        folder = folder.parent
    if not folder.is_dir():
        raise ScorerError(f"scorer folder {path} does not exist; train one with `frcorpus train-scorer`")
    meta_path = folder / SCORER_FILE
    if not meta_path.is_file():
        raise ScorerError(
            f"scorer folder {path} has no {SCORER_FILE}; give a folder written by `frcorpus train-scorer`"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ScorerError(f"{meta_path}: not valid JSON: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ScorerError(f"{meta_path}: scorer format {found!r}, this frcorpus reads format {FORMAT}; retrain it")
    missing = [k for k in ("label", "view", "embedding", "head", "score_range") if k not in meta]
    if missing:
        raise ScorerError(f"{meta_path}: missing {', '.join(missing)}; retrain it")
    return meta


def load_scorer(path: Path | str) -> Scorer:
    """A scorer folder (or its scorer.json) -> Scorer. Reads no pickle: weights are plain arrays."""
    meta = read_scorer_meta(path)
    folder = Path(path).parent if Path(path).name == SCORER_FILE else Path(path)
    head_path = folder / HEAD_FILE
    if not head_path.is_file():
        raise ScorerError(f"scorer folder {path} has no {HEAD_FILE}; give a folder written by `frcorpus train-scorer`")
    with np.load(head_path, allow_pickle=False) as arrays:
        n = len(meta["head"]["layers"])
        try:
            layers = [(arrays[f"W{i}"], arrays[f"b{i}"]) for i in range(n)]
        except KeyError as e:
            raise ScorerError(f"{head_path}: missing array {e}; retrain the scorer") from None
    for i, (weights, bias) in enumerate(layers):
        if list(weights.shape) != meta["head"]["layers"][i] or bias.shape != (weights.shape[1],):
            raise ScorerError(f"{head_path}: layer {i} has shape {weights.shape}, scorer.json says otherwise")
    return Scorer(meta, layers, folder)
