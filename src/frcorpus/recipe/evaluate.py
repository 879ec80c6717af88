"""The recipe's evaluation step: base, SFT and merged models on French (and aligned English) benchmarks.

Harness: lm-evaluation-harness (`lm-eval` 0.4.13), not lighteval. Both were checked beside the training
stack (torch 2.13 CPU, transformers 5.23, TRL 1.16, MergeKit 0.1.5): lm-eval installs with no downgrade
and few new packages, while lighteval 0.13 pulls about sixty more (inspect_ai, boto3, textual, ...).
lm-eval also takes task configs as Python dicts, so frcorpus's local benchmarks need no YAML files.

Tasks are either frcorpus's local ones (`eval_tasks.LOCAL_TASKS`: MMLU-FR, MGSM-fr and their row-aligned
English versions; the instruct tasks on M-IFEval's prompts and fr_ref_nll, read from `<data_dir>`, offline)
or any task name that lm-eval registers (`belebele_fra_Latn`, `french_bench`, ...: those download their data
from the Hub). Each model folder is loaded once through lm-eval's `hf` model and evaluated with
`lm_eval.simple_evaluate`; the step writes `results.json`, `results.md` (a table: rows tasks, columns
models) and `results.png` (grouped bars, drawn deterministically like the dataset card's plots), plus the
evaluated items (`data/<task>.jsonl`) and every model's per-item outputs (`samples/<model>/<task>.jsonl`).
The generation tasks on the same M-IFEval prompts share one generation pass (generation_tasks.py).
"""

from __future__ import annotations

import difflib
import functools
import gc
import hashlib
import json
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer

from ..resources import package_version
from ..settings import shared_data_dir
from ..version.writer import atomic_write_bytes, atomic_write_text
from .eval_checks import GENERATION_TASKS, INSTRUCT_TASKS, MIFEVAL_TASKS, missing_files, option_problems
from .eval_report import results_markdown, results_png
from .eval_results import task_scores, write_samples
from .eval_tasks import (
    LOCAL_TASKS,
    MMLU_DEV_ROWS,
    EvalDataError,
    EvalError,
    LocalTask,
    benchmarks_dir,
    lm_eval_task,
    local_items,
)
from .generation_tasks import PromptSubset, answer_details, generation_items, generation_task
from .generation_tasks import prompt_file as mifeval_file
from .luth_tasks import LUTH_MAX_GEN_TOKS, LUTH_NAMES, is_luth, luth_members, luth_problems
from .nll_task import (
    MIFEVAL_PREFIX,
    MT_BENCH,
    chat_continuation_tokens,
    nll_details,
    nll_items,
    nll_task,
    reference_files,
)

__all__ = ["EvalConfig", "EvalDataError", "EvalError", "TaskSpec", "check_eval", "run_eval"]

logger = logging.getLogger(__name__)

TRAIN_HINT = "pip install 'frcorpus[train]'"
DEFAULT_DATA = Path("..") / "shared" / "data"
VERSIONED = ("frcorpus", "lm_eval", "transformers", "torch")  # recorded in results.json


class TaskSpec(BaseModel):
    """One benchmark, with optional settings of its own (a bare name in `tasks:` takes the eval defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        min_length=1,
        description=f"a local task ({', '.join(LOCAL_TASKS)}), a Luth task ({', '.join(LUTH_NAMES)}; GPU runs) "
        "or an lm-eval task name (needs the Hub)",
    )
    limit: int | None = Field(
        None, ge=1, description="items for this task (default: eval.limit; null here: the whole benchmark)"
    )
    num_fewshot: int | None = Field(
        None,
        ge=0,
        description=f"few-shot examples for this task (default: eval.num_fewshot; 0 for {INSTRUCT_TASKS})",
    )
    metric: str | None = Field(
        None,
        description="the metric shown in the table and plot (default: the task's first, e.g. acc, exact_match, "
        "prompt_level_strict_acc)",
    )
    prompts: PromptSubset | None = Field(
        None,
        description=f"which M-IFEval prompts ({MIFEVAL_TASKS}, and fr_ref_nll with mifeval references): all "
        "(default), or first_half / second_half of the seeded split stratified by instruction type (seed: "
        "eval.seed); limit then samples within it",
    )
    references: str | None = Field(
        None,
        description=f"fr_ref_nll's reference answers: {MT_BENCH} (default: GPT-4's answers to the French MT-Bench "
        f"questions) or {MIFEVAL_PREFIX}<model> (that model's answers to the M-IFEval French prompts, e.g. "
        f"{MIFEVAL_PREFIX}gpt-4o-2024-08-06)",
    )
    max_gen_toks: int | None = Field(
        None, ge=1, description=f"new tokens at most per answer of this task ({GENERATION_TASKS}; default: eval's)"
    )
    path: str | None = Field(
        None,
        description="a Luth task's local copy, read offline: a folder downloaded with `hf download <repo> "
        "--repo-type dataset --revision <sha> --local-dir <folder>`, or a .jsonl/.parquet/.csv file of its rows; "
        "for luth_fr, a folder holding one copy per dataset at <path>/<repo> (default: the Hub)",
    )
    revision: str | None = Field(
        None, description="the Hub commit a Luth task reads (default: the one frcorpus pins, where it pins one)"
    )

    @model_serializer(mode="wrap")
    def _without_unset_sources(self, handler):
        # path and revision came after runs whose state keys hash this dump: left out when unset, those keys hold
        dumped = handler(self)
        return {k: v for k, v in dumped.items() if k not in ("path", "revision") or v is not None}


class EvalConfig(BaseModel):
    """The recipe's `eval:` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tasks: list[TaskSpec] = Field(
        default_factory=lambda: [TaskSpec(name=n) for n in ("mmlu_fr", "mmlu_en", "mgsm_fr")],
        min_length=1,
        description="task names, or mappings {name, limit, num_fewshot, metric, prompts, references, "
        "max_gen_toks}: frcorpus's local tasks "
        f"({', '.join(LOCAL_TASKS)}) or any lm-eval task (e.g. belebele_fra_Latn, downloaded from the Hub)",
    )
    limit: int | None = Field(
        None,
        ge=1,
        description="items per task (null: all). Local tasks take a seeded sample stratified across MMLU "
        "subjects, the same rows in French and English; lm-eval tasks take their first N items",
    )
    num_fewshot: int = Field(
        0,
        ge=0,
        description=f"few-shot examples (MMLU: the first rows of the subject's dev file, at most {MMLU_DEV_ROWS})",
    )
    batch_size: int = Field(8, ge=1, description="lm-eval batch size")
    device: str = Field("auto", description="auto (cuda if available, else mps, else cpu), cpu, cuda, cuda:N or mps")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="weights dtype (auto: as saved in the model folder). bfloat16 halves the time on CPUs "
        "with AVX512-BF16 and on GPUs",
    )
    models: list[Literal["base", "sft", "merged"]] = Field(
        default_factory=lambda: ["base", "sft", "merged"],
        min_length=1,
        description="the models to evaluate, in table order",
    )
    data_dir: str | None = Field(
        None,
        description="the folder that holds benchmarks_fr/ (default: $FRCORPUS_SHARED_DATA, else ../shared/data "
        "relative to the working directory)",
    )
    seed: int = Field(0, description="seeds the item sample and lm-eval's random, numpy and torch seeds")
    max_gen_toks: int = Field(
        256, ge=1, description="new tokens at most per generated answer (MGSM, M-IFEval; greedy decoding)"
    )
    apply_chat_template: bool = Field(
        False,
        description="wrap each prompt in the model's chat template (instruct models), as lm-eval does; "
        f"required by {INSTRUCT_TASKS}",
    )
    bootstrap_iters: int = Field(
        1000, ge=0, description="lm-eval bootstrap iterations for the stderr of non-mean metrics (0: none)"
    )

    @field_validator("tasks", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("tasks")
    @classmethod
    def _unique_tasks(cls, value: list[TaskSpec]) -> list[TaskSpec]:
        names = [t.name for t in value]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"task {dup[0]!r} is listed twice; keep one entry per task")
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value):
            raise ValueError(f"unknown device {value!r}; use auto, cpu, cuda, cuda:N (a GPU index) or mps")
        return value

    @field_validator("models")
    @classmethod
    def _unique_models(cls, value: list[str]) -> list[str]:
        dup = sorted({n for n in value if value.count(n) > 1})
        if dup:
            raise ValueError(f"model {dup[0]!r} is listed twice; keep one entry per model")
        return value

    def resolved_tasks(self) -> list[ResolvedTask]:
        """Each task with the eval-level defaults filled in."""
        resolved = []
        for t in self.tasks:
            local = LOCAL_TASKS.get(t.name)
            luth = is_luth(t.name)  # Luth's suite is zero-shot too, with its own token budget
            zero_shot = (local is not None and local.instruct) or luth  # eval.num_fewshot: for those that take it
            resolved.append(
                ResolvedTask(
                    name=t.name,
                    limit=t.limit if "limit" in t.model_fields_set else self.limit,
                    num_fewshot=t.num_fewshot if t.num_fewshot is not None else 0 if zero_shot else self.num_fewshot,
                    metric=t.metric,
                    local=local,
                    prompts=t.prompts or "all",
                    references=t.references or (MT_BENCH if local is not None and local.family == "nll" else None),
                    max_gen_toks=t.max_gen_toks or (LUTH_MAX_GEN_TOKS if luth else self.max_gen_toks),
                    path=t.path,
                    revision=t.revision,
                )
            )
        return resolved


@dataclass(frozen=True)
class ResolvedTask:
    name: str
    limit: int | None
    num_fewshot: int
    metric: str | None
    local: LocalTask | None
    prompts: PromptSubset = "all"
    references: str | None = None
    max_gen_toks: int = 256
    path: str | None = None  # a Luth task's local copy
    revision: str | None = None  # the Hub commit a Luth task reads

    @property
    def reads_mifeval(self) -> bool:
        """Takes M-IFEval's prompts, so `prompts:` applies."""
        if self.local is None:
            return False
        return self.local.family == "ifeval" or (
            self.local.family == "nll" and self.references is not None and self.references.startswith(MIFEVAL_PREFIX)
        )


def data_root(cfg: EvalConfig) -> tuple[Path, str]:
    """The folder holding benchmarks_fr/, and where that setting came from (for messages)."""
    if cfg.data_dir is not None:
        return Path(cfg.data_dir).expanduser().absolute(), "eval.data_dir"
    shared = shared_data_dir()
    if shared is not None:
        return shared.absolute(), "FRCORPUS_SHARED_DATA"
    return DEFAULT_DATA.absolute(), "the default ../shared/data"


@functools.cache
def lm_eval_task_names() -> frozenset[str]:
    """Every task, group and tag name that the installed lm-eval registers (indexing takes a few seconds)."""
    from lm_eval.tasks import TaskManager

    return frozenset(TaskManager().all_tasks)


# ----------------------------------------------------------------------------------- checks


def check_eval(cfg: EvalConfig) -> list[tuple[tuple, str]]:
    """Problems found without running anything, as (path inside the eval section, message): unknown task
    names (with the closest known name), local benchmark files that are missing, impossible few-shot
    counts. Empty when the section can run."""
    problems: list[tuple[tuple, str]] = []
    tasks = cfg.resolved_tasks()
    others = [(i, t) for i, t in enumerate(tasks) if t.local is None and not is_luth(t.name)]
    if others:
        try:
            known = lm_eval_task_names()
        except ImportError:
            problems.append((("tasks",), f"lm-eval tasks need the lm-eval package; install it with: {TRAIN_HINT}"))
            others, known = [], frozenset()
        for i, t in others:
            if t.name not in known:
                close = difflib.get_close_matches(t.name, [*LOCAL_TASKS, *LUTH_NAMES, *sorted(known)], n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}?" if close else "`lm-eval ls tasks` lists lm-eval's tasks"
                problems.append(
                    (
                        ("tasks", i),
                        f"unknown task {t.name!r}: neither a local task ({', '.join(LOCAL_TASKS)}) nor an "
                        f"lm-eval task; {hint}",
                    )
                )
    for i, t in enumerate(tasks):
        problems += option_problems(i, cfg.tasks[i], t)
    problems += luth_problems(cfg.tasks, tasks, cfg.apply_chat_template)
    local = [(i, t) for i, t in enumerate(tasks) if t.local is not None]
    instruct = [t.name for _, t in local if t.local.instruct]
    if instruct and not cfg.apply_chat_template:
        problems.append(
            (
                ("apply_chat_template",),
                f"{', '.join(instruct)} prompt an instruct model through its chat template; "
                "set eval.apply_chat_template: true",
            )
        )
    if local:
        root, origin = data_root(cfg)
        fix = "set eval.data_dir or FRCORPUS_SHARED_DATA to the folder that holds benchmarks_fr/"
        if not benchmarks_dir(root).is_dir():
            names = ", ".join(t.name for _, t in local)
            where = ("data_dir",) if cfg.data_dir is not None else ("tasks",)
            problems.append((where, f"{root} (from {origin}) has no benchmarks_fr/ folder, which {names} read; {fix}"))
        else:
            for i, t in local:
                problems += [(("tasks", i), message) for message in missing_files(t, root, fix)]
    return problems


# ----------------------------------------------------------------------------------- running


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class _DropCustomDatasetHint(logging.Filter):
    """lm-eval warns about --metadata for every task with a custom_dataset: noise for frcorpus's tasks."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Custom kwargs can be passed" not in record.getMessage()


@contextmanager
def _quiet_lm_eval() -> Iterator[None]:
    target = logging.getLogger("lm_eval.api.task")
    hint = _DropCustomDatasetHint()
    target.addFilter(hint)
    try:
        yield
    finally:
        target.removeFilter(hint)


def run_eval(cfg: EvalConfig, models: dict[str, Path], out_dir: Path, *, title: str, context: dict) -> dict:
    """Evaluate each model folder (label -> local transformers folder, in table order) on every task with
    lm-eval, write out_dir/results.json, results.md and results.png, and return what results.json holds."""
    problems = check_eval(cfg)
    if problems:
        raise EvalError("; ".join(f"eval.{'.'.join(map(str, path))}: {message}" for path, message in problems))
    folders = {}
    for label, folder in models.items():
        folder = Path(folder).absolute()  # an absolute path never passes for a Hub repo id: no network lookup
        if not (folder / "config.json").is_file():
            raise EvalError(f"model {label!r}: {folder} is not a transformers model folder (no config.json)")
        folders[label] = folder
    if not folders:
        raise EvalError("no model to evaluate; pass at least one folder (eval.models)")
    try:
        import lm_eval
        from lm_eval.api.registry import get_model
        from lm_eval.tasks import TaskManager
    except ImportError as e:
        raise EvalError(f"recipe eval needs lm-eval ({e}); install it with: {TRAIN_HINT}") from None

    out_dir = Path(out_dir)
    tasks = cfg.resolved_tasks()
    root, _ = data_root(cfg)
    task_info, calls = prepare_tasks(cfg, tasks, root, out_dir)
    # Indexing lm-eval's ~15k task files takes seconds: skip it when every task is local or Luth's (configs).
    manager = TaskManager(include_defaults=any(t.local is None and not is_luth(t.name) for t in tasks))
    device = resolve_device(cfg.device)

    scores: dict[str, dict[str, dict[str, Any]]] = {}
    model_info: dict[str, dict[str, Any]] = {}
    for label, folder in folders.items():
        started = time.perf_counter()
        logger.info("eval: loading %s from %s on %s", label, folder, device)
        lm = get_model("hf").create_from_arg_obj(
            {"pretrained": str(folder), "dtype": cfg.dtype}, {"batch_size": cfg.batch_size, "device": device}
        )
        for call in calls:
            names = ", ".join(call["names"])
            logger.info("eval: %s on %s", label, names)
            with _quiet_lm_eval():
                out = lm_eval.simple_evaluate(
                    model=lm,
                    tasks=[task(lm) if callable(task) else task for task in call["tasks"]],
                    limit=call["limit"],
                    num_fewshot=call["num_fewshot"],
                    device=device,
                    batch_size=cfg.batch_size,
                    log_samples=True,
                    apply_chat_template=cfg.apply_chat_template,
                    fewshot_as_multiturn=cfg.apply_chat_template,
                    task_manager=manager,
                    bootstrap_iters=cfg.bootstrap_iters,
                    random_seed=cfg.seed,
                    numpy_random_seed=cfg.seed,
                    torch_random_seed=cfg.seed,
                    fewshot_random_seed=cfg.seed,
                )
            for name in call["names"]:
                info = task_info[name]
                for row, score in task_scores(out, info.get("generation", name), info["metric"]).items():
                    if info["source"] == "frcorpus":
                        row = name  # a row of a shared generation pass reads that pass's lm-eval task
                        score["num_fewshot"] = info["num_fewshot"]  # lm-eval saw 0-shot: examples are in the prompt
                    scores.setdefault(row, {})[label] = score
            write_samples(out, out_dir / "samples" / label, call["details"], call["copies"])
        model_info[label] = {"path": str(folder), "seconds": round(time.perf_counter() - started, 1)}
        logger.info("eval: %s done in %.1f s", label, model_info[label]["seconds"])
        del lm
        _free_memory(device)

    results = {
        "title": title,
        "context": {str(k): v if isinstance(v, (str, int, float, bool)) else str(v) for k, v in context.items()},
        "harness": f"lm-eval {package_version('lm_eval')}",
        "models": model_info,
        "tasks": list(task_info.values()),
        "scores": scores,
        "settings": {**cfg.model_dump(mode="json", exclude={"tasks"}), "device": device, "data_dir": str(root)},
        "versions": {p: package_version(p) or "not installed" for p in VERSIONED},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "results.json", json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(out_dir / "results.md", results_markdown(results))
    atomic_write_bytes(out_dir / "results.png", results_png(results))
    logger.info("eval: results in %s", out_dir)
    return results


def prepare_tasks(
    cfg: EvalConfig, tasks: list[ResolvedTask], root: Path, out_dir: Path
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Sample and write the local tasks' items; group the tasks into simple_evaluate calls (all local tasks
    in one, lm-eval tasks by their limit and few-shot count, which simple_evaluate takes per call).

    The M-IFEval generation tasks with the same language, prompts, limit and token budget are one lm-eval
    task (one generation pass) named after the first of them; the others read their row from it and get a
    copy of its samples. fr_ref_nll's lm-eval task is made per model (it counts tokens with the model's
    tokenizer): the call holds a function of the loaded model."""
    info: dict[str, dict[str, Any]] = {}
    local_call: dict[str, Any] = {
        "names": [],
        "tasks": [],
        "limit": None,
        "num_fewshot": None,
        "details": {},  # lm-eval task -> what its samples add per item
        "copies": {},  # lm-eval task -> the other tasks its samples are written for
    }
    generation_runs: dict[tuple, str] = {}
    hub_calls: dict[tuple, dict[str, Any]] = {}
    for t in tasks:
        entry: dict[str, Any] = {"name": t.name, "limit": t.limit, "num_fewshot": t.num_fewshot}
        info[t.name] = entry
        if t.local is None:
            entry |= {"source": "lm-eval", "description": f"lm-eval task {t.name}", "metric": t.metric}
            call = hub_calls.setdefault(
                (t.limit, t.num_fewshot),
                {"names": [], "tasks": [], "limit": t.limit, "num_fewshot": t.num_fewshot, "details": {}, "copies": {}},
            )
            for name, task, about in luth_members(t) if is_luth(t.name) else [(t.name, t.name, {})]:
                info[name] = entry | about
                if task is not None:  # luth_fr has an entry of its own; its rows are its six tasks'
                    call["names"].append(name)
                    call["tasks"].append(task)
            continue
        local = t.local
        local_call["names"].append(t.name)
        entry |= {"source": "frcorpus", "description": local.description, "metric": t.metric or local.metrics[0]}
        if local.family == "ifeval":
            items = generation_items(root, local.lang, t.prompts, t.limit, cfg.seed)
            entry |= {"prompts": t.prompts, "max_gen_toks": t.max_gen_toks}
            entry["files"] = str(mifeval_file(root, local.lang))
            run = generation_runs.setdefault((local.lang, t.prompts, t.limit, t.max_gen_toks), t.name)
            entry["generation"] = run  # the lm-eval task whose answers this row scores
            if run == t.name:
                local_call["tasks"].append(generation_task(t.name, local.lang, items, t.max_gen_toks))
                if local.lang == "fr":
                    local_call["details"][t.name] = answer_details
            else:
                local_call["copies"].setdefault(run, []).append(t.name)
        elif local.family == "nll":
            items = nll_items(root, t.references, t.prompts, t.limit, cfg.seed)
            files = ([mifeval_file(root, "fr")] if t.reads_mifeval else []) + reference_files(root, t.references)
            entry |= {"references": t.references, "files": ", ".join(map(str, files))}
            if t.reads_mifeval:
                entry["prompts"] = t.prompts
            local_call["tasks"].append(
                lambda lm, name=t.name, items=items: nll_task(name, items, chat_continuation_tokens(lm))
            )
            local_call["details"][t.name] = nll_details
        else:
            items = local_items(local, root, t.limit, cfg.seed, t.num_fewshot)
            entry["files"] = local.pattern(root)
            if local.generates:
                entry["max_gen_toks"] = t.max_gen_toks
            local_call["tasks"].append(lm_eval_task(local, items, t.max_gen_toks, cfg.apply_chat_template))
        if not items:
            raise EvalError(f"{t.name}: no items in {entry['files']}")
        entry |= {"n": len(items), **_write_items(out_dir, t.name, items)}
    calls = ([local_call] if local_call["names"] else []) + list(hub_calls.values())
    return info, calls


def _write_items(out_dir: Path, name: str, items: list[dict[str, Any]]) -> dict[str, str]:
    """The evaluated items, exactly, beside the results: data/<task>.jsonl, and its hash."""
    data = out_dir / "data" / f"{name}.jsonl"
    text = "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)
    atomic_write_text(data, text)
    return {"items": str(data.relative_to(out_dir)), "items_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}


def _free_memory(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
