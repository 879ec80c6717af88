"""The Luth suite by name, for GPU runs: the six French benchmarks the Luth models were evaluated on
(Lasbordes & Gad 2025, arXiv 2510.05846; the Luth-0.6B/1.7B-Instruct model cards), as lm-eval tasks.

    luth_ifeval_fr, luth_gpqa_diamond_fr, luth_mmlu_fr, luth_math500_fr, luth_arc_challenge_fr,
    luth_hellaswag_fr; luth_fr: all six

Luth's evaluation (kurakurai/Luth, `src/eval/tasks.py` and `configs/eval/eval_config.yaml`) ran them with
lighteval and vLLM, zero-shot, through the chat template with a French system prompt, greedy; frcorpus runs
them with lm-eval like its other tasks. Prompts and scoring are in luth_prompts.py.

Where the rows come from: the Hugging Face Hub datasets Luth's evaluation read, at a pinned commit where one
could be verified (BENCHMARKS: `revision`); `revision:` on a task names another (or the missing) commit; or a
local copy (`path:`), read offline: a folder downloaded with `hf download <repo> --repo-type dataset
--revision <sha> --local-dir <folder>` (read with `datasets.load_dataset(<folder>, <subset>)`), or a file of
the evaluated split's rows (.jsonl, .parquet, .csv, read into memory with pyarrow). `path:` on luth_fr is a
folder holding one such copy per dataset, at `<path>/<repo>`.

Two of the datasets Luth names replace originals that are gone from the Hub: IFEval-fr and GPQA-fr were
published by fr-gouv-coordination-ia (lighteval's French tasks read them there); lighteval now reads
jzhang86/fr_ifeval ("mirror of fr-gouv-coordination-ia/IFEval-fr; the original repo was moved/removed") and
le-leadboard/gpqa-fr ("the original fr-gouv-coordination-ia/gpqa-fr is no longer available"), the two Luth
reads. docs/recipe.md (The Luth suite) lists the sources and what could not be verified.
"""

from __future__ import annotations

import functools
import os
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import luth_prompts as prompts
from .eval_tasks import IFEVAL_METRICS, LETTERS, EvalDataError
from .generation_tasks import mean_over_instructions

if TYPE_CHECKING:
    from .evaluate import ResolvedTask, TaskSpec

GROUP = "luth_fr"
LUTH_MAX_GEN_TOKS = 1024  # Luth's generation budget without thinking (lighteval generation_size)
LOCAL_FORMATS = (".jsonl", ".json", ".parquet", ".csv")
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
COPIES = "luth"  # the folder the download commands in messages fill, one subfolder per dataset


@dataclass(frozen=True)
class LuthBenchmark:
    """One benchmark of the suite: where Luth read it (Hub repo, subset, split), the commit frcorpus pins
    (None: none could be verified), the columns its rows must have, and how it is prompted and scored
    (`score` None: the log-likelihood of each of `choices`, a list or the row field holding them)."""

    name: str
    title: str
    repo: str
    subset: str | None
    split: str
    revision: str | None
    columns: tuple[str, ...]
    docs: Callable[[Any], Any]
    metrics: tuple[str, ...]
    score: Callable[[dict[str, Any], list[str]], dict[str, Any]] | None = None
    target: str = "answer"
    choices: tuple[str, ...] | str | None = None
    answer_tokens: int | None = None  # a fixed answer length (HellaSwag-fr: the one letter)
    replaces: str | None = None  # the original repository, gone from the Hub

    @property
    def generates(self) -> bool:
        return self.score is not None


BENCHMARKS: dict[str, LuthBenchmark] = {
    b.name: b
    for b in (
        LuthBenchmark(
            "luth_ifeval_fr",
            "IFEval-fr",
            "jzhang86/fr_ifeval",
            None,
            "train",
            None,
            ("prompt", "instruction_id_list", "kwargs"),
            prompts.ifeval_docs,
            IFEVAL_METRICS,
            score=prompts.ifeval_score,
            target="",
            replaces="fr-gouv-coordination-ia/IFEval-fr",
        ),
        LuthBenchmark(
            "luth_gpqa_diamond_fr",
            "GPQA-diamond-fr",
            "le-leadboard/gpqa-fr",
            "gpqa_diamond",
            "train",
            None,
            ("problem", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"),
            prompts.gpqa_docs,
            ("exact_match",),
            score=prompts.gpqa_score,
            replaces="fr-gouv-coordination-ia/gpqa-fr",
        ),
        LuthBenchmark(
            "luth_mmlu_fr",
            "MMLU-fr",
            "openai/MMMLU",
            "FR_FR",
            "test",
            "038c7808122969ead7456361af05cb8f47d247f8",  # Luth's own pin (hf_revision of its mmlu_fr task)
            ("Question", "A", "B", "C", "D", "Answer"),
            prompts.mmlu_docs,
            ("acc",),
            target="gold",
            choices=LETTERS,
        ),
        LuthBenchmark(
            "luth_math500_fr",
            "MATH-500-fr",
            "bezir/MATH-500-multilingual",
            "French",
            "test",
            None,
            ("problem", "solution"),
            prompts.math_docs,
            ("exact_match",),
            score=prompts.math_score,
        ),
        LuthBenchmark(
            "luth_arc_challenge_fr",
            "ARC-Challenge-fr",
            "manu/french_bench_arc_challenge",
            None,
            "test",
            "25a80534368914cfd6aa4c5f73262d64ce2d61fb",  # "Upload dataset", the head of main
            ("question", "choices", "answerKey"),
            prompts.arc_docs,
            ("acc", "acc_norm"),
            target="gold",
            choices="choices",
        ),
        LuthBenchmark(
            "luth_hellaswag_fr",
            "HellaSwag-fr",
            "manu/french_bench_hellaswag",
            None,
            "validation",
            None,
            ("ctx_a", "ctx_b", "endings", "label"),
            prompts.hellaswag_docs,
            ("exact_match",),
            score=prompts.letter_score,
            answer_tokens=1,
        ),
    )
}
LUTH_NAMES = (*BENCHMARKS, GROUP)
GENERATING = ", ".join(n for n, b in BENCHMARKS.items() if b.generates and b.answer_tokens is None)


def is_luth(name: str) -> bool:
    return name in LUTH_NAMES


def members(name: str) -> list[LuthBenchmark]:
    """The benchmarks a Luth task name stands for (the group: all six)."""
    return list(BENCHMARKS.values()) if name == GROUP else [BENCHMARKS[name]]


# ----------------------------------------------------------------------------------- where the rows are


def local_copy(name: str, path: str | None, bench: LuthBenchmark) -> Path | None:
    """The local copy a task reads `bench` from: its `path:`, or for the group `<path>/<repo>`."""
    if path is None:
        return None
    folder = Path(path).expanduser().absolute()
    return folder / bench.repo if name == GROUP else folder


def download_command(bench: LuthBenchmark, revision: str | None, folder: str | Path | None = None) -> str:
    pinned = f" --revision {revision}" if revision else ""
    return f"hf download {bench.repo} --repo-type dataset{pinned} --local-dir {folder or f'{COPIES}/{bench.repo}'}"


def current_revision_command(bench: LuthBenchmark) -> str:
    return f"python -c \"from huggingface_hub import HfApi; print(HfApi().dataset_info('{bench.repo}').sha)\""


def read_rows(path: Path):
    """A file of benchmark rows as a datasets.Dataset in memory (no datasets cache): JSON Lines, Parquet or CSV,
    the schema inferred from every row."""
    import datasets
    import pyarrow

    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".json"):
            from pyarrow import json as pa_json

            block = max(path.stat().st_size + 1, 1 << 20)  # one block: every row counts in the inferred schema
            table = pa_json.read_json(path, read_options=pa_json.ReadOptions(block_size=block))
        elif suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
        else:
            from pyarrow import csv as pa_csv

            table = pa_csv.read_csv(path)
    except (pyarrow.ArrowInvalid, OSError) as e:
        hint = " (JSON Lines: one object per line)" if suffix == ".json" else ""
        raise EvalDataError(f"{path}: not readable as {suffix.lstrip('.')}{hint}: {e}") from None
    return datasets.Dataset(table)


def local_dataset(bench: LuthBenchmark, path: Path) -> Callable[..., Any]:
    """lm-eval's `custom_dataset` for a local copy: a downloaded folder (its subset and split, as on the Hub)
    or a file of the split's rows."""

    def load(**_: Any):  # lm-eval passes the task's metadata as keyword arguments
        import datasets

        if not path.is_dir():
            return datasets.DatasetDict({bench.split: read_rows(path)})
        try:
            rows = datasets.load_dataset(str(path), bench.subset, split=bench.split)
        except (ValueError, FileNotFoundError, OSError) as e:
            raise EvalDataError(
                f"{path}: not a copy of {bench.repo} that datasets can read ({e}); download one with "
                f"`{download_command(bench, bench.revision, path)}`"
            ) from None
        return datasets.DatasetDict({bench.split: rows})

    return load


def checked_docs(bench: LuthBenchmark, source: str) -> Callable[[Any], Any]:
    """lm-eval's `process_docs`: the benchmark's own, once the rows have the columns it reads; its errors
    name the task and where the rows came from."""

    def process_docs(dataset):
        missing = [c for c in bench.columns if c not in dataset.column_names]
        if missing:
            raise EvalDataError(
                f"{bench.name}: {source} has no column {', '.join(map(repr, missing))}; it reads "
                f"{', '.join(bench.columns)}: the columns of {bench.repo} ({bench.subset or 'default'}/{bench.split})"
            )
        try:
            return bench.docs(dataset)
        except EvalDataError as e:
            raise EvalDataError(f"{bench.name}: {source}: {e}") from None

    return process_docs


# ----------------------------------------------------------------------------------- lm-eval task configs


def task_config(bench: LuthBenchmark, path: Path | None, revision: str | None, max_gen_toks: int) -> dict[str, Any]:
    """The lm-eval task config of one benchmark: read from the Hub at `revision` (`dataset_path` and
    `dataset_kwargs`), or from the local copy `path`."""
    source = str(path) if path is not None else f"{bench.repo}@{revision or 'main'}"
    config: dict[str, Any] = {
        "task": bench.name,
        "test_split": bench.split,
        "process_docs": checked_docs(bench, source),
        "doc_to_text": "prompt",
        "doc_to_target": bench.target,
        "description": prompts.SYSTEM_PROMPT,  # the system message, under the chat template
        "num_fewshot": 0,
        "metadata": {"version": 1.0},
    }
    if path is None:
        config |= {"dataset_path": bench.repo, "dataset_kwargs": {"revision": revision}}
        if bench.subset is not None:
            config["dataset_name"] = bench.subset
    else:
        config["custom_dataset"] = local_dataset(bench, path)
    if not bench.generates:
        choices = list(bench.choices) if isinstance(bench.choices, tuple) else bench.choices
        return config | {
            "output_type": "multiple_choice",
            "doc_to_choice": choices,
            "target_delimiter": " ",
            "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True} for m in bench.metrics],
        }
    return config | {
        "output_type": "generate_until",
        "generation_kwargs": {"until": [], "do_sample": False, "max_gen_toks": bench.answer_tokens or max_gen_toks},
        "process_results": bench.score,
        "metric_list": [
            {
                "metric": m,
                "aggregation": mean_over_instructions if m.startswith("inst_level") else "mean",
                "higher_is_better": True,
            }
            for m in bench.metrics
        ],
    }


def luth_members(t: ResolvedTask) -> list[tuple[str, dict[str, Any] | None, dict[str, Any]]]:
    """What the eval step runs for a Luth task: (name, lm-eval config, what results.json says of it) per
    benchmark; the group first gets its own entry, with no config (its rows are its six tasks')."""
    out: list[tuple[str, dict[str, Any] | None, dict[str, Any]]] = []
    if t.name == GROUP:
        out.append((GROUP, None, {"description": f"the Luth suite: {', '.join(BENCHMARKS)}, a row each"}))
    for bench in members(t.name):
        path = local_copy(t.name, t.path, bench)
        revision = None if path is not None else (t.revision or bench.revision)
        where = f"read from {path}" if path is not None else f"{bench.repo} at {revision}"
        about = {
            "name": bench.name,
            "description": f"{bench.title} as Luth evaluates it, zero-shot under the chat template; {where}",
            "metric": t.metric or bench.metrics[0],
            "dataset": bench.repo,
            "subset": bench.subset,
            "split": bench.split,
            "revision": revision,
            "path": None if path is None else str(path),
        }
        out.append((bench.name, task_config(bench, path, revision, t.max_gen_toks), about))
    return out


# ----------------------------------------------------------------------------------- checks


def hub_unreachable() -> str | None:
    """Why the Hugging Face Hub cannot be reached from here (an offline switch, or no answer), None if it can."""
    for variable in OFFLINE_VARIABLES:
        if os.environ.get(variable, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"{variable}={os.environ[variable]} is set"
    return _probe(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")


@functools.cache
def _probe(endpoint: str) -> str | None:
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=5)
    except urllib.error.HTTPError:
        return None  # it answered
    except (urllib.error.URLError, OSError, ValueError) as e:
        return f"{endpoint} did not answer: {getattr(e, 'reason', e)}"
    return None


def luth_problems(specs: list[TaskSpec], tasks: list[ResolvedTask], chat: bool) -> list[tuple[tuple, str]]:
    """check_eval's problems with the Luth tasks (`specs` as written, `tasks` resolved; `chat`: eval's
    apply_chat_template), and with `path:` or `revision:` on the other tasks, as (path in the eval section,
    message)."""
    problems: list[tuple[tuple, str]] = []
    luth = []
    for i, (spec, t) in enumerate(zip(specs, tasks, strict=True)):
        if is_luth(t.name):
            luth.append((i, spec, t))
            continue
        for option in ("path", "revision"):
            if getattr(spec, option) is not None:
                problems.append(
                    (("tasks", i, option), f"{t.name} takes no {option}; {option}: is for {', '.join(LUTH_NAMES)}")
                )
    if not luth:
        return problems
    if not chat:
        names = ", ".join(t.name for _, _, t in luth)
        problems.append(
            (
                ("apply_chat_template",),
                f"{names} prompt the model through its chat template with Luth's system prompt, as Luth was "
                "evaluated; set eval.apply_chat_template: true",
            )
        )
    listed = Counter(b.name for _, _, t in luth for b in members(t.name))
    problems += [
        (("tasks",), f"{name} is listed twice (on its own and in {GROUP}); keep one")
        for name, count in listed.items()
        if count > 1
    ]
    offline = functools.cache(hub_unreachable)  # asked once, and only if a task reads the Hub
    for i, spec, t in luth:
        problems += [(("tasks", i, *where), message) for where, message in _option_problems(spec, t)]
        problems += [(("tasks", i, *where), message) for where, message in _source_problems(spec, t, offline)]
    return problems


def _option_problems(spec: TaskSpec, t: ResolvedTask) -> list[tuple[tuple, str]]:
    problems: list[tuple[tuple, str]] = []
    if t.num_fewshot:
        problems.append((("num_fewshot",), f"{t.name} is zero-shot, as Luth was evaluated; set num_fewshot: 0"))
    if t.name == GROUP:
        for option in ("metric", "revision"):
            if getattr(spec, option) is not None:
                problems.append(
                    (
                        (option,),
                        f"{GROUP} is six tasks on six datasets; set {option}: on the tasks listed one by one "
                        f"({', '.join(BENCHMARKS)})",
                    )
                )
        return problems
    bench = BENCHMARKS[t.name]
    if spec.metric is not None and spec.metric not in bench.metrics:
        known = repr(bench.metrics[0]) if len(bench.metrics) == 1 else f"one of {', '.join(bench.metrics)}"
        problems.append((("metric",), f"{t.name} reports {known}, not {spec.metric!r}"))
    if spec.max_gen_toks is not None and not bench.generates:
        problems.append(
            (
                ("max_gen_toks",),
                f"{t.name} scores the log-likelihood of each choice and generates nothing; max_gen_toks applies "
                f"to {GENERATING}",
            )
        )
    elif spec.max_gen_toks is not None and bench.answer_tokens is not None:
        problems.append(
            (
                ("max_gen_toks",),
                f"{t.name} generates {bench.answer_tokens} token (the letter), as Luth did; remove max_gen_toks",
            )
        )
    return problems


def _source_problems(spec: TaskSpec, t: ResolvedTask, offline: Callable[[], str | None]) -> list[tuple[tuple, str]]:
    """A local copy that is not there, or a Hub read that cannot happen (no revision pinned or given, or no
    Hub from here), each with the way out."""
    benches = members(t.name)
    if spec.path is not None:
        if spec.revision is not None and t.name != GROUP:  # the group's revision: is refused above
            return [(("revision",), f"{t.name} reads its local copy (path:) as it is; revision: is for the Hub")]
        return [(("path",), message) for message in _path_problems(t, benches)]
    reason = offline()
    if reason is not None:
        return [(("path",), _offline_message(t, benches, reason))]
    unpinned = [b for b in benches if (spec.revision or b.revision) is None]
    if not unpinned:
        return []
    if t.name != GROUP:
        bench = unpinned[0]
        return [
            (
                ("revision",),
                f"{t.name}: frcorpus pins no revision of {bench.repo} (none could be verified); set revision: to "
                f"the commit to read (the current one: `{current_revision_command(bench)}`), or path: to a local "
                "copy",
            )
        ]
    return [
        (
            (),
            f"{GROUP}: frcorpus pins no revision of {', '.join(b.repo for b in unpinned)} (none could be verified); "
            f"list {', '.join(b.name for b in unpinned)} one by one with revision: <commit> each (the current one "
            f"of a dataset: `{current_revision_command(unpinned[0])}` with its name), or set path: on {GROUP} to a "
            f"folder holding a copy of each ({'; '.join(f'`{download_command(b, b.revision)}`' for b in benches)}; "
            f"then path: {COPIES})",
        )
    ]


def _path_problems(t: ResolvedTask, benches: list[LuthBenchmark]) -> list[str]:
    if t.name == GROUP:
        root = Path(t.path).expanduser().absolute()
        missing = [b for b in benches if not (root / b.repo).is_dir()]
        if not missing:
            return []
        commands = "; ".join(f"`{download_command(b, b.revision, root / b.repo)}`" for b in missing)
        return [
            f"{GROUP} reads a copy of each dataset under {root}, at <path>/<repo>: "
            f"{', '.join(b.repo for b in missing)} missing; download with {commands}"
        ]
    bench, path = benches[0], Path(t.path).expanduser().absolute()
    get = f"download one with `{download_command(bench, bench.revision, path)}`"
    if not path.exists():
        return [f"{t.name} reads {path}, which does not exist; {get}, or write its {bench.split} rows to a file"]
    if path.is_file() and path.suffix.lower() not in LOCAL_FORMATS:
        return [
            f"{t.name} reads {path}: neither a folder (a copy of {bench.repo}) nor a {', '.join(LOCAL_FORMATS)} file "
            f"of its {bench.split} rows"
        ]
    return []


def _offline_message(t: ResolvedTask, benches: list[LuthBenchmark], reason: str) -> str:
    def command(bench: LuthBenchmark) -> str:
        revision = t.revision or bench.revision
        unpinned = "" if revision else " (frcorpus pins no revision of it: add --revision <commit> to fix one)"
        return f"`{download_command(bench, revision)}`{unpinned}"

    if t.name == GROUP:
        commands = "; ".join(command(b) for b in benches)
        return (
            f"{GROUP} reads {len(benches)} datasets from the Hugging Face Hub, which cannot be reached from here "
            f"({reason}); download them where it can: {commands}; bring the {COPIES}/ folder here and set path: "
            f"{COPIES} on {GROUP}"
        )
    bench = benches[0]
    return (
        f"{t.name} reads {bench.repo} from the Hugging Face Hub, which cannot be reached from here ({reason}); "
        f"download it where it can: {command(bench)}; bring the folder here and set path: {COPIES}/{bench.repo}"
    )
