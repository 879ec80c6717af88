"""Benchmark decontamination (`decontaminate`, method ngram) on real data from ../shared/data.

Benchmarks: MMLU-FR (test, 14,042 items, English MMLU as its original), MGSM French (English
original), M-IFEval (French and English prompts), MT-Bench French (English original).

- Clean data: French vigogne (OASST 1k, seed tasks, doremiti), the 17 M-IFEval response files (their
  prompts ARE M-IFEval's: a positive check of mifeval, and clean for the other benchmarks), English
  alpaca_demo, gsm8k train and test, self-instruct, the Alpaca seeds and IFEval gpt-4o (IFEval's
  prompts are M-IFEval's English ones: a positive check again). GSM8K test holds MGSM's English
  questions (MGSM is 250 of them, translated): a real leak, reported apart.
- Planted items (seeded): benchmark items put into the user turn of clean conversations (French hosts
  from vigogne, English ones from alpaca_demo), verbatim; lightly edited (words replaced by other
  words, multiple-choice options shuffled); and, for MMLU, MGSM and MT-Bench, the aligned English item
  in English records (`ngram_en`, with the French item id).
- Throughput of the stage on the clean data, in batches of 1,000 records.

Run: .venv/bin/python benchmarks/decontam_real_data.py [--n-grams 13] [--min-overlap 0.2] [--mmlu 14042]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import time
from collections import Counter
from pathlib import Path

from frcorpus.stages.decontam import Decontaminate

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FRCORPUS_SHARED_DATA", REPO.parent / "shared" / "data"))
BENCH = SHARED / "benchmarks_fr"
WORD = re.compile(r"\w+")
LETTERS = "ABCD"


def chat(*turns: str, **extra) -> dict:
    roles = ["user", "assistant"] * len(turns)
    return {"messages": [{"role": r, "content": t} for r, t in zip(roles, turns, strict=False) if t], **extra}


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def instruction(row: dict, instance: dict | None = None) -> dict:
    inst = instance or row
    prompt = row["instruction"] + (f"\n\n{inst['input']}" if inst.get("input") else "")
    return chat(prompt, inst["output"])


def clean_sets() -> dict[str, tuple[str, list[dict], str | None]]:
    """name -> (language, records, the benchmark its prompts come from, if any)."""
    fr, en = SHARED / "instruct_fr", SHARED / "instruct_en"
    roles = {"UTILISATEUR": "user", "ASSISTANT": "assistant"}
    vigogne = [
        {"messages": [{"role": roles[m["role"]], "content": m["content"]} for m in r["conversation"]]}
        for r in jsonl(fr / "vigogne" / "oasst_20230412_fr_1k.jsonl")
    ]
    seeds_fr = [instruction(r, i) for r in jsonl(fr / "vigogne" / "seed_tasks_vigogne.jsonl") for i in r["instances"]]
    doremiti = [instruction(r) for r in jsonl(fr / "vigogne" / "gt_doremiti_instructions.jsonl")]
    mifeval = [
        chat(r["prompt"], r["response"])
        for p in sorted((fr / "mifeval_fr_responses").glob("*.jsonl"))
        for r in jsonl(p)
    ]
    alpaca = [instruction(r) for r in json.loads((en / "alpaca_demo" / "alpaca_en_demo.json").read_text())]
    gsm_train = [chat(r["question"], r["answer"]) for r in jsonl(en / "gsm8k" / "train.jsonl")]
    gsm_test = [chat(r["question"], r["answer"]) for r in jsonl(en / "gsm8k" / "test.jsonl")]
    self_instruct = [
        instruction(r, i)
        for r in jsonl(en / "self_instruct" / "user_oriented_instructions.jsonl")
        for i in r["instances"]
    ]
    seeds_en = [instruction(r, i) for r in jsonl(en / "alpaca_seed" / "seed_tasks.jsonl") for i in r["instances"]]
    ifeval = [
        chat(r["prompt"], r["response"])
        for r in jsonl(en / "ifeval_en_gpt4o" / "en_input_response_data_gpt-4o-2024-08-06.jsonl")
    ]
    return {
        "vigogne_oasst_1k": ("fr", vigogne, None),
        "vigogne_seeds": ("fr", seeds_fr, None),
        "vigogne_doremiti": ("fr", doremiti, None),
        "mifeval_fr_responses": ("fr", mifeval, "mifeval"),
        "alpaca_demo": ("en", alpaca, None),
        "gsm8k_train": ("en", gsm_train, None),
        "gsm8k_test": ("en", gsm_test, "mgsm"),
        "self_instruct": ("en", self_instruct, None),
        "alpaca_seed": ("en", seeds_en, None),
        "ifeval_en_gpt4o": ("en", ifeval, "mifeval"),
    }


# ----------------------------------------------------------------------------------- benchmark items


def mmlu_items(folder: str, suffix: str) -> dict[str, list[str]]:
    items = {}
    for path in sorted((BENCH / "mmlu" / folder / "data" / "test").glob(f"*_test{suffix}.csv")):
        stem = path.name.removesuffix(".csv")
        for i, row in enumerate(csv.reader(path.open(encoding="utf-8", newline=""))):
            items[f"{stem.removesuffix('.fr')}.fr:{i}"] = row  # English rows under their French id
    return items


def mgsm_items(lang: str) -> dict[str, list[str]]:
    lines = (BENCH / "mgsm" / f"mgsm_{lang}.tsv").read_text(encoding="utf-8").splitlines()
    return {f"mgsm_fr:{i}": line.split("\t") for i, line in enumerate(lines)}


def mt_bench_items(lang: str) -> dict[str, list[str]]:
    return {str(r["question_id"]): r["turns"] for r in jsonl(BENCH / "mt_bench" / f"question_{lang}.jsonl")}


def mifeval_items() -> dict[str, list[str]]:
    out = {}
    for lang in ("fr", "en"):
        for r in jsonl(BENCH / "mifeval" / f"{lang}_input_data.jsonl"):
            out[f"{lang}_input_data:{r['key']}"] = [r["prompt"]]
    return out


def edit(text: str, k: int, rng: random.Random, pool: list[str]) -> str:
    """`text` with k of its words replaced by other words (case kept for the first letter)."""
    spans = [m.span() for m in WORD.finditer(text)]
    if not spans:
        return text
    chosen = sorted(rng.sample(range(len(spans)), min(k, len(spans))), reverse=True)
    for i in chosen:
        a, b = spans[i]
        new = rng.choice(pool)
        while new.lower() == text[a:b].lower():
            new = rng.choice(pool)
        text = text[:a] + (new.capitalize() if text[a].isupper() else new) + text[b:]
    return text


def mc_text(question: str, choices: list[str]) -> str:
    return question + "\n" + "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))


def render(bench: str, parts: list[str], k: int, rng: random.Random, pool: list[str]) -> list[str]:
    """The user turns that carry an item: verbatim (k=0) or with k words replaced per turn, choices shuffled."""
    if bench == "mmlu_fr":
        question, choices = parts[0], list(parts[1:5])
        if k:
            question = edit(question, k, rng, pool)
            rng.shuffle(choices)
        return [mc_text(question, choices)]
    turns = parts[:1] if bench in ("mgsm", "mifeval") else parts
    return [edit(t, k, rng, pool) if k else t for t in turns]


def plant(turns: list[str], host: dict, rng: random.Random, lang: str) -> dict:
    """A host conversation whose user turns carry the item: alone, or after the host's request."""
    answer = next(m["content"] for m in host["messages"] if m["role"] == "assistant")
    prompt = next(m["content"] for m in host["messages"] if m["role"] == "user")
    messages = []
    for j, turn in enumerate(turns):
        if j == 0 and rng.random() < 0.5:
            lead = "Réponds à cette question :" if lang == "fr" else "Answer this question:"
            turn = f"{prompt}\n\n{lead}\n{turn}" if rng.random() < 0.5 else f"{lead}\n\n{turn}"
        messages += [{"role": "user", "content": turn}, {"role": "assistant", "content": answer}]
    return {"messages": messages}


# ----------------------------------------------------------------------------------- running


def make_stage(args) -> Decontaminate:
    cfg = Decontaminate.Config(
        type="decontaminate",
        n_grams=args.n_grams,
        min_overlap=args.min_overlap,
        benchmarks=[
            {
                "name": "mmlu_fr",
                "preset": "mmlu_fr",
                "path": str(BENCH / "mmlu"),
                "english": {"path": str(BENCH / "mmlu")},
            },
            {"name": "mgsm", "preset": "mgsm", "path": str(BENCH / "mgsm"), "english": {"path": str(BENCH / "mgsm")}},
            {"name": "mifeval", "preset": "mifeval", "path": str(BENCH / "mifeval")},
            {
                "name": "mt_bench",
                "preset": "mt_bench",
                "path": str(BENCH / "mt_bench"),
                "english": {"path": str(BENCH / "mt_bench")},
            },
        ],
    )
    return Decontaminate(cfg, "decontaminate")


def run(stage: Decontaminate, records: list[dict], batch: int = 1000) -> list[dict]:
    for i, r in enumerate(records):
        r["id"], r["_reject"] = str(i), None
    for i in range(0, len(records), batch):
        stage.run_batch(records[i : i + batch])
    return records


def verdict(record: dict) -> tuple[str | None, str | None]:
    rej = record["_reject"]
    if rej is None:
        return None, None
    return rej["reason"], rej["detail"].split()[0].removeprefix("item=")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-grams", type=int, default=13)
    parser.add_argument("--min-overlap", type=float, default=0.2)
    parser.add_argument("--mmlu", type=int, default=14042, help="MMLU items planted per variant (of 14,042)")
    parser.add_argument("--repeat", type=int, default=3, help="timing runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--examples", type=int, default=8, help="false positives shown")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    stage = make_stage(args)
    start = time.perf_counter()
    stage.setup()
    print(
        f"index: {stage.index.units:,} units of {len({(o.bench, o.item, o.english) for o in stage.index.owners}):,} "
        f"items (English originals included), {stage.index.unmatchable} of which cannot match, "
        f"{stage.index.dropped:,} boilerplate units dropped, built in {time.perf_counter() - start:.1f} s"
    )

    # ---- clean data: false positives, and the two known leaks
    sets = clean_sets()
    print(f"\nclean data (n={args.n_grams}, min_overlap={args.min_overlap}):")
    print(f"{'set':22} {'records':>8} {'rejected':>9} {'expected':>9} {'false pos':>9}  by reason")
    fp_total = n_total = 0
    fp_examples = []
    timing_records = []
    for name, (_, records, source_bench) in sets.items():
        timing_records += [{"messages": [dict(m) for m in r["messages"]]} for r in records]
        run(stage, records)
        reasons = Counter()
        expected = fp = 0
        for r in records:
            reason, item = verdict(r)
            if reason is None:
                continue
            reasons[reason.removeprefix("decontaminate.")] += 1
            if source_bench and reason.split(".")[1] == source_bench:
                expected += 1
            else:
                fp += 1
                fp_examples.append((name, reason, r["_reject"]["detail"], r["messages"][0]["content"][:160]))
        fp_total += fp
        n_total += len(records)
        shown = ", ".join(f"{k} {v}" for k, v in reasons.most_common(4))
        print(f"{name:22} {len(records):>8,} {sum(reasons.values()):>9,} {expected:>9,} {fp:>9,}  {shown}")
    print(f"false positive rate: {fp_total}/{n_total:,} = {fp_total / n_total:.3%}")
    for name, reason, detail, text in fp_examples[: args.examples]:
        print(f"  FP {name}: {reason} {detail}: {text!r}")

    # gsm8k test vs MGSM English: which rows leak
    gsm_test = sets["gsm8k_test"][1]
    leaked = [i for i, r in enumerate(gsm_test) if (verdict(r)[0] or "").endswith("mgsm.ngram_en")]
    print(
        f"gsm8k test: {len(leaked)} of {len(gsm_test)} records match MGSM's English original "
        f"(rows {leaked[:3]}...{leaked[-3:]})"
        if leaked
        else "gsm8k test: no MGSM match"
    )

    # ---- planted items
    fr_hosts = [r for r in sets["vigogne_oasst_1k"][1] if r["_reject"] is None]
    en_hosts = [r for r in sets["alpaca_demo"][1] if r["_reject"] is None]
    pool_fr = sorted(
        {w for r in fr_hosts[:300] for m in r["messages"] for w in WORD.findall(m["content"]) if w.isalpha()}
    )
    pool_en = sorted(
        {w for r in en_hosts[:300] for m in r["messages"] for w in WORD.findall(m["content"]) if w.isalpha()}
    )
    mmlu_fr = mmlu_items("MMLU-FR", ".fr")
    mmlu_en = mmlu_items("MMLU", "")
    benches = {
        "mmlu_fr": (mmlu_fr, mmlu_en),
        "mgsm": (mgsm_items("fr"), mgsm_items("en")),
        "mifeval": (mifeval_items(), None),
        "mt_bench": (mt_bench_items("fr"), mt_bench_items("en")),
    }
    variants = [("verbatim", 0), ("1 word changed", 1), ("2 words changed", 2), ("3 words changed", 3)]
    missed: list[str] = []
    print("\nplanted items: recall (caught with the right benchmark; right item in parentheses)")
    print(f"{'benchmark':10} {'items':>6} " + " ".join(f"{v:>20}" for v, _ in variants) + f" {'English original':>20}")
    for bench, (items, english) in benches.items():
        ids = sorted(items)
        if bench == "mmlu_fr" and args.mmlu < len(ids):
            ids = sorted(rng.sample(ids, args.mmlu))
        cells = []
        for variant, k in variants + ([("en", 0)] if english else []):
            lang = "en" if variant == "en" else "fr"
            records, expect = [], []
            for item_id in ids:
                if lang == "en":
                    parts = english[item_id]
                    hosts, pool = en_hosts, pool_en
                else:
                    parts = items[item_id]
                    english_item = bench == "mifeval" and item_id.startswith("en_")
                    hosts, pool = (en_hosts, pool_en) if english_item else (fr_hosts, pool_fr)
                turns = render(bench, parts, k, rng, pool)
                records.append(plant(turns, rng.choice(hosts), rng, lang))
                expect.append(item_id)
            run(stage, records)
            suffix = ".ngram_en" if lang == "en" else ".ngram"
            caught = [verdict(r) for r in records]
            hit = sum(1 for reason, _ in caught if reason == f"decontaminate.{bench}{suffix}")
            right = sum(1 for (reason, item), e in zip(caught, expect, strict=True) if item == e and reason)
            cells.append(f"{hit / len(ids):.3f} ({right / len(ids):.3f})")
            if k == 0 and hit < len(ids):
                missed.append(f"{bench}{' (English)' if lang == 'en' else ''}: {len(ids) - hit} of {len(ids)}")
        print(f"{bench:10} {len(ids):>6} " + " ".join(f"{c:>20}" for c in cells))

    if missed:
        print(f"verbatim items missed: {'; '.join(missed)} (their text is too short or only numbers)")

    # ---- throughput on the clean records: all of them, and vigogne's chats alone
    print(f"\nthroughput (one process, batches of 1,000, best of {args.repeat}; index built in setup, not counted):")
    vigogne = sets["vigogne_oasst_1k"][1]
    for name, pool in (("vigogne OASST chats", vigogne), ("all clean records", timing_records)):
        words = sum(len(WORD.findall(m["content"])) for r in pool for m in r["messages"])
        best = None
        for _ in range(args.repeat):
            records = [{"messages": r["messages"]} for r in pool]
            start = time.perf_counter()
            run(stage, records)
            elapsed = time.perf_counter() - start
            best = elapsed if best is None else min(best, elapsed)
        n = len(pool)
        print(
            f"  {name}: {n:,} records of {words / n:.0f} words on average: {n / best:,.0f} records/s, "
            f"{best / n * 1e6:.0f} us/record, {best / words * 1e9:.0f} ns/word"
        )


if __name__ == "__main__":
    main()
