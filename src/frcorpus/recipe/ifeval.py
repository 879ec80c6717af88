"""IFEval scoring for frcorpus: the M-IFEval French prompts (`ifeval_fr`) and the IFEval English prompts
(`ifeval_en`), read from `<root>/benchmarks_fr/mifeval/<lang>_input_data.jsonl`, their answers checked
instruction by instruction, strict and loose, at the prompt and the instruction level.

Strict and loose are IFEval's (Zhou et al. 2023): strict checks the answer as written (an empty or blank
answer follows nothing); loose also tries it without its first line, without its last line, without
both, and each of those with every `*` removed, and an instruction passes if any version does. A prompt
is followed when all its instructions are.

The checks of one instruction are the `verify_instructions` stage's (`frcorpus.stages.instructions`): the
French checkers are frcorpus's own (`checkers.py`); the English ones are lm-evaluation-harness's own IFEval
checkers (`lm_eval.tasks.ifeval`), imported, with Punkt's English tables provided offline first
(`text.use_offline_punkt`: lm-eval would otherwise call `nltk.download`). This module keeps the benchmark:
its items, the scoring of an answer file, the summaries and the halves.

`score_responses_file` scores a JSONL of `{prompt, response}` (joined to the benchmark by prompt text)
into `items.jsonl` and `summary.json`: what `frcorpus recipe score` runs.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..stages.instructions.checks import build_check, known_instruction, loose_versions
from ..version.writer import atomic_write_text
from .eval_tasks import BENCHMARKS, EvalDataError, jsonl_objects

IFEVAL_LANGS = ("fr", "en")


@dataclass(frozen=True)
class IfevalItem:
    key: int
    prompt: str
    instruction_id_list: tuple[str, ...]
    kwargs: tuple[dict, ...]


@dataclass(frozen=True)
class ItemScore:
    key: int
    instruction_id_list: tuple[str, ...]
    strict: tuple[bool, ...]  # one per instruction
    loose: tuple[bool, ...]


def ifeval_file(root: Path, lang: str) -> Path:
    return Path(root) / BENCHMARKS / "mifeval" / f"{lang}_input_data.jsonl"


# ---------------------------------------------------------------------------------- items


def load_ifeval_items(root: Path, lang: str) -> list[IfevalItem]:
    """The benchmark's items in file order; every instruction id known and its kwargs accepted by its
    checker, or an EvalDataError naming the file and line."""
    if lang not in IFEVAL_LANGS:
        raise EvalDataError(f"IFEval language {lang!r} is not one of {', '.join(IFEVAL_LANGS)}")
    path = ifeval_file(root, lang)
    if not path.is_file():
        raise EvalDataError(f"{path}: IFEval benchmark file not found (set --data-dir or FRCORPUS_SHARED_DATA)")
    items: list[IfevalItem] = []
    keys: dict[int, str] = {}
    for where, row in jsonl_objects(path):
        item = _parse_item(row, where)
        if item.key in keys:
            raise EvalDataError(f"{where}: key {item.key} is already the key of {keys[item.key]}")
        keys[item.key] = where
        for instruction_id, kwargs in zip(item.instruction_id_list, item.kwargs, strict=True):
            if not known_instruction(lang, instruction_id):
                raise EvalDataError(f"{where}: unknown instruction id {instruction_id!r} (no {lang} checker)")
            try:
                build_check(instruction_id, kwargs, item.prompt)
            except (TypeError, ValueError) as e:
                raise EvalDataError(f"{where}: {instruction_id} does not take kwargs {kwargs}: {e}") from None
        items.append(item)
    if not items:
        raise EvalDataError(f"{path}: no items")
    return items


def _parse_item(row: dict, where: str) -> IfevalItem:
    missing = [k for k in ("key", "prompt", "instruction_id_list", "kwargs") if k not in row]
    if missing:
        raise EvalDataError(f"{where}: missing {', '.join(missing)}")
    ids, kwargs = row["instruction_id_list"], row["kwargs"]
    if not (isinstance(row["key"], int) and isinstance(row["prompt"], str) and row["prompt"].strip()):
        raise EvalDataError(f"{where}: key must be an integer and prompt a non-empty string")
    if not (isinstance(ids, list) and ids and all(isinstance(i, str) for i in ids)):
        raise EvalDataError(f"{where}: instruction_id_list must be a non-empty list of strings")
    if not (isinstance(kwargs, list) and len(kwargs) == len(ids) and all(isinstance(k, dict) for k in kwargs)):
        raise EvalDataError(f"{where}: kwargs must be a list of {len(ids)} objects, one per instruction")
    return IfevalItem(row["key"], row["prompt"], tuple(ids), tuple(kwargs))


# ---------------------------------------------------------------------------------- scoring


def score_response(item: IfevalItem, response: str) -> ItemScore:
    """Strict and loose verdicts of one answer, one per instruction of the item."""
    others = [v for v in loose_versions(response)[1:] if v.strip()]  # a blank version follows nothing
    strict, loose = [], []
    for instruction_id, kwargs in zip(item.instruction_id_list, item.kwargs, strict=True):
        check = build_check(instruction_id, kwargs, item.prompt)
        followed = bool(response.strip()) and bool(check(response))
        strict.append(followed)
        loose.append(followed or any(check(v) for v in others))
    return ItemScore(item.key, item.instruction_id_list, tuple(strict), tuple(loose))


def summarize(scores: Sequence[ItemScore]) -> dict:
    """Prompt- and instruction-level accuracy, strict and loose, and per instruction id."""
    if not scores:
        raise ValueError("no scores to summarize")
    per_id: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "strict": 0, "loose": 0})
    for score in scores:
        for instruction_id, strict, loose in zip(score.instruction_id_list, score.strict, score.loose, strict=True):
            counts = per_id[instruction_id]
            counts["n"] += 1
            counts["strict"] += strict
            counts["loose"] += loose
    n_instructions = sum(c["n"] for c in per_id.values())
    return {
        "prompt_level_strict_acc": sum(all(s.strict) for s in scores) / len(scores),
        "inst_level_strict_acc": sum(c["strict"] for c in per_id.values()) / n_instructions,
        "prompt_level_loose_acc": sum(all(s.loose) for s in scores) / len(scores),
        "inst_level_loose_acc": sum(c["loose"] for c in per_id.values()) / n_instructions,
        "n_prompts": len(scores),
        "n_instructions": n_instructions,
        "per_instruction": {
            i: {"n": c["n"], "strict": c["strict"] / c["n"], "loose": c["loose"] / c["n"]}
            for i, c in sorted(per_id.items())
        },
    }


# ---------------------------------------------------------------------------------- halves


def split_halves(items: Sequence[IfevalItem], seed: int) -> tuple[list[IfevalItem], list[IfevalItem]]:
    """Two halves of the items, stratified by each item's first instruction id: within an id, the items
    are shuffled (random.Random(seed), ids taken in sorted order) and dealt half and half; an odd one out
    goes to the smaller half so far (a seeded coin on a tie). Each half keeps the benchmark order."""
    rng = random.Random(seed)
    by_first_id: dict[str, list[int]] = defaultdict(list)
    for position, item in enumerate(items):
        by_first_id[item.instruction_id_list[0]].append(position)
    halves: tuple[list[int], list[int]] = ([], [])
    for instruction_id in sorted(by_first_id):
        positions = by_first_id[instruction_id]
        rng.shuffle(positions)
        middle = len(positions) // 2
        if len(positions) % 2:
            smaller = len(halves[0]) - len(halves[1])
            first_takes_extra = smaller < 0 or (smaller == 0 and rng.random() < 0.5)
            middle += first_takes_extra
        halves[0].extend(positions[:middle])
        halves[1].extend(positions[middle:])
    return [items[p] for p in sorted(halves[0])], [items[p] for p in sorted(halves[1])]


# ---------------------------------------------------------------------------------- a responses file


def read_responses(path: Path, items: Sequence[IfevalItem]) -> dict[int, str]:
    """The answers of a `{prompt, response}` JSONL by item key, joined on the prompt text (surrounding
    whitespace aside). A null response is an empty answer."""
    by_prompt = {item.prompt.strip(): item.key for item in items}
    answers: dict[int, str] = {}
    lines: dict[int, str] = {}
    if not path.is_file():
        raise EvalDataError(f"{path}: responses file not found")
    for where, row in jsonl_objects(path):
        if not (isinstance(row.get("prompt"), str) and "response" in row):
            raise EvalDataError(f"{where}: expected an object with a string `prompt` and a `response`")
        response = row["response"]
        if not isinstance(response, str | None):
            raise EvalDataError(f"{where}: `response` must be a string (or null), got {type(response).__name__}")
        key = by_prompt.get(row["prompt"].strip())
        if key is None:
            raise EvalDataError(f"{where}: prompt matches no benchmark prompt: {row['prompt'][:80]!r}")
        if key in lines:
            raise EvalDataError(f"{where}: a second answer to the prompt of {lines[key]} (item {key})")
        lines[key] = where
        answers[key] = response or ""
    return answers


def score_responses_file(lang: str, responses: Path, out_dir: Path, root: Path) -> dict:
    """Score every benchmark prompt's answer (a prompt without one is scored as an empty answer, which
    follows nothing, and counted as `missing`); write `out_dir/items.jsonl` (benchmark order: key,
    instruction_id_list, strict, loose) and `out_dir/summary.json`; return the summary."""
    responses = Path(responses)
    items = load_ifeval_items(root, lang)
    answers = read_responses(responses, items)
    scores = [score_response(item, answers.get(item.key, "")) for item in items]
    summary = {
        "task": f"ifeval_{lang}",
        "benchmark": str(ifeval_file(root, lang)),
        "responses": str(responses),
        "responses_sha256": hashlib.sha256(responses.read_bytes()).hexdigest(),
        "missing": sum(item.key not in answers for item in items),
        **summarize(scores),
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = (
        {
            "key": s.key,
            "instruction_id_list": list(s.instruction_id_list),
            "strict": list(s.strict),
            "loose": list(s.loose),
        }
        for s in scores
    )
    atomic_write_text(out_dir / "items.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return summary
