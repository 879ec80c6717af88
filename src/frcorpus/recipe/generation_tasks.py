"""The generation tasks on M-IFEval's prompts: `ifeval_fr`, `ifeval_en`, `fr_answer_rate`, `fr_answer_ok`.

One generation pass serves them all: the model answers each prompt once (greedy, through its chat
template), and the task's `process_results` scores that answer for instruction following (strict and
loose, per prompt and per instruction: `ifeval.score_response`) and, on the French prompts, for language
and quality (`answer_checks.judge_answer`: frcorpus's langid and heuristics stages). Generating is the
expensive part (a 135M model writes 8-20 tokens/s on two CPU cores), scoring takes milliseconds: so
`ifeval_fr`, `fr_answer_rate` and `fr_answer_ok` with the same prompts, limit and token budget are one
lm-eval task that reports six metrics, and each table row shows its own (evaluate groups them).

Instruction-level accuracies are means over instructions, not prompts: each document contributes the
list of its instructions' verdicts and the aggregation flattens them (IFEval's definition, as lm-eval's
own ifeval task aggregates them).

Prompt subsets: `prompts: first_half | second_half` takes one half of `ifeval.split_halves` (seeded by
eval.seed, stratified by first instruction id), so a model trained on the answers to one half is
evaluated on the other; `limit` then takes a seeded sample of that half, stratified the same way, and a
smaller limit takes a subset of a larger one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from . import ifeval
from .answer_checks import judge_answer
from .eval_tasks import IFEVAL_METRICS, in_memory_dataset, stratified_order

PromptSubset = Literal["all", "first_half", "second_half"]
PROMPT_SUBSETS: tuple[str, ...] = ("all", "first_half", "second_half")
ANSWER_METRICS = ("fr_answer_rate", "fr_answer_ok")


def prompt_file(root: Path, lang: str) -> Path:
    return ifeval.ifeval_file(root, lang)


# ----------------------------------------------------------------------------------- items


def seeded_sample(items: Sequence[Any], group: Callable[[Any], str], limit: int | None, seed: int) -> list[Any]:
    """The first `limit` items (all if None) of a seeded order stratified across groups (eval_tasks'
    stratified_order): a smaller limit takes a subset of a larger one."""
    by_group: dict[str, list[Any]] = defaultdict(list)
    for item in items:
        by_group[group(item)].append(item)
    order = stratified_order({g: len(rows) for g, rows in by_group.items()}, seed)
    return [by_group[g][i] for g, i in order[:limit]]


def first_instruction(item) -> str:
    return item.instruction_id_list[0]


def mifeval_prompts(root: Path, lang: str, prompts: PromptSubset, limit: int | None, seed: int) -> list:
    """The M-IFEval items (`ifeval.IfevalItem`) of one prompt subset, sampled to `limit`."""
    items = ifeval.load_ifeval_items(root, lang)
    if prompts != "all":
        first, second = ifeval.split_halves(items, seed)
        items = first if prompts == "first_half" else second
    return seeded_sample(items, first_instruction, limit, seed)


def generation_items(root: Path, lang: str, prompts: PromptSubset, limit: int | None, seed: int) -> list[dict]:
    """The evaluated prompts as written to data/<task>.jsonl: key, instructions and their arguments."""
    return [
        {
            "id": str(item.key),
            "key": item.key,
            "prompt": item.prompt,
            "instruction_id_list": list(item.instruction_id_list),
            "kwargs": [dict(k) for k in item.kwargs],
        }
        for item in mifeval_prompts(root, lang, prompts, limit, seed)
    ]


# ----------------------------------------------------------------------------------- scoring


def mean_over_instructions(per_prompt: list[list[bool]]) -> float:
    """Instruction-level accuracy: every instruction of every prompt counts once."""
    verdicts = [v for prompt in per_prompt for v in prompt]
    return sum(verdicts) / len(verdicts) if verdicts else 0.0


def score_answer(item, response: str, lang: str) -> dict[str, Any]:
    """The per-prompt metrics of one answer (lm-eval's process_results values)."""
    score = ifeval.score_response(item, response)
    metrics: dict[str, Any] = {
        "prompt_level_strict_acc": all(score.strict),
        "inst_level_strict_acc": list(score.strict),
        "prompt_level_loose_acc": all(score.loose),
        "inst_level_loose_acc": list(score.loose),
    }
    if lang == "fr":
        verdict = judge_answer(item.prompt, response)
        metrics |= {"fr_answer_rate": verdict.french, "fr_answer_ok": verdict.ok}
    return metrics


def answer_details(sample: dict[str, Any]) -> dict[str, Any]:
    """What samples/<model>/<task>.jsonl adds to each French answer: its language and why it fails
    fr_answer_rate / fr_answer_ok (null when it passes)."""
    doc, (response,) = sample["doc"], sample["filtered_resps"]
    verdict = judge_answer(doc["prompt"], response)
    return {"answer_lang": verdict.lang, "answer_reason": verdict.reason, "answer_detail": verdict.detail}


def metrics_of(lang: str) -> tuple[str, ...]:
    return IFEVAL_METRICS + (ANSWER_METRICS if lang == "fr" else ())


def generation_task(name: str, lang: str, items: list[dict], max_gen_toks: int) -> dict[str, Any]:
    """The lm-eval config of one generation pass over prepared items (generation_items). The prompt is the
    user turn of the model's chat template (evaluate requires eval.apply_chat_template for these tasks);
    generation is greedy and stops at the model's end of turn or after max_gen_toks tokens."""
    # the checkers get the items as ifeval defines them; the documents leave out the per-instruction
    # arguments, whose keys and types differ from row to row (a datasets column cannot hold them)
    by_key = {
        item["key"]: ifeval.IfevalItem(
            key=item["key"],
            prompt=item["prompt"],
            instruction_id_list=tuple(item["instruction_id_list"]),
            kwargs=tuple(item["kwargs"]),
        )
        for item in items
    }
    docs = [{k: item[k] for k in ("id", "key", "prompt", "instruction_id_list")} for item in items]

    def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
        return score_answer(by_key[doc["key"]], results[0], lang)

    def metric(m: str) -> dict[str, Any]:
        aggregation = mean_over_instructions if m.startswith("inst_level") else "mean"
        return {"metric": m, "aggregation": aggregation, "higher_is_better": True}

    return {
        "task": name,
        "custom_dataset": in_memory_dataset(docs),
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "prompt",
        "doc_to_target": "",
        "num_fewshot": 0,
        "generation_kwargs": {"until": [], "do_sample": False, "max_gen_toks": max_gen_toks},
        "process_results": process_results,
        "metric_list": [metric(m) for m in metrics_of(lang)],
        "metadata": {"version": 1.0},
    }
