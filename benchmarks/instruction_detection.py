"""Precision and recall of `detect_instructions` (src/frcorpus/stages/instructions/detect.py).

Known constraints: the M-IFEval prompts (../shared/data/benchmarks_fr/mifeval/{fr,en}_input_data.jsonl, 235
French and 541 English), whose instruction ids and kwargs are given. Their `fr:`/`en:` ids are mapped onto
the detector's bare ids (fr:change_case:french_capital and en:change_case:english_capital ->
change_case:capital; "moins de"/"au moins" -> "less than"/"at least"); ids the detector does not cover are
left out. A detection is correct when the prompt's gold has the same id with equal kwargs (end phrases and
postscript markers compared as the checkers do, case ignored). A wrong one was read by hand: where the
prompt does ask for it and the gold leaves it out or gets its kwargs wrong, it is listed in GOLD_MISSES with
the reason and counted as "gold misses", not as correct and not as wrong. Precision = (correct + gold
misses) / detected; strict = correct / detected (the gold taken as it is); recall = correct / known.

Prompts without ids: the 263 distinct first user turns of vigogne OASST
(../shared/data/instruct_fr/vigogne/oasst_20230412_fr_1k.jsonl) and the 999 Alpaca instructions (with their
input) of ../shared/data/instruct_en/alpaca_demo; then more natural prompts: OASST's later user turns,
vigogne's seed tasks and doremiti instructions, the Alpaca seed tasks, self-instruct's user-oriented tasks
(each with its first input), MT-Bench's questions (both turns, French and English) and the HPLT test
prompts. Every detection there is printed; the ones that are real requests (read by hand) are listed in
REAL_REQUESTS; the others are false detections. Last, sentences that ask nothing (news sentences from
lingua, STS-B test pairs): every detection there is false.

With --verdicts, M-IFEval's published answers (17 French models, gpt-4o in English) are checked with the
constraints detected in their prompts (frcorpus's checkers, as verify_instructions runs them): an answer that
fails a detected constraint but passes every gold instruction would be a good answer rejected for a
detection error.

    python benchmarks/instruction_detection.py [--data ../shared/data] [--show-misses] [--verdicts]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections import Counter
from pathlib import Path

from frcorpus.stages.instructions.detect import detect_instructions

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FRCORPUS_SHARED_DATA", REPO.parent / "shared" / "data"))

BARE_IDS = {
    "length_constraints:number_words": "length_constraints:number_words",
    "length_constraints:number_sentences": "length_constraints:number_sentences",
    "length_constraints:number_paragraphs": "length_constraints:number_paragraphs",
    "change_case:french_capital": "change_case:capital",
    "change_case:english_capital": "change_case:capital",
    "change_case:french_lowercase": "change_case:lowercase",
    "change_case:english_lowercase": "change_case:lowercase",
    "punctuation:no_comma": "punctuation:no_comma",
    "detectable_format:json_format": "detectable_format:json_format",
    "detectable_format:title": "detectable_format:title",
    "startend:end_checker": "startend:end_checker",
    "detectable_format:number_bullet_lists": "detectable_format:number_bullet_lists",
    "detectable_format:multiple_sections": "detectable_format:multiple_sections",
    "detectable_content:postscript": "detectable_content:postscript",
    "detectable_content:number_placeholders": "detectable_content:number_placeholders",
    "startend:quotation": "startend:quotation",
    "detectable_format:number_highlighted_sections": "detectable_format:number_highlighted_sections",
    "combination:two_responses": "combination:two_responses",
}
IDS = list(dict.fromkeys(BARE_IDS.values()))
RELATIONS = {"moins de": "less than", "au moins": "at least"}

# (language, key, bare id): (the kwargs detected, why they are right though the gold leaves them out or
# differs), each read by hand
GOLD_MISSES: dict[tuple[str, int, str], tuple[dict, str]] = {
    ("fr", 145, "startend:end_checker"): (
        {"end_phrase": "Avez-vous besoin de conseils supplémentaires ?"},
        'the prompt asks for "Avez-vous besoin de conseils supplémentaires ?"; '
        "the gold's \"D'autres questions ?\" is not in it",
    ),
    ("fr", 154, "length_constraints:number_words"): (
        {"num_words": 440, "relation": "less than"},
        '"ne dépasse pas 439 mots" allows 439: less than 440 (the gold '
        'reads "ne dépasse pas 460 mots" as less than 461 in item 159; here it says less than 439)',
    ),
    ("fr", 178, "length_constraints:number_words"): (
        {"num_words": 171, "relation": "less than"},
        '"un maximum de 170 mots" allows 170: less than 171 (the gold '
        'reads "un maximum de 5 phrases" as less than 6 in item 113)',
    ),
    ("fr", 210, "length_constraints:number_sentences"): (
        {"num_sentences": 16, "relation": "less than"},
        '"ne pas dépasser 15 phrases" allows 15: less than 16 (the '
        'gold reads "ne dépasse pas 17 phrases" as less than 18 in item 115)',
    ),
    ("fr", 219, "length_constraints:number_words"): (
        {"num_words": 117, "relation": "less than"},
        '"un maximum de 116 mots" allows 116: less than 117',
    ),
    ("fr", 243, "length_constraints:number_words"): (
        {"num_words": 398, "relation": "at least"},
        '"doit dépasser 397 mots" is 398 or more (the gold reads "more than 800 words" as at least 801 in en 1643)',
    ),
    ("en", 2392, "detectable_format:json_format"): ({}, '"Your entire output should just contain a JSON code block"'),
    ("en", 251, "change_case:lowercase"): ({}, '"Answer with lowercase letters."'),
    ("en", 2602, "length_constraints:number_words"): (
        {"num_words": 100, "relation": "less than"},
        '"Use less than 100 words."',
    ),
    ("en", 2807, "change_case:lowercase"): ({}, '"Use only lowercase letters."'),
    ("en", 30, "change_case:lowercase"): ({}, '"Please answer in lower case letters."'),
    ("en", 3221, "change_case:capital"): ({}, '"Answer in all caps."'),
    ("en", 337, "length_constraints:number_words"): (
        {"num_words": 400, "relation": "at least"},
        '"at least 400 words" (the gold has 336, a number not in the prompt)',
    ),
}

# (source, prompt start, bare id): why a detection on a prompt without ids is a real request (read by hand)
REAL_REQUESTS: dict[tuple[str, str, str], str] = {
    ("alpaca_en", "Describe the following painting in at least 10 words.", "length_constraints:number_words"): "yes",
    ("alpaca_en", "Describe the article in one or two sentences", "length_constraints:number_sentences"): "yes (< 3)",
    (
        "alpaca_en",
        'Summarize the article "The Effects of Climate Change" in le',
        "length_constraints:number_words",
    ): "yes",
    (
        "alpaca_en",
        "Generate a creative datapoint tagline in 4 words or less.",
        "length_constraints:number_words",
    ): "yes",
    ("alpaca_en", "Generate a short story of 50-100 words.", "length_constraints:number_words"): "yes (both bounds)",
    ("vigogne_seed_fr", "Résume cet e-mail en une seule phrase :", "length_constraints:number_sentences"): "yes (1)",
    (
        "mt_bench_fr",
        "Imaginez que vous écrivez un article de blog comparant deux ",
        "length_constraints:number_words",
    ): "yes",
    (
        "mt_bench_fr",
        "Résumer l'histoire avec trois points à puces en utilisant u",
        "detectable_format:number_bullet_lists",
    ): "yes",
    (
        "mt_bench_fr",
        "Évaluez les critiques de film suivantes sur une échelle de 1",
        "detectable_format:json_format",
    ): "yes",
    (
        "mt_bench_fr",
        "Reformulez votre réponse précédente, présentez-la au format ",
        "detectable_format:json_format",
    ): "yes",
    (
        "mt_bench_en",
        "Imagine you are writing a blog post comparing two popular sm",
        "length_constraints:number_words",
    ): "yes",
    (
        "mt_bench_en",
        "Summarize the story with three bullet points using only noun",
        "detectable_format:number_bullet_lists",
    ): "yes",
    (
        "mt_bench_en",
        "Evaluate the following movie reviews on a scale of 1 to 5, w",
        "detectable_format:json_format",
    ): "yes",
    (
        "mt_bench_en",
        "Reformulate your earlier reply, output it in JSON format and ",
        "detectable_format:json_format",
    ): "yes",
    (
        "mt_bench_en",
        "Identify the countries, their capitals, and the languages sp",
        "detectable_format:json_format",
    ): "yes",
    (
        "mt_bench_en",
        "Analyze the following customer reviews from different source",
        "detectable_format:json_format",
    ): "yes",
    # the second turn asks to redo one headline in fewer than 10 words; the answer is that headline alone
    # (GPT-4's reference answer in French: 8 words)
    (
        "mt_bench_fr",
        "Modifiez votre réponse précédente. Faites les ajustements su",
        "length_constraints:number_words",
    ): "yes",
    (
        "mt_bench_en",
        "Alter your previous response. Make the following adjustments",
        "length_constraints:number_words",
    ): "yes",
}


def bare_gold(instruction_ids: list[str], kwargs: list[dict]) -> list[tuple[str, dict]]:
    gold = []
    for full_id, args in zip(instruction_ids, kwargs, strict=True):
        bare = BARE_IDS.get(full_id.split(":", 1)[1])
        if bare:
            args = {k: RELATIONS.get(v, v) if k == "relation" else v for k, v in args.items() if v is not None}
            gold.append((bare, args))
    return gold


def comparable(kwargs: dict) -> dict:
    """Kwargs as the checkers read them: the end phrase and the postscript marker case-blind."""
    return {k: v.strip().lower() if k in ("end_phrase", "postscript_marker") else v for k, v in kwargs.items()}


def score_prompts(language: str, rows: list[dict]) -> tuple[dict[str, Counter], list[str]]:
    """Per bare id: known, detected, correct, gold_misses, wrong; and the wrong detections, described."""
    table: dict[str, Counter] = {i: Counter() for i in IDS}
    wrong_lines = []
    for row in rows:
        gold = bare_gold(row["instruction_id_list"], row["kwargs"])
        for bare, _ in gold:
            table[bare]["known"] += 1
        remaining = [(bare, comparable(args)) for bare, args in gold]
        for bare, args in detect_instructions(row["prompt"]):
            table[bare]["detected"] += 1
            if (bare, comparable(args)) in remaining:
                remaining.remove((bare, comparable(args)))
                table[bare]["correct"] += 1
            elif GOLD_MISSES.get((language, row["key"], bare), (None,))[0] == args:
                table[bare]["gold_misses"] += 1
            else:
                table[bare]["wrong"] += 1
                golds = [a for b, a in gold if b == bare]
                wrong_lines.append(f"{language} {row['key']} {bare} {args} gold={golds}\n    {row['prompt'][:400]!r}")
    return table, wrong_lines


def misses(rows: list[dict]) -> list[str]:
    lines = []
    for row in rows:
        found = detect_instructions(row["prompt"])
        for bare, args in bare_gold(row["instruction_id_list"], row["kwargs"]):
            if (bare, comparable(args)) not in [(b, comparable(a)) for b, a in found]:
                lines.append(f"{row['key']} {bare} {args}\n    {row['prompt'][:400]!r}")
    return lines


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def _instances(rows: list[dict]) -> list[str]:
    """Self-instruct style tasks: the instruction and its first instance's input, as a user would send them."""
    return [(r["instruction"] + "\n\n" + (r["instances"][0]["input"] if r["instances"] else "")).strip() for r in rows]


def prompts_without_ids(data: Path) -> dict[str, list[str]]:
    """The brief's two sources first (OASST first turns, Alpaca), then more natural prompts."""
    first_turns: list[str] = []
    later_turns: list[str] = []
    for conversation in read_jsonl(data / "instruct_fr/vigogne/oasst_20230412_fr_1k.jsonl"):
        users = [t["content"] for t in conversation["conversation"] if t["role"] == "UTILISATEUR"]
        first_turns += [users[0]] if users[0] not in first_turns else []
        later_turns += [t for t in users[1:] if t not in later_turns]
    alpaca = json.loads((data / "instruct_en/alpaca_demo/alpaca_en_demo.json").read_text(encoding="utf-8"))
    mt_bench = {lang: read_jsonl(data / f"benchmarks_fr/mt_bench/question_{lang}.jsonl") for lang in ("fr", "en")}
    return {
        "oasst_fr": first_turns,
        "alpaca_en": [(r["instruction"] + "\n\n" + r["input"]).strip() for r in alpaca],
        "oasst_fr_later_turns": [t for t in later_turns if t not in first_turns],
        "vigogne_seed_fr": _instances(read_jsonl(data / "instruct_fr/vigogne/seed_tasks_vigogne.jsonl")),
        "doremiti_fr": [
            (r["instruction"] + "\n\n" + r.get("input", "")).strip()
            for r in read_jsonl(data / "instruct_fr/vigogne/gt_doremiti_instructions.jsonl")
        ],
        "alpaca_seed_en": _instances(read_jsonl(data / "instruct_en/alpaca_seed/seed_tasks.jsonl")),
        "self_instruct_en": _instances(read_jsonl(data / "instruct_en/self_instruct/user_oriented_instructions.jsonl")),
        "mt_bench_fr": [turn for row in mt_bench["fr"] for turn in row["turns"]],
        "mt_bench_en": [turn for row in mt_bench["en"] for turn in row["turns"]],
        "hplt_fr": [r["prompt"] for r in read_jsonl(data / "benchmarks_fr/hplt_test/test_fr.jsonl")],
        "hplt_en": [r["prompt"] for r in read_jsonl(data / "benchmarks_fr/hplt_test/test_en.jsonl")],
    }


def false_detections(data: Path) -> dict[str, tuple[int, int, list[str]]]:
    """Per source: prompts, detections, and the detections that are not real requests (described)."""
    result = {}
    for source, prompts in prompts_without_ids(data).items():
        detections, false = 0, []
        for prompt in prompts:
            for bare, args in detect_instructions(prompt):
                detections += 1
                if not any(k[0] == source and prompt.startswith(k[1]) and k[2] == bare for k in REAL_REQUESTS):
                    false.append(f"{source} {bare} {args}\n    {prompt[:300]!r}")
        result[source] = (len(prompts), detections, false)
    return result


def statements(data: Path) -> dict[str, list[str]]:
    """Sentences that ask nothing: Leipzig news sentences (lingua) and STS-B test pairs, French and English."""
    found = {}
    for lang in ("fr", "en"):
        lingua = (data / f"langid/lingua_sentences/{lang}.txt").read_text(encoding="utf-8").splitlines()
        with (data / f"paraphrase_fr/stsb-{lang}-test.csv").open(encoding="utf-8") as rows:
            sts = [sentence for row in list(csv.reader(rows))[1:] for sentence in row[:2]]
        found[f"lingua_{lang}"], found[f"stsb_test_{lang}"] = lingua, sts
    return found


def verdicts(data: Path) -> dict[str, tuple[int, int, int]]:
    """Per answer file of M-IFEval (17 French models, gpt-4o in English): answers to prompts with detections,
    those that fail a detected constraint, and those of them that pass every gold instruction (an answer
    the stage would reject for a detection error)."""
    from frcorpus.stages.instructions.checks import build_check  # the checkers verify_instructions uses

    files = sorted((data / "instruct_fr/mifeval_fr_responses").glob("*.jsonl"))
    files += sorted((data / "instruct_en/ifeval_en_gpt4o").glob("*.jsonl"))
    gold = {}
    for language in ("fr", "en"):
        gold.update({r["prompt"]: r for r in read_jsonl(data / f"benchmarks_fr/mifeval/{language}_input_data.jsonl")})
    result = {}
    for path in files:
        answered = failing = only_detected = 0
        for row in read_jsonl(path):
            detected = detect_instructions(row["prompt"])
            if not detected:
                continue
            answered += 1
            if all(build_check(bare, args, row["prompt"])(row["response"]) for bare, args in detected):
                continue
            failing += 1
            known = gold[row["prompt"]]
            instructions = zip(known["instruction_id_list"], known["kwargs"], strict=True)
            only_detected += all(
                build_check(i, {k: v for k, v in args.items() if v is not None}, row["prompt"])(row["response"])
                for i, args in instructions
            )
        language, model = path.stem.split("_input_response_data_")
        result[f"{language} {model}"] = (answered, failing, only_detected)
    return result


def score(data: Path = SHARED) -> dict[str, dict[str, Counter]]:
    tables = {}
    for language in ("fr", "en"):
        rows = read_jsonl(data / f"benchmarks_fr/mifeval/{language}_input_data.jsonl")
        tables[language], _ = score_prompts(language, rows)
    return tables


def ratio(a: int, b: int) -> str:
    return f"{a / b:.3f}" if b else "-"


def _row(c: Counter) -> str:
    right = c["correct"] + c["gold_misses"]
    counts = [c["known"], c["detected"], c["correct"], c["gold_misses"], c["wrong"]]
    ratios = [ratio(right, c["detected"]), ratio(c["correct"], c["detected"]), ratio(c["correct"], c["known"])]
    return " ".join(f"{v:>6}" for v in [*counts, *ratios])


def print_table(title: str, table: dict[str, Counter]) -> None:
    print(f"\n{title}")
    columns = ("known", "det", "corr", "gold", "wrong", "prec", "strict", "recall")
    print(f"{'id':48} " + " ".join(f"{c:>6}" for c in columns))
    total: Counter = Counter()
    for bare, counts in table.items():
        total.update(counts)
        print(f"{bare:48} " + _row(counts))
    print(f"{'overall':48} " + _row(total))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--show-misses", action="store_true", help="list the known constraints not detected")
    parser.add_argument(
        "--verdicts", action="store_true", help="check M-IFEval's answers against the detected constraints (~1 min)"
    )
    args = parser.parse_args()
    both: dict[str, Counter] = {i: Counter() for i in IDS}
    for language in ("fr", "en"):
        rows = read_jsonl(args.data / f"benchmarks_fr/mifeval/{language}_input_data.jsonl")
        table, wrong = score_prompts(language, rows)
        print_table(f"M-IFEval {language} ({len(rows)} prompts)", table)
        for bare, c in table.items():
            both[bare].update(c)
        for line in wrong:
            print("  wrong:", line)
        if args.show_misses:
            for line in misses(rows):
                print("  missed:", line)
    print_table("M-IFEval fr + en", both)
    print("\nGold misses (the prompt asks for it; the gold leaves it out or has other kwargs):")
    for (language, key, bare), (kwargs, why) in sorted(GOLD_MISSES.items()):
        print(f"  {language} {key} {bare} {kwargs}: {why}")
    print("\nPrompts without instruction ids:")
    for source, (prompts, detections, false) in false_detections(args.data).items():
        print(f"  {source}: {prompts} prompts, {detections} detections, {len(false)} false")
        for line in false:
            print("   ", line)
    print("\nStatements (every detection is false):")
    for source, sentences in statements(args.data).items():
        found = [(bare, kwargs, s) for s in sentences for bare, kwargs in detect_instructions(s)]
        print(f"  {source}: {len(sentences)} sentences, {len(found)} detections")
        for bare, kwargs, sentence in found:
            print(f"    {bare} {kwargs}\n      {sentence[:300]!r}")
    if args.verdicts:
        print(
            "\nM-IFEval answers (answers to prompts with detections, failing a detection, of which passing the gold):"
        )
        for model, counts in verdicts(args.data).items():
            print(f"  {model}: {counts[0]} answers, {counts[1]} fail a detected constraint, {counts[2]} pass the gold")
    for (source, start, bare), why in REAL_REQUESTS.items():
        print(f"  real request in {source}: {bare} in {start!r}...: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
