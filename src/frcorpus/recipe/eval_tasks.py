"""frcorpus's local benchmark tasks for lm-evaluation-harness, read from the shared benchmark files, never
from the Hub: MMLU-FR and MGSM-fr (with their row-aligned English versions) here; the generation tasks on
M-IFEval's prompts (`ifeval_fr`, `ifeval_en`, `fr_answer_rate`, `fr_answer_ok`: generation_tasks.py) and
`fr_ref_nll` (nll_task.py) are registered here too.

The items are sampled here (seeded, stratified across MMLU subjects, nested: a smaller limit takes a prefix
of a larger one), turned into finished prompts, and handed to lm-eval as task config dicts whose
`custom_dataset` returns the items in memory: no `datasets` cache, no network, and the exact prompts are
written to `<out>/data/<task>.jsonl` beside the results. lm-eval does the rest (batching, log-likelihoods or
generation, filters, metrics and their standard errors).

Few-shot examples are part of the prompt built here (lm-eval's own sampler draws from the whole split,
while MMLU's convention is the first rows of the same subject's dev file), so lm-eval runs these tasks
with `num_fewshot: 0`.
"""

from __future__ import annotations

import csv
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from ..jsonl import jsonl_objects as read_jsonl

BENCHMARKS = "benchmarks_fr"
LETTERS = ("A", "B", "C", "D")
MMLU_DEV_ROWS = 5  # each subject's dev file holds five rows: MMLU's few-shot examples
INVALID = "[invalid]"  # what the number filter returns when a response holds no number (lm-eval's convention)


class EvalError(ValueError):
    """An evaluation that cannot run as configured (unknown task, missing files or model folders)."""


class EvalDataError(EvalError):
    """A benchmark file that is missing or does not have the expected format."""


@dataclass(frozen=True)
class LocalTask:
    """`family`: how items are read and scored (mmlu, mgsm; ifeval: an answer generated per M-IFEval prompt;
    nll: reference answers scored by likelihood); `metrics`: what it reports, the first shown by default."""

    name: str
    family: Literal["mmlu", "mgsm", "ifeval", "nll"]
    lang: Literal["fr", "en"]
    description: str
    metrics: tuple[str, ...]

    @property
    def instruct(self) -> bool:
        """Prompts an instruct model through its chat template, zero-shot (the tasks of issue 19)."""
        return self.family in ("ifeval", "nll")

    @property
    def generates(self) -> bool:
        return self.family in ("mgsm", "ifeval")

    def required(self, root: Path) -> Path:
        """The file or folder whose absence check_eval reports (MMLU: the test folder; MGSM: the TSV)."""
        if self.family == "mmlu":
            return mmlu_dir(root, self.lang, "test")
        return mgsm_file(root, self.lang)

    def pattern(self, root: Path) -> str:
        """What the task reads, as a path with a glob, for messages."""
        if self.family == "mmlu":
            return str(mmlu_dir(root, self.lang, "test") / f"*{mmlu_suffix(self.lang, 'test')}")
        return str(mgsm_file(root, self.lang))


IFEVAL_METRICS = ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc")

LOCAL_TASKS: dict[str, LocalTask] = {
    t.name: t
    for t in (
        LocalTask(
            "mmlu_fr", "mmlu", "fr", "MMLU-FR (OpenNMT translation), 4 choices, scored on the answer letter", ("acc",)
        ),
        LocalTask("mmlu_en", "mmlu", "en", "MMLU (English), the same rows as mmlu_fr", ("acc",)),
        LocalTask(
            "mgsm_fr", "mgsm", "fr", "MGSM French, generated answer, exact match on the final number", ("exact_match",)
        ),
        LocalTask("mgsm_en", "mgsm", "en", "MGSM English, the same rows as mgsm_fr", ("exact_match",)),
        LocalTask(
            "ifeval_fr",
            "ifeval",
            "fr",
            "M-IFEval French prompts, generated answer, instructions checked (strict and loose, per prompt and "
            "per instruction)",
            IFEVAL_METRICS,
        ),
        LocalTask("ifeval_en", "ifeval", "en", "M-IFEval English prompts (IFEval), as ifeval_fr", IFEVAL_METRICS),
        LocalTask(
            "fr_answer_rate",
            "ifeval",
            "fr",
            "share of answers to M-IFEval French prompts in French (or in the language the prompt asks for), "
            "judged by frcorpus's langid stage",
            ("fr_answer_rate",),
        ),
        LocalTask(
            "fr_answer_ok",
            "ifeval",
            "fr",
            "share of answers to M-IFEval French prompts that pass frcorpus's langid and heuristics stages "
            "(no repetition loop, not truncated, no boilerplate...)",
            ("fr_answer_ok",),
        ),
        LocalTask(
            "fr_ref_nll",
            "nll",
            "fr",
            "negative log-likelihood per token of reference French answers under the chat template "
            "(total NLL / total tokens; lower is better)",
            ("fr_ref_nll",),
        ),
    )
}

PROMPTS = {
    "fr": {
        "mmlu_header": "Les questions suivantes sont des questions à choix multiples (avec leurs réponses).\n\n",
        "question": "Question : ",
        "answer": "Réponse :",
    },
    "en": {
        "mmlu_header": "The following are multiple choice questions (with answers).\n\n",
        "question": "Question: ",
        "answer": "Answer:",
    },
}
# Generation stops where a next question would start, and (without a chat template: the prompt asks for
# the answer directly, as lm-eval's mgsm_direct does) at a blank line; lm-eval adds the end-of-sequence token.
MGSM_UNTIL = ["Question :", "Question:"]
MGSM_UNTIL_DIRECT = [*MGSM_UNTIL, "\n\n"]


# ----------------------------------------------------------------------------------- files


def benchmarks_dir(root: Path) -> Path:
    return root / BENCHMARKS


def mmlu_dir(root: Path, lang: str, split: Literal["test", "dev"]) -> Path:
    return root / BENCHMARKS / "mmlu" / ("MMLU-FR" if lang == "fr" else "MMLU") / "data" / split


def mmlu_suffix(lang: str, split: str) -> str:
    # MMLU-FR/data/test/anatomy_test.fr.csv is row-aligned with MMLU/data/test/anatomy_test.csv
    return f"_{split}.fr.csv" if lang == "fr" else f"_{split}.csv"


def mgsm_file(root: Path, lang: str) -> Path:
    return root / BENCHMARKS / "mgsm" / f"mgsm_{lang}.tsv"


def read_mmlu(root: Path, lang: str, split: Literal["test", "dev"]) -> dict[str, list[dict[str, Any]]]:
    """{subject: rows} from one MMLU folder; a row is {question, choices, answer (0-3)}."""
    folder, suffix = mmlu_dir(root, lang, split), mmlu_suffix(lang, split)
    files = sorted(folder.glob(f"*{suffix}"))
    if not files:
        raise EvalDataError(f"{folder}: no *{suffix} files; set eval.data_dir or FRCORPUS_SHARED_DATA")
    subjects: dict[str, list[dict[str, Any]]] = {}
    for path in files:
        rows = []
        with path.open(encoding="utf-8", newline="") as f:
            for line, row in enumerate(csv.reader(f), 1):
                if len(row) != 6 or row[5].strip() not in LETTERS:
                    raise EvalDataError(
                        f"{path}:{line}: expected 6 CSV fields (question, 4 choices, answer letter A-D), "
                        f"got {len(row)} ending {row[-1:]!r}; restore the file from the MMLU release"
                    )
                rows.append({"question": row[0], "choices": row[1:5], "answer": LETTERS.index(row[5].strip())})
        subjects[path.name[: -len(suffix)]] = rows
    return subjects


def jsonl_objects(path: Path) -> Iterator[tuple[str, dict]]:
    """Each non-blank line of a JSONL file as (`file:line`, object); EvalDataError naming the line of one
    that is not a JSON object."""
    return read_jsonl(path, EvalDataError)


def read_mgsm(root: Path, lang: str) -> list[dict[str, str]]:
    """Rows {question, answer} of mgsm_<lang>.tsv, the answer as a canonical number string."""
    path = mgsm_file(root, lang)
    if not path.is_file():
        raise EvalDataError(f"{path}: file not found; set eval.data_dir or FRCORPUS_SHARED_DATA")
    rows = []
    for line, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not text.strip():
            continue
        parts = text.split("\t")
        answer = canonical_number(parts[1]) if len(parts) == 2 else None
        if answer is None:
            raise EvalDataError(f"{path}:{line}: expected 'question<TAB>number', got {text[:60]!r}")
        rows.append({"question": parts[0], "answer": answer})
    return rows


# ----------------------------------------------------------------------------------- sampling


def stratified_order(counts: dict[str, int], seed: int) -> list[tuple[str, int]]:
    """Every (subject, row) once, in an order whose every prefix is spread evenly across subjects: round k
    takes the k-th row of each subject's seeded shuffle, subjects in a seeded order per round. The first N
    items are then a stratified sample of N, and a smaller N takes a subset of a larger one."""
    rng = random.Random(seed)
    subjects = sorted(counts)
    shuffled = {}
    for s in subjects:
        rows = list(range(counts[s]))
        rng.shuffle(rows)
        shuffled[s] = rows
    order: list[tuple[str, int]] = []
    for k in range(max(counts.values(), default=0)):
        round_subjects = [s for s in subjects if k < counts[s]]
        rng.shuffle(round_subjects)
        order += [(s, shuffled[s][k]) for s in round_subjects]
    return order


def mmlu_items(root: Path, lang: str, limit: int | None, seed: int, num_fewshot: int) -> list[dict[str, Any]]:
    """The sampled MMLU rows with their prompts; the selection depends only on the row counts per subject,
    so mmlu_fr and mmlu_en (row-aligned files) get the same rows for the same limit and seed."""
    subjects = read_mmlu(root, lang, "test")
    dev = read_mmlu(root, lang, "dev") if num_fewshot else {}
    order = stratified_order({s: len(rows) for s, rows in subjects.items()}, seed)
    items = []
    for subject, row in order[:limit]:
        doc = subjects[subject][row]
        shots = dev.get(subject, [])[:num_fewshot]
        if len(shots) < num_fewshot:
            raise EvalDataError(
                f"{mmlu_dir(root, lang, 'dev') / (subject + mmlu_suffix(lang, 'dev'))}: {len(shots)} rows for "
                f"{num_fewshot} few-shot examples; lower num_fewshot (at most {MMLU_DEV_ROWS})"
            )
        items.append(
            {
                "id": f"{subject}/{row}",
                "subject": subject,
                "question": doc["question"],
                "choices": doc["choices"],
                "answer": doc["answer"],
                "prompt": mmlu_prompt(doc, shots, lang),
            }
        )
    return items


def mgsm_items(root: Path, lang: str, limit: int | None, seed: int, num_fewshot: int) -> list[dict[str, Any]]:
    """Seeded sample of MGSM rows (the same rows in both languages); few-shot examples (question and final
    number) come from the end of the same order, so they are never among the evaluated items."""
    rows = read_mgsm(root, lang)
    order = [row for _, row in stratified_order({"mgsm": len(rows)}, seed)]
    n = len(rows) if limit is None else min(limit, len(rows))
    if n + num_fewshot > len(rows):
        raise EvalDataError(
            f"{mgsm_file(root, lang)}: {n} items + {num_fewshot} few-shot examples exceed its {len(rows)} rows; "
            "lower limit or num_fewshot"
        )
    shots = [rows[i] for i in order[len(order) - num_fewshot :]] if num_fewshot else []
    return [
        {
            "id": str(i),
            "question": rows[i]["question"],
            "answer": rows[i]["answer"],
            "prompt": mgsm_prompt(rows[i], shots, lang),
        }
        for i in order[:n]
    ]


# ----------------------------------------------------------------------------------- prompts


def mmlu_question(doc: dict[str, Any], lang: str) -> str:
    p = PROMPTS[lang]
    options = "".join(f"\n{letter}. {choice}" for letter, choice in zip(LETTERS, doc["choices"], strict=True))
    return f"{p['question']}{doc['question'].strip()}{options}\n{p['answer']}"


def mmlu_prompt(doc: dict[str, Any], shots: list[dict[str, Any]], lang: str) -> str:
    """Header, then each example with its letter, then the question ending in 'Réponse :' (lm-eval adds ' A')."""
    examples = "".join(f"{mmlu_question(s, lang)} {LETTERS[s['answer']]}\n\n" for s in shots)
    return PROMPTS[lang]["mmlu_header"] + examples + mmlu_question(doc, lang)


def mgsm_prompt(doc: dict[str, Any], shots: list[dict[str, Any]], lang: str) -> str:
    p = PROMPTS[lang]
    examples = "".join(f"{p['question']}{s['question'].strip()}\n{p['answer']} {s['answer']}\n\n" for s in shots)
    return f"{examples}{p['question']}{doc['question'].strip()}\n{p['answer']}"


# ----------------------------------------------------------------------------------- MGSM answers

# A number: digits grouped by (no-break) spaces as in French ("1 234"), or plain digits, then any run of
# '.' or ',' groups ("1,234.5", "1.234,5", "3,75"); not glued to a preceding word, digit or separator.
NUMBER = re.compile(r"(?<![\w.,])-?(?:\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?!\d)|\d+)(?:[.,]\d+)*")
# Where a response announces its answer: GSM8K's "####", or "la réponse (finale) est" / "the answer is".
ANSWER_MARK = re.compile(r"####|r[ée]ponse(?: finale)?(?: est| :|:)|answer(?: is|:)", re.IGNORECASE)


def canonical_number(text: str) -> str | None:
    """One number written the French or the English way, as a plain decimal string ("1 234,50" -> "1234.5",
    "2,125" -> "2125", "3,75" -> "3.75"); None if `text` is not one number. With both '.' and ',' the last is
    the decimal mark; a lone separator followed by exactly three digits groups thousands (MGSM's French file
    writes 2,125 for 2125 and its answers are integers), otherwise it is the decimal mark."""
    s = text.strip().rstrip(".")
    if not re.fullmatch(r"-?(?:\d{1,3}(?:[ \u00a0\u202f]\d{3})+|\d+)(?:[.,]\d+)*", s):
        return None
    s = re.sub(r"[ \u00a0\u202f]", "", s)
    seps = [c for c in s if c in ".,"]
    if len(set(seps)) == 2:
        decimal = seps[-1]
        s = s.replace("," if decimal == "." else ".", "").replace(",", ".")
    elif len(seps) > 1:
        s = s.replace(seps[0], "")
    elif len(seps) == 1:
        whole, frac = re.split(r"[.,]", s)
        s = whole + frac if len(frac) == 3 and whole.lstrip("-") not in ("", "0") else f"{whole}.{frac}"
    try:
        value = Decimal(s)
    except InvalidOperation:
        return None
    out = format(value.normalize(), "f")
    return "0" if out in ("-0", "0") else out


def extract_number(response: str) -> str:
    """The answer of a generated MGSM response as canonical_number gives it: the first number after the last
    answer marker ("####", "La réponse est", "The answer is"), else the last number; INVALID if none."""
    marks = list(ANSWER_MARK.finditer(response))
    if marks:
        found = NUMBER.search(response, marks[-1].end())
        if found:
            return canonical_number(found.group()) or INVALID
    numbers = NUMBER.findall(response)
    return (canonical_number(numbers[-1]) or INVALID) if numbers else INVALID


def number_filter(resps: list[list[str]], docs: list[dict]) -> list[list[str]]:
    """lm-eval `custom` filter: every response of every document reduced to its final number."""
    return [[extract_number(r) for r in rs] for rs in resps]


# ----------------------------------------------------------------------------------- lm-eval task dicts


def in_memory_dataset(items: list[dict[str, Any]]) -> Callable[..., Any]:
    """lm-eval's `custom_dataset`: the prepared items as the test split, built in memory."""

    def load(**_: Any):  # lm-eval passes the task's metadata as keyword arguments
        import datasets

        return datasets.DatasetDict({"test": datasets.Dataset.from_list(items)})

    return load


def lm_eval_task(task: LocalTask, items: list[dict[str, Any]], max_gen_toks: int, chat: bool = False) -> dict[str, Any]:
    """The lm-eval task config of a local task over prepared items (their `prompt` is the whole context);
    `chat`: prompts go through the model's chat template, so generation ends at its end of turn."""
    common = {
        "task": task.name,
        "custom_dataset": in_memory_dataset(items),
        "test_split": "test",
        "doc_to_text": "prompt",
        "doc_to_target": "answer",
        "target_delimiter": " ",
        "num_fewshot": 0,  # the examples are already in the prompt
        "metadata": {"version": 1.0},
    }
    if task.family == "mmlu":
        # The choices are single letters, so acc_norm (length-normalised) would always equal acc.
        return common | {
            "output_type": "multiple_choice",
            "doc_to_choice": list(LETTERS),
            "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        }
    return common | {
        "output_type": "generate_until",
        "generation_kwargs": {
            "until": MGSM_UNTIL if chat else MGSM_UNTIL_DIRECT,
            "do_sample": False,
            "max_gen_toks": max_gen_toks,
        },
        "filter_list": [
            {
                "name": "number",
                "filter": [{"function": "custom", "filter_fn": number_filter}, {"function": "take_first"}],
            }
        ],
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
    }


def local_items(task: LocalTask, root: Path, limit: int | None, seed: int, num_fewshot: int) -> list[dict[str, Any]]:
    make = mmlu_items if task.family == "mmlu" else mgsm_items
    return make(root, task.lang, limit, seed, num_fewshot)
