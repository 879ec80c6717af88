"""What each arm of `recipe compare` trains on: its records, less those that hold an eval item (the leak
check, by frcorpus's decontaminate stage), counted in tokens as the SFT sees them, and cut to the budget.

- Leak check: the eval step's own item preparation writes the items of every local task
  (`<output_dir>/leak/data/<task>.jsonl`, the very items the models are scored on), and the decontaminate
  stage (n-grams; embeddings when installed) runs over each arm's records with those files as its
  benchmarks. Leaked records are removed and counted per task, or the run stops (`on_leak: fail`).
  It runs before the budget cut, so that arms stay equal after the removal.
- Tokens: each conversation rendered by the SFT's tokenizer and chat template, as TRL tokenizes it, then
  truncated as TRL does for the SFT's options (max_length; with bfd packing longer sequences are cut,
  with bfd_split or wrapped packing nothing is lost). A conversation whose answer lies wholly beyond
  max_length is dropped by TRL without packing, and here too.
- Budget: `budget.tokens`, or the smallest arm's total. Each arm takes its conversations in a seeded order
  (sha256 of the seed and the record id: the same records in the same order for the same data) and stops
  before the first that would exceed the budget.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..version.writer import atomic_write_bytes, atomic_write_text
from .dataset import DatasetVersion, read_conversations, resolve_dataset

logger = logging.getLogger(__name__)

# record columns read besides id and messages: the language the embedding method compares by
LANGUAGE_COLUMNS = ("langid", "source", "lineage")
SNIPPET = 160  # characters of a leaked record shown in messages and reports
CHECK_BATCH = 256


class CompareError(ValueError):
    """A comparison that cannot go on (a leak with on_leak: fail, a budget no arm can meet...)."""


# ----------------------------------------------------------------------------------- leak check


def eval_items(eval_config: Any, folder: Path) -> tuple[list[dict[str, Any]], dict[str, list[str]], dict[str, str]]:
    """The decontaminate benchmarks of the eval's local tasks, over the items the eval step itself samples and
    writes (under folder/data/); {benchmark: the tasks it stands for} (tasks on the same items, such as the
    M-IFEval generation tasks, are one benchmark: checked once, counted for each); and {task: why it is not
    checked} for the others (lm-eval tasks read their items from the Hub at run time)."""
    from .evaluate import data_root, prepare_tasks

    tasks = eval_config.resolved_tasks()
    root, _ = data_root(eval_config)
    info, _ = prepare_tasks(eval_config, tasks, root, folder)
    # A task on a held-out half of the M-IFEval prompts holds out the whole half, not only the `limit` items
    # it scores: the other half is the training half (the CPU ablation trains on it), so a record answering
    # any prompt of the evaluation half is a leak. Those pools are written apart (pool/data/), so that
    # folder/data/ keeps exactly the items the models are scored on.
    subsets = [replace(t, limit=None) for t in tasks if t.local is not None and t.prompts != "all"]
    pool_info = prepare_tasks(eval_config, subsets, root, folder / "pool")[0] if subsets else {}
    benchmarks: list[dict[str, Any]] = []
    members: dict[str, list[str]] = {}
    by_items: dict[str, str] = {}  # items_sha256 -> the benchmark that checks them
    unchecked: dict[str, str] = {}
    for t in tasks:
        entry = info[t.name]
        if t.local is None or "items" not in entry:
            unchecked[t.name] = "an lm-eval task: its items are not known before lm-eval downloads them"
            continue
        scored = entry.get("items_sha256")
        if scored in by_items:
            members[by_items[scored]].append(t.name)
            continue
        path = folder / "pool" / pool_info[t.name]["items"] if t.name in pool_info else folder / entry["items"]
        fields = _item_fields(path)
        if fields is None:
            unchecked[t.name] = f"{path}: no question or prompt field in its items"
            continue
        by_items[scored] = t.name
        members[t.name] = [t.name]
        benchmarks.append(
            {"name": t.name, "path": str(path), "format": "jsonl", "fields": fields, "language": t.local.lang}
        )
    return benchmarks, members, unchecked


def _item_fields(path: Path) -> dict[str, Any] | None:
    """Which fields of the task's items hold the question (MMLU and MGSM: `question`; the prompt otherwise:
    MMLU's `prompt` carries the few-shot examples too), the choices and a reference answer (a text)."""
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    prompt = next((f for f in ("question", "prompt") if isinstance(first.get(f), str | list)), None)
    if prompt is None:
        return None
    fields: dict[str, Any] = {"id": "id", "prompt": prompt}
    if isinstance(first.get("choices"), list):
        fields["choices"] = "choices"
    if isinstance(first.get("answer"), str):
        fields["answer"] = "answer"
    return fields


@dataclass(frozen=True)
class Leak:
    """A record removed for holding an eval item."""

    record: str
    task: str  # the task of its closest item (per_task counts every task it matches)
    reason: str  # decontaminate's: <task>.ngram, <task>.embedding...
    detail: str  # item=<id> overlap=<share> / cosine=<x>
    text: str  # the start of its first user turn

    def describe(self) -> str:
        return f"record {self.record} ({self.reason}, {self.detail}): {self.text!r}"


def leak_stage(options: dict[str, Any], methods: tuple[str, ...], benchmarks: list[dict[str, Any]]):
    """The decontaminate stage over the eval items, set up (None when no task has items to check)."""
    from ..stages.decontam import Decontaminate
    from .compare_config import leak_stage_config

    if not benchmarks:
        return None
    stage = Decontaminate(leak_stage_config(options, list(methods), benchmarks), "decontaminate")
    stage.setup()  # the indexes are kept for the process: one stage per arm costs nothing more
    return stage


def check_leaks(
    stage, records: list[dict[str, Any]], members: dict[str, list[str]]
) -> tuple[list[dict[str, Any]], list[Leak], dict[str, Any]]:
    """(the records without a leak, the leaks, per task: records that match its items and items matched)."""
    from ..stages.base import Reject

    stage.stats.counters.clear()
    kept, leaks = [], []
    names = [b.name for b in stage.config.benchmarks]
    for lo in range(0, len(records), CHECK_BATCH):
        batch = records[lo : lo + CHECK_BATCH]
        for record, verdict in zip(batch, stage.keep_batch(batch), strict=True):
            if isinstance(verdict, Reject):
                task = verdict.reason.rsplit(".", 1)[0]
                leaks.append(Leak(str(record.get("id")), task, verdict.reason, verdict.detail, _snippet(record)))
            else:
                kept.append(record)
    counters = stage.stats.counters
    per_task = {
        task: {
            "records": int(counters.get(f"{name}.records", 0)),
            "items": sum(1 for k in counters if k.startswith(f"{name}.item.")),
        }
        for name in names
        for task in members[name]
    }
    return kept, leaks, per_task


def _snippet(record: dict[str, Any]) -> str:
    text = next((m["content"] for m in record["messages"] if m["role"] == "user"), record["messages"][0]["content"])
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET else text[: SNIPPET - 1] + "…"


# ----------------------------------------------------------------------------------- tokens


def token_counter(base_folder: Path, chat_template: str, sft_args) -> Callable[[list[dict[str, str]]], int]:
    """The tokens the SFT trains on for one conversation (0: TRL would drop it), with its tokenizer, its chat
    template and its truncation (see the module docstring)."""
    from .sft import sft_tokenizer

    assistant_only = bool(sft_args.assistant_only_loss)
    tokenizer, _ = sft_tokenizer(base_folder, chat_template, assistant_only)
    max_length, packing = sft_args.max_length, bool(sft_args.packing)
    keeps_all = packing and sft_args.packing_strategy in ("bfd_split", "wrapped")
    window = slice(None, max_length) if sft_args.truncation_mode == "keep_start" else slice(-(max_length or 1), None)

    def count(messages: list[dict[str, str]]) -> int:
        out = tokenizer.apply_chat_template(
            messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=assistant_only
        )
        n = len(out["input_ids"])
        if max_length is None or keeps_all:
            return n
        if not packing and assistant_only and 1 not in out["assistant_masks"][window]:
            return 0  # truncation left no answer token: TRL drops the example
        return min(n, max_length)

    return count


# ----------------------------------------------------------------------------------- arms


@dataclass
class ArmPool:
    """One arm's records that can be trained on, after the leak check, with their tokens."""

    arm: str
    version: DatasetVersion
    records: list[dict[str, Any]]
    tokens: list[int]
    counts: dict[str, int]  # records (read), skipped_no_assistant, leaked, dropped_by_truncation, available
    leaks: list[Leak] = field(default_factory=list)
    leaks_per_task: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.tokens)


def arm_pool(arm: str, ref, stage, members: dict[str, list[str]], count: Callable, on_leak: str) -> ArmPool:
    """Read an arm's dataset, remove (or refuse) its leaked records, count the tokens of the others."""
    version = resolve_dataset(ref)
    records, counts = read_conversations(version, ref.max_records, LANGUAGE_COLUMNS)
    leaks: list[Leak] = []
    per_task: dict[str, dict[str, int]] = {}
    if stage is not None:
        records, leaks, per_task = check_leaks(stage, records, members)
        if leaks and on_leak == "fail":
            tasks = ", ".join(f"{t}: {c['records']}" for t, c in per_task.items() if c["records"])
            raise CompareError(
                f"arm {arm} ({version.name} {version.version}): {len(leaks)} records hold items of the eval tasks "
                f"({tasks}); for example {leaks[0].describe()}. leak_check.on_leak is fail: remove them from the "
                "dataset (a decontaminate stage against these benchmarks), or set on_leak: remove to leave them out"
            )
    tokens = [count(r["messages"]) for r in records]
    dropped = sum(1 for t in tokens if t == 0)
    kept = [(r, t) for r, t in zip(records, tokens, strict=True) if t > 0]
    counts = {
        "records": counts["records"],
        "skipped_no_assistant": counts["skipped_no_assistant"],
        "leaked": len(leaks),
        "dropped_by_truncation": dropped,
        "available": len(kept),
    }
    return ArmPool(arm, version, [r for r, _ in kept], [t for _, t in kept], counts, leaks, per_task)


def choose_budget(pools: dict[str, ArmPool], tokens: int | None) -> tuple[int, str]:
    """(the budget, where it comes from); every arm must hold it."""
    if tokens is None:
        smallest = min(pools.values(), key=lambda p: p.total)
        return smallest.total, f"the smallest arm's total: {smallest.arm}"
    short = [p for p in pools.values() if p.total < tokens]
    if short:
        p = short[0]
        raise CompareError(
            f"arm {p.arm} has {p.total} tokens to train on after the leak check, below budget.tokens {tokens}; "
            "lower budget.tokens, or leave it out to take the smallest arm's total"
        )
    return tokens, "budget.tokens"


@dataclass(frozen=True)
class Selection:
    indices: list[int]  # into the pool's records, in the seeded order
    tokens: int
    budget: int

    def figures(self, pool: ArmPool) -> dict[str, Any]:
        return {
            "records_used": len(self.indices),
            "tokens_used": self.tokens,
            "budget_gap": self.budget - self.tokens,
            "budget_share": round(self.tokens / self.budget, 6) if self.budget else None,
            "records_available": len(pool.records),
            "tokens_available": pool.total,
        }


def seeded_order(records: list[dict[str, Any]], seed: int) -> list[int]:
    """The records' order for the subsample: by sha256 of the seed and the record id (its position when it has
    none), so the same records in any file order give the same selection."""

    def key(i: int) -> str:
        rid = records[i].get("id")
        return hashlib.sha256(f"{seed}\x00{rid if rid is not None else f'#{i}'}".encode()).hexdigest()

    return sorted(range(len(records)), key=lambda i: (key(i), i))


def select(pool: ArmPool, budget: int, seed: int) -> Selection:
    """Whole conversations in the seeded order until the next one would exceed the budget."""
    order = seeded_order(pool.records, seed)
    chosen, used = [], 0
    for i in order:
        if used + pool.tokens[i] > budget:
            break
        chosen.append(i)
        used += pool.tokens[i]
    if not chosen:
        raise CompareError(
            f"arm {pool.arm}: its first conversation in the seeded order ({pool.records[order[0]].get('id')}) has "
            f"{pool.tokens[order[0]]} tokens, above the budget of {budget}; raise budget.tokens"
        )
    return Selection(chosen, used, budget)


def write_selection(pool: ArmPool, selection: Selection, folder: Path, seed: int) -> DatasetVersion:
    """The arm's training set as data/train-00000.parquet (id, messages) and selection.json under folder, and
    the DatasetVersion the SFT step reads it as: the arm's version, its selection described."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"id": str(pool.records[i].get("id")), "messages": pool.records[i]["messages"]} for i in selection.indices]
    digest = hashlib.sha256(json.dumps(rows, ensure_ascii=False, sort_keys=True).encode()).hexdigest()
    data = folder / "data" / "train-00000.parquet"
    summary_file = folder / "selection.json"
    previous = json.loads(summary_file.read_text(encoding="utf-8")) if summary_file.is_file() else {}
    if previous.get("sha256") != digest or not data.is_file():
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows), buffer)
        atomic_write_bytes(data, buffer.getvalue())
    selection_info = {
        "budget_tokens": selection.budget,
        "records": len(rows),
        "tokens": selection.tokens,
        "seed": seed,
        "sha256": digest,
    }
    summary = {
        **selection_info,
        "dataset": pool.version.describe(),
        "counts": pool.counts,
        **selection.figures(pool),
        "ids": [r["id"] for r in rows],
    }
    atomic_write_text(summary_file, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return replace(pool.version, folder=folder, files=[data], selection=selection_info)
