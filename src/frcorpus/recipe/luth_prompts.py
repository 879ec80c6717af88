"""Prompts and scoring of the Luth suite's six benchmarks (the tasks are in luth_tasks.py), as Luth's own
evaluation defines them: kurakurai/Luth, `src/eval/prompts.py` and `src/eval/tasks.py` (lighteval custom
tasks, run zero-shot through the chat template with the system prompt "Vous êtes un assistant utile.").

Each benchmark has a `docs` function (lm-eval's `process_docs`: a benchmark row gets its `prompt` and its
gold `answer` or `gold` index) and, when the model generates its answer, a `score` function (lm-eval's
`process_results`). The prompts are Luth's, word for word; where the scoring is not lighteval's, the
difference is named here:

- IFEval-fr: the instruction ids are IFEval's English ones, so the answers are checked by lm-eval's own
  English IFEval checkers (`ifeval.score_response` with `en:` ids), strict and loose, as lighteval's
  `ifeval_metrics` checks them with its copy of the same checkers.
- GPQA-diamond-fr: Luth places the correct answer at a random position (`random.randint`, unseeded); here
  the position comes from a hash of the question, so every run and every model sees the same order. The
  letter is read from the last "Réponse : X" line (lighteval: its French extractive match).
- MATH-500-fr: the last `\\boxed{...}` of the answer against the last one of the reference solution, both
  normalised by lm-eval's `hendrycks_math` `is_equiv` (lighteval compares them with sympy, which accepts
  more equivalent forms: scores here can be a little lower).
- MMLU-fr: lighteval's French multiple-choice template (`Question: ...`, ` A. ...` options, `Réponse:`),
  scored on the log-likelihood of the letter (acc; lighteval's PMI-normalised variant is not reproduced).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from ..stages.instructions.checks import known_instruction
from . import ifeval
from .eval_tasks import INVALID, LETTERS, EvalDataError
from .generation_tasks import score_answer

SYSTEM_PROMPT = "Vous êtes un assistant utile."

GPQA_INSTRUCTION = (
    "Répondez à la question à choix multiple suivante. La dernière ligne de votre réponse doit avoir le format "
    "suivant : 'Réponse : $LETTRE' (sans les guillemets) où LETTRE est l'une de A, B, C ou D. Réfléchissez étape "
    "par étape avant de répondre."
)
MATH_INSTRUCTION = (
    "Résous le problème de mathématiques suivant de manière efficace et claire. La dernière ligne de ta réponse "
    "doit être au format suivant : 'Donc, la réponse finale est : $\\boxed{RÉPONSE}$. J’espère que c’est correct' "
    "(sans les guillemets), où RÉPONSE est simplement le nombre ou l’expression qui résout le problème. Raisonne "
    "étape par étape avant de répondre."
)
ARC_KEYS = ("A", "B", "C", "D", "E")
HELLASWAG_HEADER = "Voici une série de questions à choix multiples (avec réponses) pour évaluer le bon sens.\n\n"

# "Réponse : B", "réponse finale : (B)", "**Réponse :** B", "Answer: B": the last one counts; the letter is a
# capital (a lower-case "c'est B" after "Réponse :" is no answer C)
ANSWER_LETTER = re.compile(r"(?:r[ée]ponse(?: finale)?|answer)\s*\**\s*:\s*\**\s*\(?((?-i:[ABCD]))\b", re.IGNORECASE)
LONE_LETTER = re.compile(r"^\W*\(?([ABCD])\)?\W*$")  # a last line that is only a letter


def with_fields(dataset, make):
    """The dataset with the fields `make(row, index)` returns added to each row (lm-eval's process_docs)."""
    return dataset.map(make, with_indices=True)


# ----------------------------------------------------------------------------------- IFEval-fr


def ifeval_item(doc: dict[str, Any]) -> ifeval.IfevalItem:
    """A row of IFEval-fr as frcorpus's IFEval scorer takes it: IFEval's English ids get the `en:` prefix."""
    return ifeval.IfevalItem(
        key=int(doc.get("key") or 0),
        prompt=doc["prompt"],
        instruction_id_list=tuple(f"en:{i}" for i in doc["instruction_id_list"]),
        kwargs=tuple(dict(k or {}) for k in doc["kwargs"]),
    )


def ifeval_docs(dataset):
    """The rows as they are, once every instruction id is known to lm-eval's English checkers (an unknown one
    would fail the run after generating every answer: it fails here, naming the row)."""
    for index, row in enumerate(dataset):
        unknown = [i for i in row["instruction_id_list"] if not known_instruction("en", f"en:{i}")]
        if unknown:
            raise EvalDataError(
                f"row {index} (key {row.get('key')}): instruction id {unknown[0]!r} has no checker in lm-eval's "
                "IFEval; IFEval-fr rows carry IFEval's English ids"
            )
    return dataset


def ifeval_score(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    return score_answer(ifeval_item(doc), results[0], "en")


# ----------------------------------------------------------------------------------- GPQA-diamond-fr


def gpqa_gold(question: str) -> int:
    """Where the correct answer goes among the four: fixed by the question's text."""
    return int(hashlib.sha256(question.encode("utf-8")).hexdigest(), 16) % 4


def gpqa_prompt(row: dict[str, Any]) -> tuple[str, str]:
    """Luth's GPQA-fr prompt (simple-evals' template, in French) and the letter of the correct answer."""
    gold = gpqa_gold(row["problem"])
    choices = [row["Incorrect Answer 1"], row["Incorrect Answer 2"], row["Incorrect Answer 3"]]
    choices.insert(gold, row["Correct Answer"])
    options = "\n".join(f"{letter}) {choice}" for letter, choice in zip(LETTERS, choices, strict=True))
    return f"{GPQA_INSTRUCTION}\n\n{row['problem']}\n\n{options}", LETTERS[gold]


def gpqa_docs(dataset):
    def make(row, _index):
        prompt, answer = gpqa_prompt(row)
        return {"prompt": prompt, "answer": answer}

    return with_fields(dataset, make)


def answer_letter(response: str) -> str:
    """The letter a GPQA answer chose: the last "Réponse : X" (or "Answer: X"), else a last line that is only
    a letter; INVALID if neither."""
    marked = ANSWER_LETTER.findall(response)
    if marked:
        return marked[-1]
    lines = [line for line in response.strip().splitlines() if line.strip()]
    lone = LONE_LETTER.match(lines[-1]) if lines else None
    return lone.group(1) if lone else INVALID


def gpqa_score(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    return {"exact_match": answer_letter(results[0]) == doc["answer"]}


# ----------------------------------------------------------------------------------- MMLU-fr


def capitalize(text: str) -> str:
    """lighteval's template: stripped, first letter upper case, the rest as written."""
    text = text.strip()
    return text[:1].upper() + text[1:]


def mmlu_prompt(row: dict[str, Any]) -> str:
    """lighteval's French multiple-choice (MCF) template, the one Luth's mmlu_fr task uses."""
    options = "\n".join(f" {letter}. {capitalize(str(row[letter]))}" for letter in LETTERS)
    return f"Question: {capitalize(row['Question'])}\n{options}\nRéponse:"


def mmlu_docs(dataset):
    def make(row, index):
        answer = str(row["Answer"]).strip()
        if answer not in LETTERS:
            raise EvalDataError(f"row {index}: Answer is {row['Answer']!r}, not one of {', '.join(LETTERS)}")
        return {"prompt": mmlu_prompt(row), "gold": LETTERS.index(answer)}

    return with_fields(dataset, make)


# ----------------------------------------------------------------------------------- MATH-500-fr


def boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} (or \\fbox{...}) of a text, None if it has none."""
    from lm_eval.tasks.hendrycks_math.utils import last_boxed_only_string, remove_boxed

    last = last_boxed_only_string(text)
    if last is None:
        return None
    try:
        return remove_boxed(last)
    except AssertionError:  # "\\fbox{...}" and unbalanced forms remove_boxed does not take
        return None


def math_docs(dataset):
    def make(row, index):
        answer = boxed(row["solution"]) or (row.get("answer") or None)
        if answer is None:
            raise EvalDataError(f"row {index}: its solution has no \\boxed{{...}} answer (and the row no `answer`)")
        return {"prompt": f"{MATH_INSTRUCTION}\n\n{row['problem']}", "answer": answer}

    return with_fields(dataset, make)


def math_score(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    from lm_eval.tasks.hendrycks_math.utils import is_equiv

    predicted = boxed(results[0])
    return {"exact_match": predicted is not None and bool(is_equiv(predicted, doc["answer"]))}


# ----------------------------------------------------------------------------------- ARC-Challenge-fr


def arc_docs(dataset):
    """Luth's prompt (its "Answer:" in English, as written there); the choices are scored as they are."""

    def make(row, index):
        key = str(row["answerKey"]).strip()
        if key not in ARC_KEYS:
            raise EvalDataError(f"row {index}: answerKey is {row['answerKey']!r}, not one of {', '.join(ARC_KEYS)}")
        return {"prompt": f"Question: {row['question']}\nAnswer:", "gold": ARC_KEYS.index(key)}

    return with_fields(dataset, make)


# ----------------------------------------------------------------------------------- HellaSwag-fr


def hellaswag_prompt(row: dict[str, Any]) -> str:
    """Luth's prompt: the context (its second part through Python's str.capitalize, as Luth writes it), the
    endings lettered, then "Réponse:"; the model answers with one token, the letter."""
    endings = "".join(f"{letter}. {ending}\n" for letter, ending in zip("ABCDEFGH", row["endings"], strict=False))
    return f"{HELLASWAG_HEADER}Question: {row['ctx_a']} {row['ctx_b'].capitalize()}\n{endings}Réponse:"


def hellaswag_docs(dataset):
    def make(row, index):
        label = str(row["label"]).strip()
        if not label.isdigit() or int(label) >= len(row["endings"]):
            raise EvalDataError(f"row {index}: label is {row['label']!r}, not the index of one of its endings")
        return {"prompt": hellaswag_prompt(row), "answer": "ABCDEFGH"[int(label)]}

    return with_fields(dataset, make)


def letter_score(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    """lighteval's exact match with stripped strings: the generated letter, as it is."""
    return {"exact_match": results[0].strip() == doc["answer"]}
