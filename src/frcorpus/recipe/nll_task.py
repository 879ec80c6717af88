"""`fr_ref_nll`: how likely a model finds good French answers, a continuous metric that moves with small
data changes where accuracies on a 135M model do not. Lower is better.

Each item is a French prompt and a reference answer written by a strong model. lm-eval scores the answer
as the continuation of the prompt in the model's chat template, generation prompt included (a
loglikelihood request); the item's value is its total negative log-likelihood in nats and its token
count, and the task's value is the token-weighted mean: total NLL / total tokens over the items (a long
answer weighs by its length, as in a perplexity). The tokens are the ones lm-eval scores, counted with
the model's own tokenizer (`HFLM._encode_pair`); lm-eval moves the whitespace that ends the context (the
newline after ChatML's `<|im_start|>assistant`) into the continuation, so that token counts too.

References (`references:` of the task):
- `mt_bench` (default): GPT-4's answers to the first turn of the 80 French MT-Bench questions
  (`instruct_fr/mt_bench_fr_reference/gpt-4.jsonl`, questions in `benchmarks_fr/mt_bench/question_fr.jsonl`,
  joined by question_id); `limit` samples them stratified across MT-Bench's eight categories.
- `mifeval:<model>`: one model's published answers to the French M-IFEval prompts
  (`instruct_fr/mifeval_fr_responses/fr_input_response_data_<model>.jsonl`, joined by prompt text), on
  the prompt subset of `prompts:` (e.g. the held-out half) as the generation tasks take it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .eval_tasks import EvalDataError, in_memory_dataset, jsonl_objects
from .generation_tasks import PromptSubset, mifeval_prompts, seeded_sample

MT_BENCH = "mt_bench"
MIFEVAL_PREFIX = "mifeval:"
RESPONSES_DIR = Path("instruct_fr") / "mifeval_fr_responses"
RESPONSES_PREFIX = "fr_input_response_data_"
METRIC = "fr_ref_nll"


def mt_bench_files(root: Path) -> tuple[Path, Path]:
    """(French questions, GPT-4's French reference answers)."""
    return (
        root / "benchmarks_fr" / "mt_bench" / "question_fr.jsonl",
        root / "instruct_fr" / "mt_bench_fr_reference" / "gpt-4.jsonl",
    )


def responses_file(root: Path, model: str) -> Path:
    return root / RESPONSES_DIR / f"{RESPONSES_PREFIX}{model}.jsonl"


def response_models(root: Path) -> list[str]:
    """The models whose M-IFEval answers are in the shared data, for messages."""
    folder = root / RESPONSES_DIR
    return sorted(p.stem.removeprefix(RESPONSES_PREFIX) for p in folder.glob(f"{RESPONSES_PREFIX}*.jsonl"))


def references_problem(references: str) -> str | None:
    """Why a `references:` value is not one, or None."""
    if references == MT_BENCH or (references.startswith(MIFEVAL_PREFIX) and references != MIFEVAL_PREFIX):
        return None
    return (
        f"unknown references {references!r}; use {MT_BENCH} (GPT-4's MT-Bench answers) or "
        f"{MIFEVAL_PREFIX}<model> (a model's M-IFEval answers, e.g. {MIFEVAL_PREFIX}gpt-4o-2024-08-06)"
    )


def reference_files(root: Path, references: str) -> list[Path]:
    """The files fr_ref_nll reads besides the M-IFEval prompts (check_eval reports the missing ones)."""
    if references == MT_BENCH:
        return list(mt_bench_files(root))
    return [responses_file(root, references.removeprefix(MIFEVAL_PREFIX))]


def _jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    if not path.is_file():
        raise EvalDataError(f"{path}: file not found; set eval.data_dir or FRCORPUS_SHARED_DATA")
    return jsonl_objects(path)


def mt_bench_references(root: Path, limit: int | None, seed: int) -> list[dict[str, Any]]:
    questions_path, answers_path = mt_bench_files(root)
    questions = {}
    for where, row in _jsonl(questions_path):
        try:
            questions[row["question_id"]] = (row["category"], row["turns"][0].strip())
        except (KeyError, IndexError, TypeError):
            raise EvalDataError(
                f"{where}: expected {{question_id, category, turns: [...]}}; restore the file"
            ) from None
    items = []
    for where, row in _jsonl(answers_path):
        try:
            qid, answer = row["question_id"], row["choices"][0]["turns"][0]
        except (KeyError, IndexError, TypeError):
            raise EvalDataError(
                f"{where}: expected {{question_id, choices: [{{turns: [...]}}]}}; restore the file"
            ) from None
        if qid not in questions:
            raise EvalDataError(f"{where}: question_id {qid} is not in {questions_path}")
        category, prompt = questions[qid]
        items.append({"id": str(qid), "category": category, "prompt": prompt, "answer": answer})
    return seeded_sample(items, lambda item: item["category"], limit, seed)


def mifeval_references(
    root: Path, model: str, prompts: PromptSubset, limit: int | None, seed: int
) -> list[dict[str, Any]]:
    path = responses_file(root, model)
    answers = {}
    for where, row in _jsonl(path):
        if not isinstance(row.get("prompt"), str) or not isinstance(row.get("response"), str):
            raise EvalDataError(f"{where}: expected {{prompt, response}} strings; restore the file")
        answers[row["prompt"]] = row["response"]
    items = []
    for item in mifeval_prompts(root, "fr", prompts, limit, seed):
        answer = answers.get(item.prompt)
        if answer is None:
            raise EvalDataError(f"{path}: no answer to M-IFEval prompt {item.key} ({item.prompt[:60]!r})")
        if answer.strip():  # an empty answer has no token to score
            items.append({"id": str(item.key), "key": item.key, "prompt": item.prompt, "answer": answer})
    return items


def nll_items(root: Path, references: str, prompts: PromptSubset, limit: int | None, seed: int) -> list[dict[str, Any]]:
    """The (prompt, reference answer) items, as written to data/fr_ref_nll.jsonl."""
    if references == MT_BENCH:
        return mt_bench_references(root, limit, seed)
    return mifeval_references(root, references.removeprefix(MIFEVAL_PREFIX), prompts, limit, seed)


# ----------------------------------------------------------------------------------- lm-eval


def token_weighted_mean(per_item: list[tuple[float, int]]) -> float:
    """Total NLL over total tokens."""
    tokens = sum(n for _, n in per_item)
    return sum(nll for nll, _ in per_item) / tokens if tokens else float("nan")


def chat_continuation_tokens(lm) -> Callable[[str, str], int]:
    """How many tokens lm-eval's `hf` model scores for an answer to a prompt: the same chat template call
    and the same split into context and continuation tokens as its loglikelihood requests."""

    def count(prompt: str, answer: str) -> int:
        context = lm.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True)
        return len(lm._encode_pair(context, answer)[1])

    return count


def nll_task(name: str, items: list[dict[str, Any]], count_tokens: Callable[[str, str], int]) -> dict[str, Any]:
    """The lm-eval config of fr_ref_nll over prepared items; `count_tokens(prompt, answer)` is the model's
    (chat_continuation_tokens), so the task is built once per model."""

    def process_results(doc: dict[str, Any], results: list[tuple[float, bool]]) -> dict[str, Any]:
        loglikelihood, _ = results[0]
        return {METRIC: (-loglikelihood, count_tokens(doc["prompt"], doc["answer"]))}

    return {
        "task": name,
        "custom_dataset": in_memory_dataset(items),
        "test_split": "test",
        "output_type": "loglikelihood",
        "doc_to_text": "prompt",
        "doc_to_target": "answer",
        "target_delimiter": "",  # the chat template's generation prompt ends the context
        "num_fewshot": 0,
        "process_results": process_results,
        "metric_list": [{"metric": METRIC, "aggregation": token_weighted_mean, "higher_is_better": False}],
        "metadata": {"version": 1.0},
    }


def nll_details(sample: dict[str, Any]) -> dict[str, Any]:
    """Per item in samples/<model>/fr_ref_nll.jsonl: total NLL (nats), tokens, and their ratio."""
    nll, tokens = sample[METRIC]
    return {"nll": nll, "tokens": tokens, "nll_per_token": nll / tokens if tokens else None}
