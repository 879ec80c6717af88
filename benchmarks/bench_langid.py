"""Language ID: accuracy on French against its neighbours, and the `langid` stage's throughput.

On ../shared/data/langid/lingua_sentences (one sentence a line, 75 languages), with the bundled
lid.176.ftz, in one process on the same sentences:
  accuracy  French precision, recall and F1 of the `langid` stage (each sentence is the assistant
            turn of a record), its confusions with en, es, it, pt, ca, ro, de and the rest, and the
            same for datatrove's `LanguageFilter` (ft176 backend, the same model file); the stage
            also without its lexicon, and on the even and odd lines of each language apart (the
            lexicon's two constants were chosen on the even ones)
  speed     sentences/s of the stage (`run_batch` over batches of 1,024 records), of raw fastText
            `predict` on the same sentences one by one, and of datatrove's filter, taking turns on
            blocks of 4,096 sentences (the best of the repeats per block, summed); the ratio
            stage / raw fastText (goal >= 0.8). Goal for accuracy: French F1 >= 0.99.
  --conversations
            the stage's speed on whole conversations instead: the 1,439 OASST conversations of
            ../shared/data/instruct_fr/vigogne (oasst_20230412_fr_1k and _top1, 4,628 turns) in the
            engine's batches of 1,024 records, against raw fastText `predict` on each turn's text (its
            line breaks made spaces), and on each distinct turn of a batch (the 1k file holds branches
            of OASST trees, which share their first turns: the stage judges a text once per batch).
            Both take turns on each batch; the best of the repeats per batch, summed.

    python benchmarks/bench_langid.py [--data ../shared/data/langid/lingua_sentences] [--repeats 3]
    python benchmarks/bench_langid.py --conversations [--repeats 5]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import time
from collections import Counter
from pathlib import Path

NEIGHBOURS = ("en", "es", "it", "pt", "ca", "ro", "de")
BLOCK = 4096  # sentences timed together (4 of the stage's batches)
ENGINE_BATCH = 1024  # records a batch, as the engine reads them (sources/reader.py)
OASST = ("oasst_20230412_fr_1k.jsonl", "oasst_20230412_fr_top1.jsonl")
ROLES = {"UTILISATEUR": "user", "ASSISTANT": "assistant"}  # the 1k file's role names


def load(folder: Path) -> list[tuple[str, str]]:
    rows = []
    for path in sorted(folder.glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append((path.stem, line.strip()))
    return rows


def french_scores(gold: list[str], predicted: list[str]) -> dict[str, float]:
    tp = sum(g == "fr" and p == "fr" for g, p in zip(gold, predicted, strict=True))
    fp = sum(g != "fr" and p == "fr" for g, p in zip(gold, predicted, strict=True))
    fn = sum(g == "fr" and p != "fr" for g, p in zip(gold, predicted, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "fp": fp, "fn": fn}


def report(name: str, gold: list[str], predicted: list[str]) -> None:
    s = french_scores(gold, predicted)
    print(
        f"{name:>22}: French precision {s['precision']:.4f}  recall {s['recall']:.4f}  F1 {s['f1']:.4f}  "
        f"(false positives {s['fp']}, false negatives {s['fn']})"
    )
    taken = Counter(
        g if g in NEIGHBOURS else "rest" for g, p in zip(gold, predicted, strict=True) if g != "fr" and p == "fr"
    )
    missed = Counter(p for g, p in zip(gold, predicted, strict=True) if g == "fr" and p != "fr")
    print(f"{'':>24}taken for French: {dict(taken) or '-'}; French taken for: {dict(missed) or '-'}")


def records(sentences: list[str]) -> list[dict]:
    return [
        {"id": str(i), "messages": [{"role": "assistant", "content": s}], "_reject": None}
        for i, s in enumerate(sentences)
    ]


def run_stage(stage, sentences: list[str]) -> tuple[list[str], float]:
    """The stage's decision per sentence: `fr` when it keeps the record, else the language it saw.
    Records are built batch by batch, as the engine streams them (only `run_batch` is timed)."""
    decisions, seconds = [], 0.0
    for i in range(0, len(sentences), 1024):
        batch = records(sentences[i : i + 1024])
        start = time.perf_counter()
        stage.run_batch(batch)
        seconds += time.perf_counter() - start
        decisions.extend("fr" if r["_reject"] is None else r["lang"][0]["lang"] + "?" for r in batch)
    return decisions, seconds


def load_conversations(folder: Path) -> list[list[dict[str, str]]]:
    """The messages of the OASST conversations of vigogne, in file order (as the engine reads them)."""
    conversations = []
    for name in OASST:
        for line in (folder / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            turns = row.get("messages") or row["conversation"]
            conversations.append([{"role": ROLES.get(t["role"], t["role"]), "content": t["content"]} for t in turns])
    return conversations


def conversation_speed(stage, conversations: list[list[dict[str, str]]], repeats: int) -> None:
    """The stage's time on whole conversations against raw fastText per turn, batch by batch, interleaved."""
    predict = stage.model.predict
    batches = [conversations[i : i + ENGINE_BATCH] for i in range(0, len(conversations), ENGINE_BATCH)]

    def stage_batch(batch: list[list[dict[str, str]]]) -> float:
        records = [{"id": str(i), "messages": m, "_reject": None} for i, m in enumerate(batch)]
        start = time.perf_counter()
        stage.run_batch(records)
        return time.perf_counter() - start

    def raw_batch(texts: list[str]) -> float:
        start = time.perf_counter()
        for text in texts:
            predict(" ".join(text.split()), k=1)
        return time.perf_counter() - start

    turns = [[t["content"] for m in batch for t in m] for batch in batches]
    methods = {
        "langid stage": lambda b: stage_batch(batches[b]),
        "raw fastText per turn": lambda b: raw_batch(turns[b]),
        "raw fastText per distinct turn": lambda b: raw_batch(list(dict.fromkeys(turns[b]))),
    }
    best = {name: [float("inf")] * len(batches) for name in methods}
    for repeat in range(repeats):
        for b in range(len(batches)):
            order = list(methods) if (repeat + b) % 2 == 0 else list(reversed(methods))
            for name in order:
                best[name][b] = min(best[name][b], methods[name](b))
    times = {name: sum(best[name]) for name in methods}
    n = sum(map(len, turns))
    print(
        f"{len(conversations):,} conversations, {n:,} turns ({sum(len(set(t)) for t in turns):,} distinct per batch), "
        f"{sum(len(t) for ts in turns for t in ts) // n} characters a turn; best of {repeats} per batch of "
        f"{ENGINE_BATCH:,}, interleaved"
    )
    for name, seconds in times.items():
        print(f"{name:>31}: {n / seconds:9.0f} turns/s  ({seconds:.3f} s)")
    stage_time = times["langid stage"]
    per_turn, per_distinct = times["raw fastText per turn"], times["raw fastText per distinct turn"]
    print(f"ratio langid stage / raw fastText per turn: {per_turn / stage_time:.2f} (goal >= 0.8)")
    print(f"ratio langid stage / raw fastText per distinct turn: {per_distinct / stage_time:.2f}")


def main() -> None:
    default = Path(os.environ.get("FRCORPUS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default / "langid" / "lingua_sentences")
    parser.add_argument(
        "--conversations",
        nargs="?",
        type=Path,
        const=default / "instruct_fr" / "vigogne",
        help="time the stage on the OASST conversations of this folder instead (default: vigogne's)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="best of N timings of each block")
    parser.add_argument("--min-score", type=float, default=None, help="the stage's min_score (default: its own)")
    parser.add_argument("--model", default=None, help="a fastText LID model file (default: the bundled lid.176.ftz)")
    parser.add_argument("--no-freeze", action="store_true", help="skip gc.freeze() after set-up (the engine calls it)")
    args = parser.parse_args()

    from frcorpus.stages.langid import LangId

    if args.conversations:
        options = {} if args.model is None else {"model": args.model}
        stage = LangId(LangId.Config(type="langid", keep=["fr"], **options), "langid")  # the quickstart's settings
        stage.setup()
        conversations = load_conversations(args.conversations)
        if not args.no_freeze:
            gc.freeze()
        conversation_speed(stage, conversations, args.repeats)
        return

    import fasttext
    from datatrove.data import Document
    from datatrove.pipeline.filters import LanguageFilter

    from frcorpus.resources import bundled_model
    from frcorpus.text.languages import iso_code

    rows = load(args.data)
    gold = [lang for lang, _ in rows]
    sentences = [text for _, text in rows]
    model_name = args.model or "lid.176.ftz (bundled)"
    print(f"{len(rows)} sentences in {len(set(gold))} languages ({gold.count('fr')} French), model {model_name}")

    options = {} if args.min_score is None else {"min_score": args.min_score}
    if args.model:
        options["model"] = args.model
    stage = LangId(LangId.Config(type="langid", keep=["fr"], require="all_turns", **options), "langid")
    stage.setup()
    model = stage.model
    filt = LanguageFilter(languages=["fr"])
    filt.model._model = fasttext.load_model(str(args.model or bundled_model("lid.176.ftz")))
    if not args.no_freeze:
        # as frcorpus's engine does after a stage's set-up (engine/steps.py RunStage): what is alive
        # now lives as long as the task, and the collector's full collections no longer walk it
        gc.freeze()

    # Timings, interleaved block by block: this machine's speed drifts by up to a third over minutes,
    # and whole-run timings put one method in a slow minute and another in a fast one. So the three
    # take turns on each block of 4,096 sentences (in alternating order), each keeps its best time per
    # block over the repeats, and a method's time is the sum of its blocks' best.
    docs = [Document(text=s, id=str(i)) for i, s in enumerate(sentences)]
    predict = model.predict

    def raw_block(block: list[str]) -> tuple[list[str], float]:
        start = time.perf_counter()
        labels = [predict(" ".join(s.split()), k=1)[0][0] for s in block]
        return labels, time.perf_counter() - start

    def datatrove_block(block: list[Document]) -> tuple[None, float]:
        start = time.perf_counter()
        for doc in block:
            filt.filter(doc)
        return None, time.perf_counter() - start

    methods = {
        "langid stage": lambda lo, hi: run_stage(stage, sentences[lo:hi]),
        "raw fastText": lambda lo, hi: raw_block(sentences[lo:hi]),
        "datatrove": lambda lo, hi: datatrove_block(docs[lo:hi]),
    }
    blocks = [(lo, min(lo + BLOCK, len(sentences))) for lo in range(0, len(sentences), BLOCK)]
    best = {name: [float("inf")] * len(blocks) for name in methods}
    predicted, raw = [], []
    for repeat in range(args.repeats):
        for b, (lo, hi) in enumerate(blocks):
            order = list(methods) if (repeat + b) % 2 == 0 else list(reversed(methods))
            for name in order:
                out, seconds = methods[name](lo, hi)
                best[name][b] = min(best[name][b], seconds)
                if repeat == 0 and name == "langid stage":
                    predicted.extend(out)
                elif repeat == 0 and name == "raw fastText":
                    raw.extend(out)
    times = {name: sum(best[name]) for name in methods}
    raw_pred = [iso_code(label) for label in raw]
    # what datatrove keeps: a French score above its threshold
    dt_pred = ["fr" if filt.filter(doc) else iso_code(doc.metadata["language"]) + "?" for doc in docs]

    print("accuracy")
    report(f"langid stage (min_score {stage.config.min_score})", gold, predicted)
    seen: Counter = Counter()
    parity = []
    for lang in gold:
        parity.append(seen[lang] % 2)
        seen[lang] += 1
    for half, name in ((0, "even lines (dev)"), (1, "odd lines (held out)")):
        picked = [i for i, p in enumerate(parity) if p == half]
        report(f"  {name}", [gold[i] for i in picked], [predicted[i] for i in picked])
    plain = LangId(LangId.Config(type="langid", keep=["fr"], require="all_turns", lexicon=False, **options), "plain")
    plain.setup()
    report("  stage without lexicon", gold, run_stage(plain, sentences)[0])
    report("raw fastText top-1", gold, raw_pred)
    report(f"datatrove (threshold {filt.language_threshold})", gold, dt_pred)
    print(f"speed (best of {args.repeats} per block of {BLOCK:,} sentences, interleaved)")
    n = len(sentences)
    for name, seconds in times.items():
        print(f"{name:>22}: {n / seconds:9.0f} sentences/s  ({seconds:.2f} s)")
    print(f"ratio langid stage / raw fastText: {times['raw fastText'] / times['langid stage']:.2f} (goal >= 0.8)")
    print(f"ratio langid stage / datatrove LanguageFilter: {times['datatrove'] / times['langid stage']:.2f}")


if __name__ == "__main__":
    main()
