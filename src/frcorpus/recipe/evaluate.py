"""The recipe's evaluation step: base, SFT and merged models on French (and aligned English) benchmarks.

Harness: lm-evaluation-harness (`lm-eval` 0.4.13), not lighteval. Both were checked beside the training
stack (torch 2.13 CPU, transformers 5.23, TRL 1.16, MergeKit 0.1.5): lm-eval installs with no downgrade
and few new packages, while lighteval 0.13 pulls about sixty more (inspect_ai, boto3, textual, ...).
lm-eval also takes task configs as Python dicts, so frcorpus's local benchmarks need no YAML files.

Tasks are either frcorpus's local ones (`eval_tasks.LOCAL_TASKS`: MMLU-FR, MGSM-fr and their row-aligned
English versions, read from `<data_dir>/benchmarks_fr/`, offline) or any task name that lm-eval registers
(`belebele_fra_Latn`, `french_bench`, ...: those download their data from the Hub). Each model folder is
loaded once through lm-eval's `hf` model and evaluated with `lm_eval.simple_evaluate`; the step writes
`results.json`, `results.md` (a table: rows tasks, columns models) and `results.png` (grouped bars, drawn
deterministically like the dataset card's plots), plus the evaluated items (`data/<task>.jsonl`) and every
model's per-item outputs (`samples/<model>/<task>.jsonl`).
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

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..resources import package_version
from ..settings import shared_data_dir
from ..version.writer import atomic_write_bytes, atomic_write_text
from .eval_report import results_markdown, results_png
from .eval_tasks import (
    LOCAL_TASKS,
    MMLU_DEV_ROWS,
    EvalDataError,
    EvalError,
    LocalTask,
    benchmarks_dir,
    lm_eval_task,
    local_items,
    mmlu_dir,
)

__all__ = ["EvalConfig", "EvalDataError", "EvalError", "TaskSpec", "check_eval", "run_eval"]

logger = logging.getLogger(__name__)

TRAIN_HINT = "pip install 'frcorpus[train]'"
DEFAULT_DATA = Path("..") / "shared" / "data"
LOCAL_METRICS = {"mmlu": "acc", "mgsm": "exact_match"}
VERSIONED = ("frcorpus", "lm_eval", "transformers", "torch")  # recorded in results.json
# lm-eval result keys that are not metrics
NOT_METRICS = {"alias", "name", "sample_len", "samples"}


class TaskSpec(BaseModel):
    """One benchmark, with optional settings of its own (a bare name in `tasks:` takes the eval defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        min_length=1,
        description="a local task (mmlu_fr, mmlu_en, mgsm_fr, mgsm_en) or an lm-eval task name (needs the Hub)",
    )
    limit: int | None = Field(
        None, ge=1, description="items for this task (default: eval.limit; null here: the whole benchmark)"
    )
    num_fewshot: int | None = Field(
        None, ge=0, description="few-shot examples for this task (default: eval.num_fewshot)"
    )
    metric: str | None = Field(
        None, description="the metric shown in the table and plot (default: the task's first, e.g. acc, exact_match)"
    )


class EvalConfig(BaseModel):
    """The recipe's `eval:` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tasks: list[TaskSpec] = Field(
        default_factory=lambda: [TaskSpec(name=n) for n in ("mmlu_fr", "mmlu_en", "mgsm_fr")],
        min_length=1,
        description="task names, or mappings {name, limit, num_fewshot, metric}: frcorpus's local tasks "
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
    max_gen_toks: int = Field(256, ge=1, description="new tokens at most per generated answer (MGSM)")
    apply_chat_template: bool = Field(
        False, description="wrap each prompt in the model's chat template (instruct models), as lm-eval does"
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
        return [
            ResolvedTask(
                name=t.name,
                limit=t.limit if "limit" in t.model_fields_set else self.limit,
                num_fewshot=self.num_fewshot if t.num_fewshot is None else t.num_fewshot,
                metric=t.metric,
                local=LOCAL_TASKS.get(t.name),
            )
            for t in self.tasks
        ]


@dataclass(frozen=True)
class ResolvedTask:
    name: str
    limit: int | None
    num_fewshot: int
    metric: str | None
    local: LocalTask | None


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
    others = [(i, t) for i, t in enumerate(tasks) if t.local is None]
    if others:
        try:
            known = lm_eval_task_names()
        except ImportError:
            problems.append((("tasks",), f"lm-eval tasks need the lm-eval package; install it with: {TRAIN_HINT}"))
            others, known = [], frozenset()
        for i, t in others:
            if t.name not in known:
                close = difflib.get_close_matches(t.name, [*LOCAL_TASKS, *sorted(known)], n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}?" if close else "`lm-eval ls tasks` lists lm-eval's tasks"
                problems.append(
                    (
                        ("tasks", i),
                        f"unknown task {t.name!r}: neither a local task ({', '.join(LOCAL_TASKS)}) nor an "
                        f"lm-eval task; {hint}",
                    )
                )
    local = [(i, t) for i, t in enumerate(tasks) if t.local is not None]
    for i, t in local:
        family = t.local.family
        if t.metric is not None and t.metric != LOCAL_METRICS[family]:
            problems.append((("tasks", i, "metric"), f"{t.name} reports {LOCAL_METRICS[family]!r}, not {t.metric!r}"))
        if family == "mmlu" and t.num_fewshot > MMLU_DEV_ROWS:
            where = ("tasks", i, "num_fewshot") if cfg.tasks[i].num_fewshot is not None else ("num_fewshot",)
            problems.append(
                (where, f"{t.name} takes at most {MMLU_DEV_ROWS} few-shot examples (its dev rows), not {t.num_fewshot}")
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
                if not t.local.required(root).exists():
                    problems.append((("tasks", i), f"{t.name} reads {t.local.pattern(root)}, which is missing; {fix}"))
                elif t.local.family == "mmlu" and t.num_fewshot and not mmlu_dir(root, t.local.lang, "dev").is_dir():
                    problems.append(
                        (
                            ("tasks", i),
                            f"{t.name} takes its few-shot examples from {mmlu_dir(root, t.local.lang, 'dev')}, "
                            f"which is missing; {fix}, or set num_fewshot: 0",
                        )
                    )
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
    task_info, calls = _prepare(cfg, tasks, root, out_dir)
    # Indexing lm-eval's ~15k task files takes seconds: skip it when every task is local.
    manager = TaskManager(include_defaults=any(t.local is None for t in tasks))
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
                    tasks=call["tasks"],
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
                for row, score in _task_scores(out, name, task_info[name]["metric"]).items():
                    if task_info[name]["source"] == "frcorpus":  # lm-eval saw 0-shot: the examples are in the prompt
                        score["num_fewshot"] = task_info[name]["num_fewshot"]
                    scores.setdefault(row, {})[label] = score
            _write_samples(out, out_dir / "samples" / label)
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


def _prepare(
    cfg: EvalConfig, tasks: list[ResolvedTask], root: Path, out_dir: Path
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Sample and write the local tasks' items; group the tasks into simple_evaluate calls (all local tasks
    in one, lm-eval tasks by their limit and few-shot count, which simple_evaluate takes per call)."""
    info: dict[str, dict[str, Any]] = {}
    local_call: dict[str, Any] = {"names": [], "tasks": [], "limit": None, "num_fewshot": None}
    hub_calls: dict[tuple, dict[str, Any]] = {}
    for t in tasks:
        entry = {"name": t.name, "limit": t.limit, "num_fewshot": t.num_fewshot}
        if t.local is not None:
            items = local_items(t.local, root, t.limit, cfg.seed, t.num_fewshot)
            if not items:
                raise EvalError(f"{t.name}: no items in {t.local.pattern(root)}")
            data = out_dir / "data" / f"{t.name}.jsonl"
            text = "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)
            atomic_write_text(data, text)
            entry |= {
                "source": "frcorpus",
                "description": t.local.description,
                "metric": LOCAL_METRICS[t.local.family],
                "n": len(items),
                "files": t.local.pattern(root),
                "items": str(data.relative_to(out_dir)),
                "items_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            }
            local_call["names"].append(t.name)
            local_call["tasks"].append(lm_eval_task(t.local, items, cfg.max_gen_toks, cfg.apply_chat_template))
        else:
            entry |= {"source": "lm-eval", "description": f"lm-eval task {t.name}", "metric": t.metric}
            call = hub_calls.setdefault(
                (t.limit, t.num_fewshot), {"names": [], "tasks": [], "limit": t.limit, "num_fewshot": t.num_fewshot}
            )
            call["names"].append(t.name)
            call["tasks"].append(t.name)
        info[t.name] = entry
    calls = ([local_call] if local_call["names"] else []) + list(hub_calls.values())
    return info, calls


def _split_key(key: str) -> tuple[str, str]:
    metric, _, filt = key.partition(",")
    return metric, filt


def _pick_metric(metrics: dict[str, Any], wanted: str | None) -> str | None:
    """The result key ('metric,filter') to show: `wanted` (a metric name or a full key), else the first."""
    keys = [k for k in metrics if k not in NOT_METRICS and "_stderr" not in k and isinstance(metrics[k], (int, float))]
    if wanted is None:
        return keys[0] if keys else None
    return next((k for k in keys if k == wanted or _split_key(k)[0] == wanted), None)


def _task_scores(out: dict[str, Any], name: str, wanted: str | None) -> dict[str, dict[str, Any]]:
    """Table rows for one requested task: the task itself, or a group's aggregate row, or (a group without
    one) each of its tasks."""
    results, counts = out["results"], out.get("n-samples", {})
    leaves = [name]
    if _pick_metric(results.get(name, {}), None) is None:
        leaves = [t for t in out.get("group_subtasks", {}).get(name, []) if t in results] or leaves
    rows = {}
    for leaf in leaves:
        metrics = results.get(leaf, {})
        key = _pick_metric(metrics, wanted)
        if key is None:
            names = sorted({_split_key(k)[0] for k in metrics if k not in NOT_METRICS and "_stderr" not in k})
            asked = f" {wanted!r}" if wanted else ""
            raise EvalError(
                f"task {leaf!r}: lm-eval reported no metric{asked} (it reported: {', '.join(names) or 'none'}); "
                "set the task's metric: in eval.tasks to one of those"
            )
        metric, filt = _split_key(key)
        stderr = metrics.get(f"{metric}_stderr,{filt}")
        subtasks = out.get("group_subtasks", {}).get(leaf) or [leaf]
        n = sum(counts.get(t, {}).get("effective", 0) for t in subtasks)
        rows[leaf] = {
            "metric": metric,
            "filter": filt,
            "value": float(metrics[key]),
            "stderr": float(stderr) if isinstance(stderr, (int, float)) else None,
            "n": n,
            "num_fewshot": out.get("n-shot", {}).get(leaf),
            "all": {k: v for k, v in metrics.items() if k not in NOT_METRICS and isinstance(v, (int, float))},
        }
    return rows


def _write_samples(out: dict[str, Any], folder: Path) -> None:
    """Per-item outputs, one JSONL per task: what the model answered and how it scored."""
    for task, samples in (out.get("samples") or {}).items():
        lines = []
        for s in samples:
            doc = s.get("doc") or {}
            metrics = {m: s[m] for m in s.get("metrics", []) if m in s}
            lines.append(
                json.dumps(
                    {
                        "doc_id": s["doc_id"],
                        "id": doc.get("id"),
                        "target": s.get("target"),
                        "response": s.get("filtered_resps"),
                        "raw": s.get("resps") if s.get("filter") not in (None, "none") else None,
                        **metrics,
                    },
                    ensure_ascii=False,
                    default=str,
                )
                + "\n"
            )
        atomic_write_text(folder / f"{task.replace('/', '_')}.jsonl", "".join(lines))


def _free_memory(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
