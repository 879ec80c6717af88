"""`exact_dedup` and `minhash_dedup` at the barrier decide from partitions, sorted one at a time and kept
on disk past `FRCORPUS_BARRIER_MEMORY`: the same rejections (details included) and counters whether the
partitions spill or not, and the same as a brute-force decision over every pair in memory."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from frcorpus.stages.dedup import ExactDedup, MinhashDedup
from frcorpus.stages.dedup.clusters import KeepChoice, UnionFind, cluster_rejects, ranks_of
from frcorpus.stages.dedup.lsh import jaccard
from frcorpus.stages.signatures import Partitions
from tests.conftest import chat

WORDS = (
    "le la les un une des du de et ou mais donc car chat chien maison jardin soleil pluie vent mer montagne "
    "rivière forêt ville village route voiture train avion livre page mot phrase question réponse idée "
    "raison temps jour nuit matin soir année mois semaine heure minute travail école élève professeur "
    "ami famille enfant parent frère sœur repas pain fromage vin eau café thé sucre sel poivre"
).split()
PROMPT = (
    "Avez-vous déjà visité un pays en dehors de votre continent ? Votre réponse devra se limiter à l'une "
    "des options suivantes : ('Oui.', 'Non.', 'Peut-être.'). Répondez sans rien ajouter d'autre."
)


def corpus(n: int = 260, seed: int = 7) -> list[dict]:
    """Originals, exact copies (some with other whitespace), near copies (1-3 words replaced), short
    answers to one long prompt (the answer check), one record without a word, over two sources. "Oui."
    and "Non." to a prompt of 2,000 words alternate: their conversations share every band, so the chain of
    each band alternates too and every link fails the answer check (the answers are paired again)."""
    rng = random.Random(seed)
    originals: list[tuple[str, str]] = []
    records = []
    long_prompt = " ".join(rng.choices(WORDS, k=2000)) + " ? Réponds par oui ou par non."
    for i in range(n):
        roll = rng.random()
        if i % 20 == 10:
            question, answer = long_prompt, "Oui." if i % 40 == 10 else "Non."
            records.append({"id": f"r{i}", **chat(question, answer), "source": {"name": "a"}})
            continue
        if originals and roll < 0.15:
            question, answer = rng.choice(originals)
            answer = answer.replace(" ", "  ", rng.randint(0, 2))
        elif originals and roll < 0.35:
            question, answer = rng.choice(originals)
            words = answer.split()
            for _ in range(rng.randint(1, 3)):
                words[rng.randrange(len(words))] = rng.choice(WORDS)
            answer = " ".join(words)
        elif roll < 0.45:
            question, answer = PROMPT, rng.choice(["Oui.", "Non.", "Peut-être.", "non."])
        else:
            question = " ".join(rng.choices(WORDS, k=rng.randint(4, 12))) + " ?"
            answer = " ".join(rng.choices(WORDS, k=rng.randint(30, 60))) + "."
            originals.append((question, answer))
        extra = {"instructions_pass_rate": rng.choice([None, 0.5, 1.0])}
        records.append({"id": f"r{i}", **chat(question, answer), "source": {"name": rng.choice("ab")}, **extra})
    records.append({"id": "empty", **chat("?", "…"), "source": {"name": "a"}})
    return records


def signature_table(stage, records: list[dict]) -> pa.Table:
    return pa.table(
        {
            "id": [r["id"] for r in records],
            "source": [r["source"]["name"] for r in records],
            "sig": stage.signature_records(records),
        }
    )


def brute_force_exact(stage: ExactDedup, table: pa.Table) -> dict:
    """The groups of equal hashes, by a dict; the kept member of each by `KeepChoice`."""
    sig = table["sig"].combine_chunks()
    labels_of: dict[bytes, int] = {}
    labels = np.array([labels_of.setdefault(h, len(labels_of)) for h in sig.field("hash").to_pylist()])
    choice = KeepChoice(stage.config, ranks_of(sig.field("rank"), len(stage.config.criteria())))
    kept = choice.kept(labels, len(labels_of))
    ids = table["id"].to_pylist()
    return {
        j: ("duplicate", f"dup_of={ids[kept[label]]}{choice.why(int(kept[label]), j)}")
        for j, label in enumerate(labels.tolist())
        if kept[label] != j
    }


def brute_force_minhash(stage: MinhashDedup, table: pa.Table) -> dict:
    """Every pair of hashed records that shares a band (and a band of their answers where either is checked;
    and reaches `verify_jaccard` when it is set), clustered by `cluster_rejects` in memory."""
    sig = table["sig"].combine_chunks()
    hashed = np.flatnonzero(sig.field("bands").is_valid().to_numpy(zero_copy_only=False))
    take = pa.array(hashed)
    bands = sig.field("bands").take(take).flatten().to_numpy().reshape(len(hashed), -1)
    linked = (bands[:, None, :] == bands[None, :, :]).any(axis=2)
    if stage.check:
        check = sig.field("check").take(take).flatten().to_numpy().reshape(len(hashed), -1)
        checked = sig.field("checked").take(take).to_numpy(zero_copy_only=False)
        answers_agree = (check[:, None, :] == check[None, :, :]).any(axis=2)
        linked &= answers_agree | ~(checked[:, None] | checked[None, :])
    src, dst = np.nonzero(np.tril(linked, -1))
    if stage.config.verify_jaccard is not None:
        shingles = sig.field("shingles").take(take)
        offsets, flat = shingles.offsets.to_numpy(), shingles.values.to_numpy()
        sets = [flat[offsets[k] : offsets[k + 1]] for k in range(len(hashed))]
        similar = jaccard(sets, src, dst) >= stage.config.verify_jaccard
        src, dst = src[similar], dst[similar]
    choice = KeepChoice(stage.config, ranks_of(sig.field("rank").take(take), len(stage.config.criteria())))
    rejects = cluster_rejects(src, dst, hashed, choice, table["id"].to_pylist(), "near_duplicate", lambda *a: None)
    return {row: (r.reason, r.detail) for row, r in rejects.items()}


def as_pairs(verdicts: dict) -> dict:
    return {row: (r.reason, r.detail) for row, r in verdicts.items()}


@pytest.fixture
def flushes(monkeypatch) -> list[int]:
    """Counts the writes of partitions to disk."""
    calls: list[int] = []
    flush = Partitions._flush

    def counting(self):
        calls.append(self.n_parts)
        flush(self)

    monkeypatch.setattr(Partitions, "_flush", counting)
    return calls


CONFIGS = [
    (ExactDedup, {}),
    (ExactDedup, {"keep": "first"}),
    (ExactDedup, {"view": "prompt"}),
    (ExactDedup, {"keep": "source_priority", "source_priority": ["b"]}),
    (MinhashDedup, {}),
    (MinhashDedup, {"keep": "first"}),
    (MinhashDedup, {"answer_share": 0}),
    (MinhashDedup, {"view": "response"}),
    (MinhashDedup, {"threshold": 0.5, "verify_jaccard": 0.6}),
]


@pytest.mark.parametrize(("cls", "cfg"), CONFIGS)
def test_spilled_partitions_decide_as_memory_and_as_every_pair(cls, cfg, flushes):
    def stage():
        built = cls(cls.Config(type=cls.name, **cfg), cls.name)
        built.setup()
        return built

    records = corpus()
    in_memory, spilled = stage(), stage()
    table = signature_table(in_memory, records)
    decided = in_memory.decide_table(table)
    assert not flushes  # the default bound holds a few hundred records
    assert as_pairs(spilled.scan_table(table, memory=512)) == as_pairs(decided)
    assert flushes and max(flushes) > 1  # partitions on disk, several of them
    assert spilled.stats.counters == in_memory.stats.counters
    brute_force = brute_force_exact if cls is ExactDedup else brute_force_minhash
    assert as_pairs(decided) == brute_force(stage(), table)
    assert len(decided) > 20
    if cls is MinhashDedup:
        assert in_memory.stats.counters["not_hashed"] == 1
        if cfg == {}:  # "Oui." and "Non." to one prompt: a chain link the answer check cuts
            assert in_memory.stats.counters["pairs_with_different_answers"] > 0
        if "verify_jaccard" in cfg:
            assert in_memory.stats.counters["pairs_below_verify_jaccard"] > 0


def test_union_find_gives_the_connected_components_of_edges_in_batches():
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rng = np.random.default_rng(3)
    for _ in range(20):
        n = int(rng.integers(2, 300))
        edges = rng.integers(0, n, size=(int(rng.integers(0, n)), 2))
        components = UnionFind(n)
        for batch in np.array_split(edges, 4):
            components.union(batch[:, 0], batch[:, 1])
        _, labels = connected_components(coo_matrix((np.ones(len(edges)), edges.T), shape=(n, n)), directed=False)
        members, roots = components.clusters()
        sizes = np.bincount(labels)
        assert sorted(members.tolist()) == np.flatnonzero(sizes[labels] > 1).tolist()
        for a, b in zip(members.tolist(), roots.tolist(), strict=True):
            assert labels[a] == labels[b]
        assert len(np.unique(roots)) == int((sizes > 1).sum())
