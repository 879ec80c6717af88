"""The pipeline YAML: pydantic models, and errors that name file:line, YAML path, value and fix.

Validation never loads a model: `load_pipeline` checks the shape; `check_pipeline` adds what needs the
machine (paths exist, optional dependencies importable); `data_problems`, for `frcorpus validate`,
reads the first rows of every file against the sources' configuration.
"""

from __future__ import annotations

import importlib.util
import re
import typing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from frcorpus.licenses import HUB_LICENSES, conflict_problems, normalize
from frcorpus.sources.config import SourceConfig, SourceFields
from frcorpus.sources.reader import check_readable
from frcorpus.sources.resolve import ResolvedSource, SourceError, resolve_source
from frcorpus.sources.sample import sample_source, source_findings
from frcorpus.stages import REGISTRY
from frcorpus.yamlconf import (
    AliasError,
    ConfigError,
    Strict,
    duplicate_keys,
    fmt_path,
    get,
    line_map,
    parse,
    stage_ids,
    suggest,
)


def _split_mb():
    return Field(
        16,
        ge=0,
        description="with fewer input files than tasks, a file of JSON lines or Parquet of at least twice this many "
        "MB is cut into parts that several tasks read, with the same records (0: one task reads each file)",
    )


class LocalExecutor(Strict):
    type: Literal["local"]
    tasks: int = Field(1, ge=1, description="tasks the work is split into (shards of the data)")
    workers: int = Field(1, ge=1, description="tasks run at the same time")
    split_mb: int = _split_mb()


class SlurmExecutor(Strict):
    type: Literal["slurm"]
    tasks: int = Field(
        1, ge=1, description="tasks the work is split into (shards of the data), run as Slurm job arrays"
    )
    workers: int = Field(-1, ge=-1, description="max concurrent array tasks (-1: no limit)")
    partition: str = Field(description="the Slurm partition the jobs are submitted to")
    time: str = Field("04:00:00", description="time limit per job (HH:MM:SS)")
    cpus_per_task: int = Field(1, ge=1, description="CPUs for each task (sbatch --cpus-per-task)")
    mem_per_cpu_gb: int = Field(2, ge=1, description="memory per CPU, in GB (sbatch --mem-per-cpu)")
    gpus_per_task: int = Field(
        0, ge=0, description="GPUs for each task of the jobs that run a model stage (sbatch --gpus; 0: none)"
    )
    qos: str | None = Field(None, description="Slurm quality of service (sbatch --qos); default: the cluster's")
    venv_path: str | None = Field(None, description="activate script sourced by each job")
    env_command: str | None = Field(
        None, description="shell command each job runs first to set up its environment (replaces venv_path)"
    )
    sbatch_args: dict[str, str] = Field(
        default_factory=dict, description="more sbatch options, e.g. {account: myproject, constraint: h100}"
    )
    job_name: str = Field(
        "frcorpus", description="prefix of the Slurm job names (frcorpus-phase0, frcorpus-barrier0, ...)"
    )
    split_mb: int = _split_mb()


class RayExecutor(Strict):
    type: Literal["ray"]
    tasks: int = Field(1, ge=1, description="tasks the work is split into (shards of the data)")
    workers: int = Field(-1, ge=-1, description="concurrent tasks (-1: as many as tasks)")
    address: str | None = Field(None, description="Ray cluster address; none starts a local instance")
    cpus_per_task: int = Field(1, ge=1, description="CPUs Ray reserves for each task")
    mem_per_cpu_gb: float = Field(2, gt=0, description="memory Ray reserves per CPU of a task, in GB")
    gpus_per_task: int = Field(
        0, ge=0, description="GPUs Ray reserves for each task of the jobs that run a model stage"
    )
    split_mb: int = _split_mb()


ExecutorConfig = Annotated[LocalExecutor | SlurmExecutor | RayExecutor, Field(discriminator="type")]


class OutputConfig(Strict):
    dir: str = Field("out", description="versions are written to <dir>/<name>/<version>/")
    compression: Literal["zstd", "snappy", "gzip", "none"] = Field(
        "zstd", description="codec of the Parquet files (none: uncompressed)"
    )
    row_group_size: int = Field(
        10_000, ge=100, description="rows per Parquet row group (a file's last one holds fewer)"
    )


class CardConfig(Strict):
    """`card:`: what the dataset card declares beyond what the run measures."""

    license: str | None = Field(
        None,
        description="licence of the published dataset, a Hub licence id (default: computed from the sources' "
        "licences: the most restrictive one that respects them all, else other)",
    )
    allow_license_conflict: bool = Field(
        False, description="publish under card.license although a source's licence forbids it (the card says so)"
    )
    tags: list[str] = Field(default_factory=list, description="tags added to frcorpus, sft, instruction-tuning")
    tokenizer: str | None = Field(
        None,
        description="a tokenizer.json file, or a folder holding one, to count tokens in the card's length plot "
        "(default: whitespace-separated words)",
    )

    @field_validator("license")
    @classmethod
    def _hub_licence(cls, licence: str | None) -> str | None:
        if licence is None:
            return None
        lid = normalize(licence)
        if lid not in HUB_LICENSES:
            raise ValueError(
                f"{licence!r} is not a licence id the Hub accepts{suggest(lid, sorted(HUB_LICENSES))} "
                "(e.g. apache-2.0, mit, cc-by-4.0, cc-by-sa-4.0, cc-by-nc-4.0; or other)"
            )
        return lid

    @field_validator("tokenizer")
    @classmethod
    def _tokenizer_exists(cls, tokenizer: str | None) -> str | None:
        if tokenizer is None:
            return None
        path = Path(tokenizer).expanduser()
        if not (path.is_file() or (path / "tokenizer.json").is_file()):
            raise ValueError(f"no tokenizer.json at {tokenizer}; give a tokenizer.json file or a folder holding one")
        return tokenizer

    @model_validator(mode="after")
    def _conflict_needs_licence(self):
        if self.allow_license_conflict and self.license is None:
            raise ValueError("allow_license_conflict: true needs card.license (the licence to publish under)")
        return self


# The discriminated union of every registered stage's Config: one place to extend (the registry).
StageConfigUnion = Annotated[Union[tuple(cls.Config for cls in REGISTRY.values())], Field(discriminator="type")]  # noqa: UP007


class PipelineConfig(Strict):
    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="the dataset's name: versions are written to <output.dir>/<name>/<version>/",
    )
    version: str = Field(
        "auto",
        pattern=r"^(auto|[0-9A-Za-z][0-9A-Za-z_.+-]*)$",
        description="version string, or auto (run date + content fingerprint)",
    )
    description: str | None = Field(
        None,
        description="free text that opens the dataset card (default: A French instruction (SFT) dataset built "
        "with frcorpus.)",
    )
    sources: list[SourceConfig] = Field(min_length=1, description="the datasets to read; at least one")
    stages: list[StageConfigUnion] = Field(  # type: ignore[valid-type]
        default_factory=list, description="the stages, run in the order written (default: none)"
    )
    executor: ExecutorConfig = Field(  # type: ignore[valid-type]
        default_factory=lambda: LocalExecutor(type="local"),
        description="where the work runs (default: this machine, 1 task, 1 worker)",
    )
    output: OutputConfig = Field(default_factory=OutputConfig, description="where versions are written, and how")
    card: CardConfig = Field(
        default_factory=CardConfig, description="what the dataset card declares beyond what the run measures"
    )

    @field_validator("sources")
    @classmethod
    def _unique_sources(cls, sources):
        seen = set()
        for s in sources:
            if s.name in seen:
                raise ValueError(f"source name {s.name!r} is used twice; source names must be unique")
            seen.add(s.name)
        return sources

    @model_validator(mode="after")
    def _unique_stage_ids(self):
        ids = [s.id for s in self.stages if s.id]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"stage id {dupes[0]!r} is used twice; stage ids must be unique")
        return self

    def stage_ids(self) -> list[str]:
        return stage_ids([(s.type, s.id) for s in self.stages])


# --------------------------------------------------------------------------- YAML with line numbers


def _by_line(problems: list[str], where: str) -> list[str]:
    """Problems `<where>:<line>: ...` in the order of their lines (stable: a line's problems keep their order)."""
    return sorted(problems, key=lambda p: int(p[len(where) + 1 :].split(":", 1)[0]))


def _clean_loc(raw: Any, loc: tuple) -> tuple:
    """Drop the discriminator tags pydantic inserts in locations of tagged unions."""
    out: list = []
    data = raw
    for part in loc:
        if isinstance(data, dict) and isinstance(part, str) and part not in data and data.get("type") == part:
            continue
        out.append(part)
        data = data[part] if isinstance(data, (dict, list)) and _has(data, part) else None
    return tuple(out)


def _has(data: Any, part: Any) -> bool:
    if isinstance(data, dict):
        return part in data
    return isinstance(part, int) and 0 <= part < len(data)


def _model_for(path: tuple, raw: dict) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at `path`, for listing valid options."""
    if not path:
        return PipelineConfig
    head = path[0]
    if head == "stages" and len(path) >= 2:
        cls = REGISTRY.get(str(get(raw, (*path[:2], "type"))))
        return _nested_model(cls.Config, path[2:]) if cls else None
    if head == "sources" and len(path) == 2:
        return SourceConfig
    if head == "sources" and len(path) == 3 and path[2] == "fields":
        return SourceFields
    if head == "executor" and len(path) == 1:
        return {"local": LocalExecutor, "slurm": SlurmExecutor, "ray": RayExecutor}.get(str(get(raw, path + ("type",))))
    if head == "output" and len(path) == 1:
        return OutputConfig
    if head == "card" and len(path) == 1:
        return CardConfig
    return None


def _nested_model(model: type[BaseModel], path: tuple) -> type[BaseModel] | None:
    """The model of a mapping nested in a stage's options (`benchmarks[0].fields`), for its option list."""
    for part in path:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        found = [t for t in _flat_types(field.annotation) if isinstance(t, type) and issubclass(t, BaseModel)]
        if not found:
            return None
        model = found[0]
    return model


def _flat_types(annotation: Any) -> list[Any]:
    args = typing.get_args(annotation)
    return [t for a in args for t in _flat_types(a)] if args else [annotation]


def _message(err: dict, raw: dict, path: tuple) -> str:
    kind = err["type"]
    value = get(raw, path)
    if kind == "extra_forbidden":
        model = _model_for(path[:-1], raw)
        options = sorted(model.model_fields) if model else []
        return f"unknown option {path[-1]!r}{suggest(path[-1], options)} (options: {', '.join(options)})"
    if kind == "union_tag_invalid":
        tag = err["ctx"]["tag"]
        if path and path[0] == "stages":
            names = sorted(REGISTRY)
            return f"unknown stage {tag!r}{suggest(tag, names)} (stages: {', '.join(names)}; see `frcorpus stages`)"
        expected = re.findall(r"'([^']*)'", err["ctx"]["expected_tags"])
        return f"unknown type {tag!r}{suggest(tag, expected)} (types: {', '.join(expected)})"
    if kind == "union_tag_not_found":
        what = "stage" if path and path[0] == "stages" else "executor"
        return f"missing 'type:'; every {what} needs one (see `frcorpus stages`)"
    if kind == "missing":
        return "required option is missing"
    if kind == "literal_error":
        return f"invalid value {value!r}; expected {err['ctx']['expected']}{suggest(value, _literal_choices(err))}"
    if kind == "value_error":
        return str(err["ctx"]["error"])
    if kind == "string_pattern_mismatch":
        return f"invalid value {value!r}: {_pattern_hint(path)}"
    return f"invalid value {value!r}: {err['msg']}"


def _literal_choices(err: dict) -> list[str]:
    return re.findall(r"'([^']*)'", err["ctx"]["expected"])


def _pattern_hint(path: tuple) -> str:
    last = path[-1] if path else ""
    return {
        "name": "use letters, digits, '.', '_' and '-', starting with a letter or digit",
        "version": "use 'auto' or a version like 0.1.0",
        "language": "use an ISO 639 code such as 'fr' or 'en'",
        "homepage": "give the web page as a URL starting with https://",
        "id": "use letters, digits, '.', '_' and '-'",
    }.get(last, "does not match the expected pattern")


def _errors_to_problems(exc: ValidationError, raw: dict, lines: dict, where: str) -> list[str]:
    problems = []
    for err in exc.errors():
        path = _clean_loc(raw, tuple(err["loc"]))
        if err["type"] == "extra_forbidden":
            line = lines.get((*path, "__key__")) or lines.get(path[:-1], 1)
        else:
            line = lines.get(path) or lines.get(path[:-1]) or lines.get(path[:1], 1)
        problems.append((line, f"{where}:{line}: {fmt_path(path)}: {_message(err, raw, path)}"))
    return [text for _, text in sorted(problems, key=lambda p: p[0])]


@dataclass(frozen=True)
class LoadedPipeline:
    path: Path
    text: str
    config: PipelineConfig
    lines: dict[tuple, int]
    # the sources' files, once `check_pipeline` has found them all (the plan then does not look again)
    sources: tuple[ResolvedSource, ...] | None = None

    def line_of(self, *path: Any) -> int:
        return self.lines.get(tuple(path), 1)


def read_yaml(path: Path, what: str, keys: str) -> tuple[str, dict, dict[tuple, int]]:
    """(the text, the mapping, YAML path -> line) of a configuration file; a ConfigError naming the file and
    line when it cannot be read, is not YAML, is not a mapping (`what` file with `keys`), repeats a key or
    has aliases that would repeat too many values."""
    text, raw, lines, duplicates = _read_yaml(path, what, keys)
    if duplicates:
        raise ConfigError(duplicates)
    return text, raw, lines


def _read_yaml(path: Path, what: str, keys: str) -> tuple[str, dict, dict[tuple, int], list[str]]:
    """`read_yaml`, with its duplicate keys returned as problems (to report with the schema's) not raised."""
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{where}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([f"{where}: cannot read the {what} file: {e}"]) from None
    try:
        node, raw = parse(text)
    except AliasError as e:
        raise ConfigError([f"{where}:{e.line}: {e}"]) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError([f"{where}:{line}: invalid YAML: {problem}"]) from None
    if not isinstance(raw, dict):
        raise ConfigError([f"{where}:1: the {what} must be a mapping with {keys}"])
    return text, raw, line_map(node), duplicate_keys(node, where)


def _read_pipeline(path: Path) -> tuple[LoadedPipeline | None, dict, dict[tuple, int], list[str]]:
    """(the pipeline if its schema validates, the raw mapping, its line map, the problems of its shape: duplicate
    keys, schema errors, licence conflicts); a ConfigError when the file is not a YAML mapping."""
    where = str(path)
    text, raw, lines, problems = _read_yaml(path, "pipeline", "name, sources and stages")
    try:
        config = PipelineConfig.model_validate(raw)
    except ValidationError as e:
        return None, raw, lines, _by_line(problems + _errors_to_problems(e, raw, lines, where), where)
    loaded = LoadedPipeline(path=path, text=text, config=config, lines=lines)
    card = config.card
    if card.license is not None and not card.allow_license_conflict:  # before any work, not when the card is due
        licence_lines = [loaded.line_of("sources", i, "license") for i in range(len(config.sources))]
        sources = [
            (i, s.name, s.license, line) for i, (s, line) in enumerate(zip(config.sources, licence_lines, strict=True))
        ]
        problems += conflict_problems(sources, card.license, where, loaded.line_of("card", "license"))
    if card.license is not None:
        problems += [f"{where}:{line}: {text}" for line, text in _undeclared_licences(loaded, card.license)]
    return loaded, raw, lines, _by_line(problems, where)


def _undeclared_licences(loaded: LoadedPipeline, card_licence: str | None) -> list[tuple[int, str]]:
    """(line, text) per source without `license:`: the card cannot attribute it, nor check that `card.license`
    respects it."""
    found = []
    for i, source in enumerate(loaded.config.sources):
        if source.license is None:
            if card_licence is None:
                consequence = "the dataset card's licence will be `unknown`"
            else:
                line = loaded.line_of("card", "license")
                consequence = f"card.license {card_licence} (line {line}) cannot be checked against it"
            found.append(
                (
                    loaded.line_of("sources", i),
                    f"sources[{i}]: source {source.name!r} declares no licence, so {consequence}; add "
                    "`license:` with the licence its upstream publishes it under (e.g. cc-by-4.0, apache-2.0)",
                )
            )
    return found


def licence_warnings(loaded: LoadedPipeline) -> list[str]:
    """`validate`'s warnings (`file:line: ...`) for sources without a licence when no `card.license` is set
    (with one, they are errors)."""
    if loaded.config.card.license is not None:
        return []
    return [f"{loaded.path}:{line}: {text}" for line, text in _undeclared_licences(loaded, None)]


def load_pipeline(path: str | Path) -> LoadedPipeline:
    """Parse and validate a pipeline file; raise ConfigError listing every problem."""
    loaded, _, _, problems = _read_pipeline(Path(path))
    if problems:
        raise ConfigError(problems)
    return loaded


def check_pipeline(path: str | Path, cwd: Path | None = None) -> tuple[LoadedPipeline | None, list[str]]:
    """Everything `validate` and `run` check before any work, in one pass: the shape (as `load_pipeline`),
    the sources (paths exist, files readable; relative to `cwd`) and the optional dependencies. Returns the
    pipeline (None if its schema does not validate) and every problem, in the order of their lines. When the
    schema does not validate, each source and stage that validates on its own is still checked."""
    path = Path(path)
    where = str(path)
    try:
        loaded, raw, lines, problems = _read_pipeline(path)
    except ConfigError as e:
        return None, e.problems
    # entry by entry, so that a schema error elsewhere hides no source or dependency problem
    sources, source_problems = resolve_sources(where, lines, _entries_that_validate(raw, "sources"), cwd)
    problems += source_problems
    if loaded is not None and not source_problems:
        loaded = replace(loaded, sources=tuple(sources))
    executor_model = _model_for(("executor",), raw)
    executor = _validated(executor_model, raw["executor"]) if executor_model else None
    problems += _dependency_problems(where, lines, _entries_that_validate(raw, "stages"), executor)
    return loaded, _by_line(problems, where)


def _validated(model: type[BaseModel], value: Any) -> BaseModel | None:
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


def _entries_that_validate(raw: dict, section: str) -> list[tuple[int, BaseModel]]:
    """(index, config) of each entry of `sources` or `stages` that validates on its own."""
    entries = raw.get(section)
    found = []
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        model = _model_for((section, i), raw)
        config = _validated(model, entry) if model else None
        if config is not None:
            found.append((i, config))
    return found


def resolve_sources(
    where: str, lines: dict, sources: list[tuple[int, SourceConfig]], cwd: Path | None
) -> tuple[list[ResolvedSource], list[str]]:
    """The files of each (index, source), checked readable, and a problem (`file:line`) per source whose
    path is missing or whose files cannot be opened."""
    resolved, problems = [], []
    for i, source in sources:
        try:
            src = resolve_source(source, cwd)
            check_readable(src)
            resolved.append(src)
        except SourceError as e:
            problems.append(f"{where}:{lines.get(('sources', i, 'path'), 1)}: {e}")
    return resolved, problems


def data_problems(loaded: LoadedPipeline, sources: list[ResolvedSource]) -> tuple[list[str], list[str]]:
    """(errors, warnings) that the first rows of each source's files show (`sources.sample`), each
    `file:line: sources[i].<key>: ...`, in the order of their lines."""
    where = str(loaded.path)
    index = {source.name: i for i, source in enumerate(loaded.config.sources)}
    errors, warnings = [], []
    for src in sources:
        i = index[src.config.name]
        for finding in source_findings(src, sample_source(src)):
            path = ("sources", i, *finding.where)
            line = loaded.lines.get(path) or loaded.line_of("sources", i)
            (errors if finding.error else warnings).append(f"{where}:{line}: {fmt_path(path)}: {finding.text}")
    return _by_line(errors, where), _by_line(warnings, where)


def missing_dependencies(loaded: LoadedPipeline) -> list[str]:
    """Optional dependencies of the stages and executor that are not importable, with install hints."""
    cfg = loaded.config
    return _dependency_problems(str(loaded.path), loaded.lines, list(enumerate(cfg.stages)), cfg.executor)


def _dependency_problems(where: str, lines: dict, stages: list[tuple[int, Any]], executor: Any) -> list[str]:
    problems = []
    for i, stage in stages:
        for module, hint in REGISTRY[stage.type].requirements(stage).items():
            if importlib.util.find_spec(module) is None:
                problems.append(
                    f"{where}:{lines.get(('stages', i), 1)}: stages[{i}] ({stage.type}): needs the '{module}' "
                    f"package; install it with: {hint}"
                )
    if executor is not None and executor.type == "ray" and importlib.util.find_spec("ray") is None:
        problems.append(
            f"{where}:{lines.get(('executor',), 1)}: executor.type: ray needs the 'ray' package; "
            "install it with: pip install 'frcorpus[ray]'"
        )
    return problems
