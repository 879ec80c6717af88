"""`frcorpus recipe ...`: thin commands over frcorpus.recipe (exit 2 for a configuration problem, as
`frcorpus run` does)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

recipe_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Fine-tune a model on a dataset version (TRL), merge it with its base (MergeKit), evaluate in French.",
)
console = Console(stderr=True)
out = Console()

ConfigArg = Annotated[Path, typer.Argument(help="recipe YAML file (see pipelines/recipes/)")]
DatasetOpt = Annotated[
    str | None,
    typer.Option("--dataset", help="train on this version directory (or dataset folder) instead of the recipe's"),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="redo finished steps (the SFT starts over)")]


def _machine_notes(notes: list[str]) -> None:
    """What validate found that this machine lacks or does slowly (the file itself is valid)."""
    if notes:
        out.print("[yellow]on this machine:[/]")
        for note in notes:
            out.print(f"  {note}", markup=False, highlight=False, soft_wrap=True)


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)


def _fail(problems: list[str], what: str = "problem(s) in the recipe") -> None:
    console.print(f"[bold red]{len(problems)} {what}:[/]")
    for p in problems:
        console.print(f"  {p}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _load(path: Path, dataset: str | None):
    from frcorpus.yamlconf import ConfigError

    from .config import load_recipe

    logging.getLogger("frcorpus").setLevel(logging.INFO)  # the steps say what they do and skip
    try:
        return load_recipe(path, dataset)
    except ConfigError as e:
        _fail(e.problems)


def _run(path: Path, dataset: str | None, steps: tuple[str, ...], force: bool) -> list[dict]:
    from frcorpus.llm.base import BackendError

    from .config import machine_problems, machine_warnings
    from .dataset import DatasetError
    from .luth import STEP_FUNCTIONS, StepError
    from .sft import SFTError

    loaded = _load(path, dataset)
    problems = machine_problems(loaded, steps)
    if problems:
        _fail(problems, "problem(s) on this machine")
    _warn(machine_warnings(loaded, steps))
    done = []
    try:
        for step in steps:
            console.print(f"[bold]recipe {escape(loaded.config.name)}: {step}[/]", highlight=False)
            done.append(STEP_FUNCTIONS[step](loaded, force=force))
    except (StepError, SFTError, DatasetError, BackendError) as e:
        console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    _report(loaded, done)
    return done


def _report(loaded, done: list[dict]) -> None:
    table = Table(title=f"recipe {loaded.config.name}", title_justify="left")
    for col in ("step", "seconds", "result"):
        table.add_column(col)
    for item in done:
        table.add_row(
            item["step"], "skipped" if item.get("skipped") else f"{item['seconds']:.1f}", _result(loaded, item)
        )
    out.print(table)
    results = loaded.output_dir / "eval" / "results.md"
    if any(item["step"] == "eval" for item in done) and results.is_file():
        out.print(results.read_text(encoding="utf-8"), markup=False, highlight=False)


def _result(loaded, item: dict) -> str:
    if item["step"] == "sft":
        train = item["record"]["train"]
        loss = (
            f"loss {train['loss_first']:.3f} -> {train['loss_last']:.3f}" if train.get("losses") else "no loss logged"
        )
        return f"{loaded.output_dir / 'sft'}: {train['steps']} steps, {loss}, {train['tokens_per_s']} tokens/s"
    if item["step"] == "merge":
        return str(loaded.output_dir / "merged")
    return str(loaded.output_dir / "eval" / "results.md")


@recipe_app.command()
def validate(config: ConfigArg, dataset: DatasetOpt = None) -> None:
    """Check a recipe (or a compare file) without running it: every sft: key against TRL's SFTConfig, merge:
    against MergeKit's config model, eval: tasks and files. What this machine lacks for a step is listed, not an
    error."""
    from .compare_config import is_compare_file
    from .config import machine_problems, machine_warnings
    from .dataset import DatasetError, pipeline_problems, resolve_dataset

    if is_compare_file(config):
        return _validate_compare(config)
    loaded = _load(config, dataset)
    cfg = loaded.config
    merge = cfg.merge or {}
    summary = Table(title=f"{cfg.name}", title_justify="left", show_header=False)
    summary.add_row("base model", cfg.model + (f"@{cfg.revision}" if cfg.revision else ""))
    if cfg.dataset.pipeline is not None:  # validating runs nothing: the pipeline is checked, the steps run it
        summary.add_row("dataset", f"the version pipeline {cfg.dataset.pipeline} writes (run first if needed)")
        notes = pipeline_problems(Path(cfg.dataset.pipeline))
    else:
        try:
            version = resolve_dataset(cfg.dataset)
            summary.add_row("dataset", f"{version.name} {version.version} ({version.split}, {version.source})")
            notes = []
        except DatasetError as e:
            summary.add_row("dataset", cfg.dataset.path or f"{cfg.dataset.hub}@{cfg.dataset.revision or 'main'}")
            notes = [str(e)]
    summary.add_row("sft", ", ".join(f"{k}={v}" for k, v in cfg.sft.items()))
    summary.add_row("merge", f"{merge.get('merge_method', '-')} {merge.get('parameters', '')}".strip())
    if loaded.eval_config is not None:
        tasks = [t.name + (f" (limit {t.limit})" if t.limit else "") for t in loaded.eval_config.tasks]
        limit = loaded.eval_config.limit
        summary.add_row("eval", ", ".join(tasks) + (f"; {limit} items per task" if limit else "; every item"))
    out.print(summary)
    out.print(f"[green]OK[/] {escape(str(config))}: the recipe is valid", highlight=False)
    steps = ("sft", *(["merge"] if cfg.merge else []), *(["eval"] if loaded.eval_config is not None else []))
    notes += machine_problems(loaded, steps) + machine_warnings(loaded, steps)
    _machine_notes(notes)


@recipe_app.command()
def sft(config: ConfigArg, dataset: DatasetOpt = None, force: ForceOpt = False) -> None:
    """Fine-tune the base model on the dataset version with TRL (into <output_dir>/sft)."""
    _run(config, dataset, ("sft",), force)


@recipe_app.command()
def merge(config: ConfigArg, force: ForceOpt = False) -> None:
    """Merge the fine-tuned model with its base with MergeKit (into <output_dir>/merged)."""
    _run(config, None, ("merge",), force)


@recipe_app.command()
def score(
    task: Annotated[str, typer.Argument(help="the benchmark the answers are for: ifeval_fr or ifeval_en")],
    responses: Annotated[Path, typer.Option("--responses", help="JSONL of {prompt, response}, one per line")],
    out_dir: Annotated[Path, typer.Option("--out", help="folder for items.jsonl and summary.json")],
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", help="folder holding benchmarks_fr/ (default: $FRCORPUS_SHARED_DATA, else ../shared/data)"
        ),
    ] = None,
) -> None:
    """Score answers to the M-IFEval prompts, no model needed: every instruction checked strict and loose, the
    accuracies per prompt and per instruction (DIR/items.jsonl, DIR/summary.json)."""
    from frcorpus.stages.instructions.text import CheckerDependencyMissing

    from .eval_tasks import EvalError
    from .evaluate import EvalConfig, data_root
    from .ifeval import IFEVAL_LANGS, score_responses_file

    langs = {f"ifeval_{lang}": lang for lang in IFEVAL_LANGS}
    if task not in langs:
        _fail([f"unknown task {task!r}: give one of {', '.join(langs)}"], "problem(s) with the arguments")
    root, _ = data_root(EvalConfig(data_dir=str(data_dir) if data_dir is not None else None))
    try:
        summary = score_responses_file(langs[task], responses, out_dir, root)
    except (EvalError, CheckerDependencyMissing) as e:  # a bad benchmark or answers file, a package missing
        _fail([str(e)], "problem(s) with the input")
    out.print(f"{task}: {summary['n_prompts']} prompts, {summary['missing']} without an answer", highlight=False)
    table = Table()
    for col in ("level", "strict", "loose"):
        table.add_column(col)
    for level, name in (("prompt", "prompt"), ("instruction", "inst")):
        strict, loose = summary[f"{name}_level_strict_acc"], summary[f"{name}_level_loose_acc"]
        table.add_row(level, f"{strict:.3f}", f"{loose:.3f}")
    out.print(table)
    out.print(f"written: {escape(str(out_dir / 'items.jsonl'))}, {escape(str(out_dir / 'summary.json'))}")


@recipe_app.command("eval")
def eval_command(config: ConfigArg, force: ForceOpt = False) -> None:
    """Evaluate base, SFT and merged models on French benchmarks (into <output_dir>/eval)."""
    _run(config, None, ("eval",), force)


@recipe_app.command()
def luth(config: ConfigArg, dataset: DatasetOpt = None, force: ForceOpt = False) -> None:
    """SFT, merge and eval in order, with one config; finished steps with unchanged inputs are skipped."""
    from .luth import STEPS

    _run(config, dataset, STEPS, force)


# --------------------------------------------------------------------------- compare

OnlyOpt = Annotated[
    list[str] | None, typer.Option("--only", help="train and evaluate this arm only (repeat for several arms)")
]


def _load_compare(path: Path):
    from frcorpus.yamlconf import ConfigError

    from .compare_config import load_compare

    logging.getLogger("frcorpus").setLevel(logging.INFO)
    try:
        return load_compare(path)
    except ConfigError as e:
        _fail(e.problems, "problem(s) in the compare file")


def _validate_compare(path: Path) -> None:
    from .config import machine_problems, machine_warnings
    from .dataset import DatasetError, pipeline_problems, resolve_dataset

    loaded = _load_compare(path)
    cfg = loaded.config
    summary = Table(title=f"{cfg.name} (compare)", title_justify="left", show_header=False)
    summary.add_row("base model", cfg.model + (f"@{cfg.revision}" if cfg.revision else ""))
    notes = []
    for arm, ref in cfg.arms.items():
        if ref.pipeline is not None:  # validating runs nothing: the pipeline is checked, compare runs it
            summary.add_row(f"arm {arm}", f"the version pipeline {ref.pipeline} writes (compare runs it if needed)")
            notes += [f"arm {arm}: {problem}" for problem in pipeline_problems(Path(ref.pipeline))]
            continue
        try:
            version = resolve_dataset(ref)
            summary.add_row(f"arm {arm}", f"{version.name} {version.version} ({version.fingerprint}, {version.source})")
        except DatasetError as e:
            summary.add_row(f"arm {arm}", ref.path or f"{ref.hub}@{ref.revision or 'main'}")
            notes.append(f"arm {arm}: {e}")
    summary.add_row("budget", f"{cfg.budget.tokens} tokens" if cfg.budget.tokens else "the smallest arm's total")
    summary.add_row("leak check", f"{', '.join(loaded.leak_methods)}; on_leak: {cfg.leak_check.on_leak}")
    summary.add_row("sft", ", ".join(f"{k}={v}" for k, v in cfg.sft.items()))
    if cfg.merge:
        summary.add_row("merge", f"{cfg.merge.get('merge_method', '-')} {cfg.merge.get('parameters', '')}".strip())
    tasks = [t.name + (f" (limit {t.limit})" if t.limit else "") for t in loaded.eval_config.tasks]
    summary.add_row(
        "eval", ", ".join(tasks) + f"; models: {', '.join(loaded.kinds)}" + (", base" if loaded.with_base else "")
    )
    out.print(summary)
    out.print(f"[green]OK[/] {escape(str(path))}: the compare file is valid", highlight=False)
    steps = ("sft", *(["merge"] if cfg.merge else []), "eval")
    first = loaded.arm_recipe(loaded.arms[0])
    notes += machine_problems(first, steps) + machine_warnings(first, steps)
    _machine_notes(notes)


@recipe_app.command()
def compare(
    config: Annotated[Path, typer.Argument(help="compare YAML file (docs/recipe.md, Compare)")],
    force: ForceOpt = False,
    only: OnlyOpt = None,
    validate_only: Annotated[bool, typer.Option("--validate", help="check the compare file, run nothing")] = False,
) -> None:
    """Train the base model on each arm's dataset with the same SFT on the same number of tokens (leaked eval
    items removed), evaluate every arm and the base on the same items, and report the deltas with paired
    bootstrap intervals (compare.md, .json, .png); finished arms are not trained again."""
    from frcorpus.llm.base import BackendError
    from frcorpus.stages.instructions.text import CheckerDependencyMissing

    from .compare import run_compare
    from .compare_data import CompareError
    from .config import machine_problems, machine_warnings
    from .dataset import DatasetError
    from .evaluate import EvalError
    from .luth import StepError
    from .sft import SFTError

    if validate_only:
        _validate_compare(config)
        return
    loaded = _load_compare(config)
    steps = ("sft", *(["merge"] if loaded.config.merge else []), "eval")
    first = loaded.arm_recipe(loaded.arms[0])  # the machine needs are the same for every arm
    problems = machine_problems(first, steps)
    if problems:
        _fail(problems, "problem(s) on this machine")
    _warn(machine_warnings(first, steps))
    name = escape(loaded.config.name)

    def progress(who: str, step: str, seconds: float | None, note: str) -> None:
        took = f" {seconds:.1f} s" if seconds is not None else ""
        console.print(f"[bold]compare {name}[/] {escape(who)}: {step}{took} ({escape(note)})", highlight=False)

    try:
        run_compare(loaded, force=force, only=only, progress=progress)
    except (CompareError, StepError, SFTError, DatasetError, EvalError, CheckerDependencyMissing, BackendError) as e:
        console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    report = (loaded.output_dir / "compare.md").read_text(encoding="utf-8")
    out.print(report, markup=False, highlight=False, soft_wrap=True)  # the tables' lines whole
