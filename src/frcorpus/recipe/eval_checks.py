"""check_eval's per-task checks: the settings a task does not take (or takes other values of), and the
files a local task reads that are missing, each message naming the setting or the path and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .eval_tasks import LOCAL_TASKS, MMLU_DEV_ROWS, mmlu_dir
from .generation_tasks import prompt_file
from .luth_tasks import is_luth
from .nll_task import MIFEVAL_PREFIX, RESPONSES_DIR, reference_files, references_problem, response_models

if TYPE_CHECKING:
    from .evaluate import ResolvedTask, TaskSpec

INSTRUCT_TASKS = ", ".join(n for n, t in LOCAL_TASKS.items() if t.instruct)
MIFEVAL_TASKS = ", ".join(n for n, t in LOCAL_TASKS.items() if t.family == "ifeval")
GENERATION_TASKS = ", ".join(n for n, t in LOCAL_TASKS.items() if t.generates)


def option_problems(i: int, spec: TaskSpec, t: ResolvedTask) -> list[tuple[tuple, str]]:
    """Task i's own settings (`spec` as written, `t` resolved) that it does not take, or takes other values
    of, as (path inside the eval section, message)."""
    problems: list[tuple[tuple, str]] = []
    local = t.local
    if local is not None and t.metric is not None and t.metric not in local.metrics:
        known = repr(local.metrics[0]) if len(local.metrics) == 1 else f"one of {', '.join(local.metrics)}"
        problems.append((("tasks", i, "metric"), f"{t.name} reports {known}, not {t.metric!r}"))
    if local is not None and local.family == "mmlu" and t.num_fewshot > MMLU_DEV_ROWS:
        where = ("tasks", i, "num_fewshot") if spec.num_fewshot is not None else ("num_fewshot",)
        problems.append(
            (where, f"{t.name} takes at most {MMLU_DEV_ROWS} few-shot examples (its dev rows), not {t.num_fewshot}")
        )
    if local is not None and local.instruct and t.num_fewshot:
        problems.append(
            (("tasks", i, "num_fewshot"), f"{t.name} is zero-shot (an instruction and its answer); set num_fewshot: 0")
        )
    if spec.prompts is not None and not t.reads_mifeval:
        problems.append(
            (
                ("tasks", i, "prompts"),
                f"{t.name} does not read M-IFEval prompts; prompts: applies to {MIFEVAL_TASKS}, and to fr_ref_nll "
                f"with references: {MIFEVAL_PREFIX}<model>",
            )
        )
    if spec.references is not None:
        if local is None or local.family != "nll":
            problems.append((("tasks", i, "references"), f"{t.name} takes no references; they are fr_ref_nll's"))
        elif why := references_problem(spec.references):
            problems.append((("tasks", i, "references"), why))
    if spec.max_gen_toks is not None and (local is None or not local.generates) and not is_luth(t.name):
        problems.append(
            (("tasks", i, "max_gen_toks"), f"{t.name} generates no answer; max_gen_toks applies to {GENERATION_TASKS}")
        )
    return problems


def missing_files(t: ResolvedTask, root: Path, fix: str) -> list[str]:
    """Messages for the files a local task reads that are not under `root` (`fix`: how to point at them)."""
    local = t.local
    if local.family in ("mmlu", "mgsm"):
        if not local.required(root).exists():
            return [f"{t.name} reads {local.pattern(root)}, which is missing; {fix}"]
        if local.family == "mmlu" and t.num_fewshot and not mmlu_dir(root, local.lang, "dev").is_dir():
            return [
                f"{t.name} takes its few-shot examples from {mmlu_dir(root, local.lang, 'dev')}, "
                f"which is missing; {fix}, or set num_fewshot: 0"
            ]
        return []
    files = [prompt_file(root, local.lang)] if t.reads_mifeval else []
    if local.family == "nll" and references_problem(t.references) is None:
        files += reference_files(root, t.references)
    messages = []
    for path in files:
        if path.is_file():
            continue
        models = response_models(root) if path.parent == root / RESPONSES_DIR else []
        if models:  # the folder is there, not that model's answers
            messages.append(
                f"{t.name} reads {path}, which is missing: the shared data has no M-IFEval answers of "
                f"{t.references.removeprefix(MIFEVAL_PREFIX)!r}; choose references: {MIFEVAL_PREFIX}<model> with "
                f"one of {', '.join(models)}"
            )
        else:
            messages.append(f"{t.name} reads {path}, which is missing; {fix}")
    return messages
