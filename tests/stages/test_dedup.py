"""`exact_dedup` views and `minhash_dedup` (signatures, clusters, keep rules, stats, engine run). The
keep rules in detail, the checked answers and the cases from real data: test_dedup_keep.py."""

from __future__ import annotations

import random

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from frcorpus.stages.base import Reject, SignatureItem
from frcorpus.stages.dedup import ExactDedup, MinhashDedup
from frcorpus.stages.dedup.minhash import bands_rows_for, detection_probability, half_point
from tests.conftest import chat, run_pipeline, write_jsonl, write_pipeline

FR = (
    "La photosynthèse est le processus par lequel les plantes transforment la lumière du soleil en énergie "
    "chimique. Elle se déroule dans les chloroplastes, grâce à la chlorophylle qui capte la lumière."
)
EN = (
    "Photosynthesis is the process by which plants turn sunlight into chemical energy. It takes place in "
    "the chloroplasts, where chlorophyll captures the light and water is split to release oxygen."
)
OTHER = "Le chat dort sur le canapé depuis ce matin et ne veut pas se lever, même pour manger ses croquettes."


def record(i, answer, question="Explique-moi la photosynthèse.", source="s", **extra):
    return {"id": f"r{i}", **chat(question, answer), "source": {"name": source}, **extra}


def exact(**cfg):
    return ExactDedup(ExactDedup.Config(type="exact_dedup", **cfg), "exact_dedup")


def minhash(**cfg):
    stage = MinhashDedup(MinhashDedup.Config(type="minhash_dedup", **cfg), "minhash_dedup")
    stage.setup()
    return stage


def decide(stage, records):
    return stage.decide([SignatureItem(r["id"], r["source"]["name"], stage.signature(r)) for r in records])


@pytest.mark.parametrize(
    ("ignore", "same", "different"),
    [
        (["whitespace"], "Bonjour   le\nmonde !", "bonjour le monde !"),
        (["whitespace", "case"], "BONJOUR le monde !", "Bonjour le monde ?"),
        (["whitespace", "punctuation"], "Bonjour, le monde...", "Bonjour le Monde"),
        (["whitespace", "accents"], "Bonjour le mondé !", "Bonjour le monde ?"),
        ([], "Bonjour le monde !", "Bonjour le  monde !"),
    ],
)
def test_exact_dedup_ignores_what_it_is_told_and_nothing_else(ignore, same, different):
    stage = exact(ignore=ignore, view="response")
    base = record(0, "Bonjour le monde !")
    assert stage.signature(record(1, same))["hash"] == stage.signature(base)["hash"]
    assert stage.signature(record(2, different))["hash"] != stage.signature(base)["hash"]


def test_minhash_signature_is_datatrove_s_with_its_normalisation():
    """`ignore: [case, accents, numbers]` is datatrove's default normalisation: the same signatures as its
    own signature step at its defaults."""
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
    from datatrove.utils.hashing import HashConfig

    from frcorpus.stages.dedup.minhash import RegexWordTokenizer

    dt = MinhashDedupSignature(
        "/nonexistent", MinhashConfig(hash_config=HashConfig(64, "xxhash")), RegexWordTokenizer()
    )
    stage = minhash(ignore=["case", "accents", "numbers"])
    texts = [FR, EN, OTHER, "En 1919, à Versailles : 28 juin."]
    sigs, valid = stage.minhashes(texts)
    assert valid.all()
    for text, sig in zip(texts, sigs, strict=True):
        assert np.array_equal(np.concatenate(dt.get_signature(dt.get_shingles(text))), sig)
    # by default case, accents and numbers count: the last text's signature is another one
    assert not np.array_equal(minhash().minhashes(texts[3:])[0][0], sigs[3])


def test_near_duplicates_in_french_and_english_are_clustered_and_the_first_is_kept():
    records = [
        record(0, FR),
        record(1, OTHER),
        record(2, FR + " Voilà !"),  # a word added
        record(3, EN),
        record(4, EN.upper().replace("WATER", "Water")),  # case does not count with ignore: [case]
        record(5, FR.replace(".", " !")),  # punctuation never counts
    ]
    assert 4 not in decide(minhash(keep="first"), records)  # case counts by default
    stage = minhash(keep="first", ignore=["case"])
    assert decide(stage, records) == {
        2: Reject("near_duplicate", "dup_of=r0 cluster=r0 size=3"),
        4: Reject("near_duplicate", "dup_of=r3 cluster=r3 size=2"),
        5: Reject("near_duplicate", "dup_of=r0 cluster=r0 size=3"),
    }
    assert stage.stats.counters == {
        "clusters": 2,
        "largest_cluster": 3,
        "cluster_size.2": 1,
        "cluster_size.3": 1,
        "lsh_bands": 14,
        "lsh_rows": 8,
    }


def test_views_look_at_different_turns():
    records = [record(0, FR, "Question A ?"), record(1, OTHER, "Question A ?"), record(2, FR, "Autre chose ?")]
    assert decide(minhash(view="prompt"), records) == {
        1: Reject("near_duplicate", "dup_of=r0 cluster=r0 size=2 kept_by=answer_length:167>81")
    }
    assert decide(minhash(view="response"), records) == {2: Reject("near_duplicate", "dup_of=r0 cluster=r0 size=2")}
    # the whole conversation is mostly the answer: a new question on the same answer is still a near duplicate
    # (a light answer is checked, a heavy one is not: test_dedup_keep.py)
    assert decide(minhash(view="conversation"), records) == {2: Reject("near_duplicate", "dup_of=r0 cluster=r0 size=2")}


def test_keep_rules_choose_the_kept_record_of_a_cluster():
    short = record(0, FR, source="web")
    longer = record(1, FR + " Elle produit aussi de l'oxygène.", source="curated")
    scored = [dict(short, langid={"keep_share": 0.7}), dict(longer, langid={"keep_share": 0.9})]
    longer_kept = {0: Reject("near_duplicate", "dup_of=r1 cluster=r0 size=2 kept_by=answer_length:195>167")}
    assert decide(minhash(keep="longest_answer"), [short, longer]) == longer_kept
    assert decide(minhash(), [short, longer]) == longer_kept  # best: no score, no pass rate, the longer answer
    assert decide(minhash(keep="source_priority", source_priority=["curated"]), [short, longer]) == {
        0: Reject("near_duplicate", "dup_of=r1 cluster=r0 size=2 kept_by=source_priority:curated>other")
    }
    assert decide(minhash(keep="score", score="langid.keep_share"), scored) == {
        0: Reject("near_duplicate", "dup_of=r1 cluster=r0 size=2 kept_by=langid.keep_share:0.9>0.7")
    }
    assert decide(minhash(keep="first"), [short, longer]) == {
        1: Reject("near_duplicate", "dup_of=r0 cluster=r0 size=2")
    }
    # a missing score loses to any score; the column itself must exist
    unscored = [dict(short, langid={"keep_share": None}), dict(longer, langid={"keep_share": 0.1})]
    assert decide(minhash(keep="score", score="langid.keep_share"), unscored) == {
        0: Reject("near_duplicate", "dup_of=r1 cluster=r0 size=2 kept_by=langid.keep_share:0.1>none")
    }
    with pytest.raises(ValueError, match=r"records have no `scores` \(they have: id, messages, source\)"):
        minhash(keep="score", score="scores.quality").signature(short)


def test_short_texts_get_one_shingle_and_texts_without_words_are_kept():
    records = [
        record(0, "Merci !"),
        record(1, "Merci."),
        record(2, "Merci beaucoup"),
        record(3, "???"),
        record(4, "!!"),
        record(5, "merci"),  # case counts by default
    ]
    stage = minhash(view="response")
    assert decide(stage, records) == {1: Reject("near_duplicate", "dup_of=r0 cluster=r0 size=2")}
    assert stage.stats.counters["not_hashed"] == 2


def test_threshold_is_the_jaccard_at_which_a_pair_is_found_half_the_time():
    # 0.7 gave 9 x 12 by datasketch's rule, which finds pairs at 0.7 only 26% of the time (half at 0.77)
    assert bands_rows_for(0.7, 112) == (14, 8)
    assert bands_rows_for(0.8, 112) == (9, 12)
    for threshold in (0.5, 0.6, 0.7, 0.8, 0.9):
        b, r = bands_rows_for(threshold, 128)
        assert b * r <= 128
        assert abs(half_point(b, r) - threshold) < 0.03
        assert detection_probability(half_point(b, r), b, r) == pytest.approx(0.5)
    stage = minhash(threshold=0.9)
    assert (stage.bands, stage.rows) == bands_rows_for(0.9, 112) == (5, 19)
    assert MinhashDedup.notes(MinhashDedup.Config(type="minhash_dedup")) == [
        "14 bands x 8 rows find a pair half the time at Jaccard 0.68; chance to find a pair by its Jaccard "
        "similarity: 0.5: 5%, 0.6: 21%, 0.7: 56%, 0.8: 92%, 0.9: 100%"
    ]


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"bands": 10}, "give both bands and rows, or neither (or a threshold instead)"),
        ({"bands": 10, "rows": 5, "threshold": 0.8}, "give either a threshold or bands and rows, not both"),
        ({"keep": "score"}, "keep: score needs `score:`, the dotted path of a numeric annotation"),
        ({"keep": "source_priority"}, "keep: source_priority needs `source_priority:`, a list of source names"),
    ],
)
def test_config_errors(cfg, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        MinhashDedup.Config(type="minhash_dedup", **cfg)


def test_minhash_dedup_in_a_pipeline_rejects_with_reasons_and_counts(tmp_path):
    rows = [chat("Explique-moi la photosynthèse.", FR), chat("Et le chat ?", OTHER)]
    rows += [chat("Explique-moi la photosynthèse !", FR.replace(".", " !")), chat("q", "Merci !")]
    write_jsonl(tmp_path / "a.jsonl", rows)
    write_jsonl(tmp_path / "b.jsonl", [chat("Explique moi la photosynthèse", FR + " Voilà.")])
    path = write_pipeline(
        tmp_path,
        [{"name": "a", "path": str(tmp_path / "a.jsonl")}, {"name": "b", "path": str(tmp_path / "b.jsonl")}],
        [{"type": "minhash_dedup", "keep": "source_priority", "source_priority": ["b"]}],
        {"type": "local", "tasks": 2, "workers": 1},
    )
    result = run_pipeline(path)
    from tests.test_engine import check_accounting

    stats = check_accounting(result.version_dir)
    assert stats["stages"]["minhash_dedup"]["rejected"] == {"minhash_dedup.near_duplicate": 2}
    assert stats["stages"]["minhash_dedup"]["counters"] == {
        "clusters": 1,
        "largest_cluster": 3,
        "cluster_size.3": 1,
        "lsh_bands": 14,
        "lsh_rows": 8,
    }
    kept = pl.read_parquet(result.version_dir / "data" / "*.parquet")
    kept_b = kept.filter(pl.col("source").struct.field("name") == "b")["id"].item()
    rejects = pl.read_parquet(result.version_dir / "rejects" / "*.parquet").sort("id")
    assert set(rejects["source"].struct.field("location")) == {"a.jsonl:1", "a.jsonl:3"}
    first = rejects.filter(pl.col("source").struct.field("location") == "a.jsonl:1")["id"].item()
    assert set(rejects["detail"]) == {f"dup_of={kept_b} cluster={first} size=3 kept_by=source_priority:b>other"}


def words_with_changes(changed: int, seed: int) -> str:
    """200 words of a fixed text, `changed` of them replaced: 6 -> Jaccard 0.735 of 5-word shingles with the
    original, 16 (seed 101) -> 0.441."""
    rng = random.Random(3)
    vocab = [f"mot{i}" for i in range(3000)]
    words = [rng.choice(vocab) for _ in range(200)]
    other = random.Random(seed)
    for i in other.sample(range(len(words)), changed):
        words[i] = other.choice(vocab)
    return " ".join(words)


def test_verify_jaccard_lets_a_low_threshold_find_near_copies_without_joining_chance_pairs():
    original, near, far = words_with_changes(0, 0), words_with_changes(6, 6), words_with_changes(16, 101)
    records = [record(0, original), record(1, near), record(2, far)]
    # half at 0.5 (22 x 5): the near copy, and the pair at 0.44 that shares a band by chance
    loose = minhash(view="response", threshold=0.5)
    assert set(decide(loose, records)) == {1, 2}
    checked = minhash(view="response", threshold=0.5, verify_jaccard=0.6)
    verdicts = decide(checked, records)
    assert list(verdicts) == [1] and verdicts[1].detail.startswith("dup_of=r0 cluster=r0 size=2")
    assert checked.stats.counters["pairs_below_verify_jaccard"] == 1


def test_verified_pairs_look_at_every_pair_of_a_band_group():
    from frcorpus.stages.dedup.lsh import band_pairs, verified_pairs

    # three records share band 0; the first and the third are copies, the second is not like either
    digests = np.array([[7, 1], [7, 2], [7, 3]], dtype=np.uint64)
    copy = np.arange(40, dtype=np.uint32)
    sets = [copy, np.arange(30, 70, dtype=np.uint32), copy]  # Jaccard 1 between the copies, 0.2 with the other
    src, dst, _, cut = verified_pairs(digests, sets, 0.8)
    assert list(zip(src.tolist(), dst.tolist(), strict=True)) == [(2, 0)] and cut == 2
    # a chain links 1-0 and 2-1 only: the copies are never compared there
    chain_src, chain_dst, _ = band_pairs(digests)
    assert sorted(zip(chain_src.tolist(), chain_dst.tolist(), strict=True)) == [(1, 0), (2, 1)]
