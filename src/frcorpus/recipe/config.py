"""The recipe YAML: dataset reference, base model, and each upstream tool's own configuration verbatim.

    name: cpu-demo
    model: smollm2                       # base model: local folder, GGUF file, 'smollm2' or a Hub id
    dataset: out/quickstart-fr           # a version directory, or a dataset folder (latest version)
    output_dir: out/recipes/cpu-demo     # sft/, merged/, eval/ go here
    sft: {...}                           # a TRL SFTConfig, keys as TRL names them
    merge: {...}                         # a MergeKit YAML; ${base} and ${sft} stand for the two models
    eval: {...}                          # benchmarks (frcorpus.recipe.evaluate.EvalConfig)

Everything is checked before any work, and every problem is reported at once with its file and line.
TRL ignores keys that its dataclass does not have, so each `sft:` key is checked against the installed
`SFTConfig` fields and its value coerced to the field's type with pydantic (PyYAML reads `2e-5` as a
string: TRL would take it as such and fail in the optimizer).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import importlib.util
import json
import re
import tempfile
import typing
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from ..config import read_yaml
from ..yamlconf import ConfigError, Strict, fmt_path, suggest

TRAIN_HINT = "pip install 'frcorpus[train]'"
NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
HUB_REPO = r"^[A-Za-z0-9][\w.-]*/[\w.-]+$"

# sft keys that frcorpus sets itself, and keys that older TRL/transformers versions had.
SFT_OWNED = {
    "output_dir": "frcorpus sets it to <output_dir>/sft; set the recipe's top-level output_dir instead",
}
SFT_RENAMED = {
    "warmup_ratio": "transformers 5 removed it: a warmup_steps below 1 is a fraction of the steps (warmup_steps: 0.1)",
    "max_seq_length": "TRL renamed it max_length",
    "evaluation_strategy": "transformers renamed it eval_strategy",
}


class DatasetRef(Strict):
    """Which dataset version to train on: a local version directory, a pushed one on the Hub, or the version
    a pipeline file writes (run first unless its output already holds that run's version)."""

    path: str | None = Field(
        None, description="a version directory <out>/<name>/<version>, or <out>/<name> for its latest version"
    )
    hub: str | None = Field(None, pattern=HUB_REPO, description="a dataset pushed with `frcorpus push`: org/name")
    pipeline: str | None = Field(
        None,
        description="a pipeline YAML file: the version its run writes (the run is skipped when a version made by "
        "the same frcorpus, configuration and input files exists)",
    )
    revision: str | None = Field(None, description="with hub: the version tag or commit (default: main)")
    split: Literal["auto", "train", "all"] = Field(
        "auto", description="auto: the train split when the version has one (split stage), else all kept records"
    )
    max_records: int | None = Field(None, ge=1, description="train on the first N records only (a quick run)")

    @model_validator(mode="after")
    def _one_source(self) -> DatasetRef:
        if [self.path, self.hub, self.pipeline].count(None) != 2:
            raise ValueError(
                "give exactly one of path (a version directory), hub (org/name) and pipeline (a pipeline file)"
            )
        if self.pipeline is not None and not Path(self.pipeline).is_file():
            raise ValueError(
                f"pipeline {self.pipeline}: no such file (relative paths are relative to the working directory)"
            )
        if self.revision is not None and self.hub is None:
            raise ValueError("revision goes with hub; a local version directory is already one version")
        return self


class RecipeConfig(Strict):
    name: str = Field(pattern=NAME, description="the recipe's name (model cards and results)")
    model: str = Field(description="the base model: a local folder, a GGUF file, 'smollm2', or a Hub id")
    revision: str | None = Field(None, description="with a Hub model id: the commit or tag")
    dataset: DatasetRef
    output_dir: str = Field(description="where sft/, merged/ and eval/ are written (relative to the working dir)")
    chat_template: str = Field(
        "auto",
        description="auto: keep the model's template if it has {% generation %} markers, else TRL's training "
        "template for it, else frcorpus's ChatML one; or a path to a .jinja file",
    )
    sft: dict[str, Any] = Field(description="a TRL SFTConfig: its keys as TRL names them (output_dir excepted)")
    merge: dict[str, Any] | None = Field(None, description="a MergeKit YAML; ${base} and ${sft} name the two models")
    eval: Any = Field(None, description="benchmarks: see frcorpus.recipe.evaluate.EvalConfig")

    @field_validator("dataset", mode="before")
    @classmethod
    def _dataset_shorthand(cls, value: Any) -> Any:
        return dataset_shorthand(value)

    @field_validator("chat_template")
    @classmethod
    def _template_file(cls, value: str) -> str:
        return check_chat_template(value)


def dataset_shorthand(value: Any) -> Any:
    """`dataset: out/name` for `dataset: {path: out/name}`."""
    return {"path": value} if isinstance(value, str) else value


def check_chat_template(value: str) -> str:
    if value not in ("auto", "chatml") and not Path(value).is_file():
        raise ValueError(f"{value}: no such file; give 'auto', 'chatml' or a .jinja file with generation markers")
    return value


# --------------------------------------------------------------------------- TRL's SFTConfig


@functools.cache
def sft_field_types() -> dict[str, Any]:
    """SFTConfig's init fields and their annotations, from the installed TRL."""
    from trl import SFTConfig

    hints = typing.get_type_hints(SFTConfig)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(SFTConfig) if f.init}


@functools.cache
def _adapter(annotation: Any) -> TypeAdapter | None:
    try:
        return TypeAdapter(annotation, config=ConfigDict(arbitrary_types_allowed=True))
    except Exception:  # noqa: BLE001 - a type pydantic cannot describe: TRL's own checks remain
        return None


def check_sft(raw: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[tuple, str]]]:
    """(the values coerced to SFTConfig's field types, problems as (key path, message))."""
    if importlib.util.find_spec("trl") is None:
        return {}, [((), f"needs TRL to check these keys; install it with: {TRAIN_HINT}")]
    fields = sft_field_types()
    values: dict[str, Any] = {}
    problems: list[tuple[tuple, str]] = []
    for key, value in raw.items():
        if key in SFT_OWNED:
            problems.append(((key,), SFT_OWNED[key]))
        elif key not in fields:
            hint = SFT_RENAMED.get(key)
            hint = f" ({hint})" if hint else suggest(key, list(fields))
            problems.append(((key,), f"unknown SFTConfig key {key!r}{hint}"))
        else:
            adapter = _adapter(fields[key])
            try:
                values[key] = adapter.validate_python(value) if adapter else value
            except ValidationError as e:
                expected = _type_name(fields[key])
                problems.append(((key,), f"invalid value {value!r}: expected {expected} ({e.errors()[0]['msg']})"))
                continue
            choices = _enum_choices(fields[key])  # `SchedulerType | str`: the str must still name a member
            if choices and isinstance(value, str) and value not in choices:
                problems.append(
                    ((key,), f"invalid value {value!r}{suggest(value, choices)} (choices: {', '.join(choices)})")
                )
    if not problems:
        try:  # TRL's and transformers' own checks (choices, conflicting options); not the machine's
            build_sft_args(values, Path(tempfile.gettempdir()) / "frcorpus-validate", validate_only=True)
        except ValueError as e:
            problems.append(((), str(e).strip()))
    return values, problems


def build_sft_args(values: dict[str, Any], output_dir: Path, validate_only: bool = False):
    """The SFTConfig. `validate_only` checks the options on any machine: a GPU config names bf16, which
    transformers refuses on a machine without a GPU unless use_cpu is set."""
    from trl import SFTConfig

    kwargs = {"report_to": "none", **values, "output_dir": str(output_dir)}
    if validate_only:
        kwargs["use_cpu"] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers' renames, reported by check_sft instead
        return SFTConfig(**kwargs)


def _enum_choices(annotation: Any) -> list[str]:
    for arg in typing.get_args(annotation) or (annotation,):
        if isinstance(arg, type) and issubclass(arg, enum.Enum):
            return [str(m.value) for m in arg]
    return []


def _type_name(annotation: Any) -> str:
    args = typing.get_args(annotation)
    if args:
        return " or ".join(_type_name(a) for a in args)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in annotation)
    return getattr(annotation, "__name__", str(annotation)).replace("NoneType", "null")


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class LoadedRecipe:
    path: Path
    text: str
    config: RecipeConfig
    lines: dict[tuple, int]
    sft_values: dict[str, Any]  # `sft:` coerced to SFTConfig's types
    eval_config: Any  # EvalConfig or None

    def line_of(self, *path: Any) -> int:
        return self.lines.get(tuple(path), 1)

    @property
    def output_dir(self) -> Path:
        return Path(self.config.output_dir)


def load_recipe(path: str | Path, dataset: str | None = None) -> LoadedRecipe:
    """Parse and check a recipe file; raise ConfigError listing every problem. `dataset` overrides the
    file's dataset (a version directory or dataset folder)."""
    path = Path(path)
    text, raw, lines = read_yaml(path, "recipe", "name, model, dataset, output_dir and sft")
    if dataset is not None:
        raw = {**raw, "dataset": {"path": dataset}}
    problems = Problems(str(path), lines)
    config = None
    try:
        config = RecipeConfig.model_validate(raw)
    except ValidationError as e:
        problems.invalid((), e, raw)
    sft_values, eval_config = check_tools(raw, problems)
    if problems.found or config is None:
        raise problems.error()
    return LoadedRecipe(path, text, config, lines, sft_values, eval_config)


class Problems:
    """The problems of one configuration file, each with its line; raised together, in line order."""

    def __init__(self, where: str, lines: dict[tuple, int]):
        self.where, self.lines = where, lines
        self.found: list[tuple[int, str]] = []

    def add(self, section: tuple, found: list[tuple[tuple, str]]) -> None:
        """Problems as (key path inside `section`, message)."""
        lines = self.lines
        for sub, message in found:
            full = (*section, *sub)
            line = lines.get((*full, "__key__")) or lines.get(full) or lines.get(section, 1)
            self.found.append((line, f"{self.where}:{line}: {fmt_path(full)}: {message}"))

    def invalid(self, section: tuple, error: ValidationError, raw: Any) -> None:
        """A pydantic model's errors over `raw`, the mapping at `section`."""
        self.add(section, [(tuple(err["loc"]), error_message(err, raw)) for err in error.errors()])

    def error(self) -> ConfigError:
        return ConfigError([text for _, text in sorted(self.found, key=lambda p: p[0])])


def check_tools(raw: dict[str, Any], problems: Problems) -> tuple[dict[str, Any], Any]:
    """Check the tools' sections (`sft:` against TRL, `merge:` against MergeKit, `eval:`) into `problems`;
    return `sft:` coerced to SFTConfig's types and the EvalConfig (None without an eval section)."""
    sft_values: dict[str, Any] = {}
    if isinstance(raw.get("sft"), dict):
        sft_values, found = check_sft(raw["sft"])
        problems.add(("sft",), found)
    if isinstance(raw.get("merge"), dict):
        from .merge import check_merge

        problems.add(("merge",), check_merge(raw["merge"]))
    eval_config = None
    if raw.get("eval") is not None:
        from .evaluate import EvalConfig, check_eval

        try:
            eval_config = EvalConfig.model_validate(raw["eval"])
        except ValidationError as e:
            problems.invalid(("eval",), e, raw["eval"])
        else:
            problems.add(("eval",), check_eval(eval_config))
    return sft_values, eval_config


def error_message(err: dict, raw: Any) -> str:
    """A pydantic error over `raw` as a configuration message."""
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"unknown option {err['loc'][-1]!r}"
    if kind == "missing":
        return "required option is missing"
    if kind == "value_error":
        return str(err["ctx"]["error"])
    value = raw
    for part in err["loc"]:
        value = value.get(part) if isinstance(value, dict) else None
    return f"invalid value {value!r}: {err['msg']}"


def input_key(*parts: Any) -> str:
    """A short hash of what a recipe step depends on (state.json, frcorpus_sft.json)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- this machine


def machine_problems(loaded: LoadedRecipe, steps: tuple[str, ...] = ("sft", "merge", "eval")) -> list[str]:
    """What stops the given steps on this machine (packages, GPU, bitsandbytes), with the fix; the config
    itself was checked by load_recipe."""
    where = str(loaded.path)
    problems = []
    needs = {"sft": ["trl"], "merge": ["mergekit"], "eval": ["lm_eval"]}
    for step in steps:
        for module in needs[step]:
            if importlib.util.find_spec(module) is None:
                problems.append(f"{where}: recipe {step} needs the '{module}' package; install it with: {TRAIN_HINT}")
    if "sft" in steps:
        sft = loaded.sft_values
        cuda = _cuda_available()
        for key in ("bf16", "fp16", "tf32"):
            if sft.get(key) and not cuda and not sft.get("use_cpu"):
                problems.append(
                    f"{where}:{loaded.line_of('sft', key)}: sft.{key}: true needs a CUDA GPU and this machine has "
                    "none; run on a GPU machine, or set bf16: false and use_cpu: true for a CPU run"
                )
        optim = str(sft.get("optim", ""))
        if re.search(r"bnb|8bit|paged", optim) and "torch_8bit" not in optim and not _has("bitsandbytes"):
            problems.append(
                f"{where}:{loaded.line_of('sft', 'optim')}: sft.optim: {optim} needs bitsandbytes; install it "
                "with: pip install bitsandbytes (a CUDA machine), or use optim: adamw_torch"
            )
    if "merge" in steps and loaded.config.merge is None:
        problems.append(f"{where}: the recipe has no merge: section; add one (see pipelines/recipes/cpu-demo.yaml)")
    if "eval" in steps and loaded.eval_config is None:
        problems.append(f"{where}: the recipe has no eval: section; add one (see pipelines/recipes/cpu-demo.yaml)")
    return problems


def machine_warnings(loaded: LoadedRecipe, steps: tuple[str, ...] = ("sft", "merge", "eval")) -> list[str]:
    """What runs but slowly on this machine, with the fix: bfloat16 on a CPU without bfloat16 instructions
    (AVX512-BF16 or AMX), which PyTorch then emulates. Measured on a 2-core AVX2 EPYC with SmolLM2-135M:
    SFT with bf16 autocast 5 tokens/s against 77 in float32; generation at batch 16, 50 against 118."""
    if _cuda_available() or cpu_has_bf16() is not False:
        return []
    where, warnings_ = str(loaded.path), []
    if "sft" in steps and loaded.sft_values.get("bf16"):
        warnings_.append(
            f"{where}:{loaded.line_of('sft', 'bf16')}: sft.bf16: this CPU has no bfloat16 instructions "
            "(AVX512-BF16, AMX): training would be about 15x slower than in float32; set bf16: false"
        )
    eval_config = loaded.eval_config
    if (
        "eval" in steps
        and eval_config is not None
        and eval_config.dtype == "bfloat16"
        and eval_config.device
        in (
            "auto",
            "cpu",
        )
    ):
        warnings_.append(
            f"{where}:{loaded.line_of('eval', 'dtype')}: eval.dtype: bfloat16 on this CPU without bfloat16 "
            "instructions: generation about 2x slower than in float32; set dtype: float32"
        )
    return warnings_


@functools.cache
def cpu_has_bf16() -> bool | None:
    """Whether the CPU has bfloat16 instructions (Linux: /proc/cpuinfo flags); None where it cannot tell."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()
