"""The compare file of `frcorpus recipe compare`: one base model, two or more arms (dataset versions), one
SFT, one optional merge and one evaluation for all, and the token budget every arm trains on.

    name: cpu-ablation
    model: smollm2                      # the base model, as a recipe's `model:`
    arms:                               # name -> dataset, as a recipe's `dataset:`; the first is the reference
      raw: out/ablation-raw
      curated: {path: out/ablation-curated, split: all}
    output_dir: out/compare/cpu-ablation
    seed: 0                             # the budget's subsample, the bootstrap, and sft.seed when not given
    budget: {tokens: 200000}            # default: the smallest arm's total
    leak_check: {on_leak: remove}       # or fail; methods, decontaminate: {n_grams: 13, ...}
    bootstrap: {resamples: 10000, confidence: 0.95}
    sft: {...}                          # a TRL SFTConfig, the same for every arm
    merge: {...}                        # optional: a MergeKit YAML with ${base} and ${sft}, per arm
    eval: {...}                         # the recipe's EvalConfig: the same tasks for every arm and the base

Every problem is reported at once with its line, as for a recipe (`config.load_recipe`); the `sft:`,
`merge:` and `eval:` sections get the recipe's own checks.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from ..config import read_yaml
from ..stages.decontam.stage import default_methods
from ..yamlconf import ConfigError, Strict
from .config import (
    NAME,
    DatasetRef,
    LoadedRecipe,
    Problems,
    RecipeConfig,
    check_chat_template,
    check_tools,
    dataset_shorthand,
    error_message,
)

BASE = "base"  # the base model's label in the results: no arm may take it
# decontaminate options that compare sets itself
LEAK_OWNED = {
    "type": "set by compare",
    "id": "set by compare",
    "benchmarks": "the benchmarks are the eval tasks' items, written by compare",
    "methods": "give leak_check.methods instead",
    "annotate_only": "leak_check.on_leak says what happens to a leaked record",
}


class Budget(Strict):
    tokens: int | None = Field(
        None,
        ge=1,
        description="tokens each arm trains on per epoch, counted as the SFT sees them (chat template, "
        "max_length); default: the smallest arm's total after the leak check",
    )


class LeakCheck(Strict):
    on_leak: Literal["remove", "fail"] = Field(
        "remove", description="remove: leaked records are left out and counted; fail: stop before any training"
    )
    methods: list[Literal["ngram", "embedding"]] | None = Field(
        None, description="decontaminate's methods (default: ngram, and embedding when its model is installed)"
    )
    decontaminate: dict[str, Any] = Field(
        default_factory=dict,
        description="options of the decontaminate stage (n_grams, min_overlap, check, embedding_threshold, ...)",
    )


class Bootstrap(Strict):
    resamples: int = Field(10_000, ge=100, description="paired bootstrap resamples over the items")
    confidence: float = Field(0.95, gt=0, lt=1, description="the interval's confidence (percentile interval)")


class CompareConfig(Strict):
    name: str = Field(pattern=NAME, description="the comparison's name (reports, model names)")
    model: str = Field(description="the base model: a local folder, a GGUF file, 'smollm2', or a Hub id")
    revision: str | None = Field(None, description="with a Hub model id: the commit or tag")
    arms: dict[str, DatasetRef] = Field(
        description="arm name -> dataset (a version directory, a dataset folder or {hub, revision}); the first "
        "arm is the reference of the deltas"
    )
    output_dir: str = Field(description="where arms/<arm>/, base/ and the reports are written")
    seed: int = Field(0, description="seeds the budget's subsample, the bootstrap, and the SFT when sft.seed is unset")
    chat_template: str = Field("auto", description="as a recipe's chat_template")
    budget: Budget = Field(default_factory=Budget)
    leak_check: LeakCheck = Field(default_factory=LeakCheck)
    bootstrap: Bootstrap = Field(default_factory=Bootstrap)
    sft: dict[str, Any] = Field(description="a TRL SFTConfig, the same for every arm")
    merge: dict[str, Any] | None = Field(None, description="a MergeKit YAML, applied to each arm's SFT model")
    eval: Any = Field(description="benchmarks: see frcorpus.recipe.evaluate.EvalConfig")

    @field_validator("arms", mode="before")
    @classmethod
    def _dataset_shorthand(cls, value: Any) -> Any:
        return {k: dataset_shorthand(v) for k, v in value.items()} if isinstance(value, dict) else value

    @field_validator("chat_template")
    @classmethod
    def _template_file(cls, value: str) -> str:
        return check_chat_template(value)


@dataclass(frozen=True)
class LoadedCompare:
    path: Path
    text: str
    config: CompareConfig
    lines: dict[tuple, int]
    sft_values: dict[str, Any]  # `sft:` coerced to SFTConfig's types, seed filled in
    eval_config: Any  # EvalConfig
    kinds: tuple[str, ...]  # each arm's models to evaluate: ("sft",), ("merged",) or both
    with_base: bool  # the base model is evaluated (the deltas to the base)
    leak_methods: tuple[str, ...]

    @property
    def output_dir(self) -> Path:
        return Path(self.config.output_dir)

    @property
    def arms(self) -> list[str]:
        return list(self.config.arms)

    def arm_dir(self, arm: str) -> Path:
        return self.output_dir / "arms" / arm

    def arm_recipe(self, arm: str) -> LoadedRecipe:
        """The recipe of one arm (its own output folder, sft/ and merged/ inside), for the recipe's steps;
        its dataset without max_records, which the arm's selection has applied already."""
        cfg = self.config
        recipe = RecipeConfig(
            name=f"{cfg.name}-{arm}",
            model=cfg.model,
            revision=cfg.revision,
            dataset=cfg.arms[arm].model_copy(update={"max_records": None}),
            output_dir=str(self.arm_dir(arm)),
            chat_template=cfg.chat_template,
            sft=cfg.sft,
            merge=cfg.merge,
        )
        return LoadedRecipe(self.path, self.text, recipe, self.lines, self.sft_values, self.eval_config)

    def labels(self, arm: str) -> dict[str, str]:
        """kind -> the label of that model of the arm in the results (the arm's name when there is one kind)."""
        return {kind: arm if len(self.kinds) == 1 else f"{arm}.{kind}" for kind in self.kinds}


def is_compare_file(path: str | Path) -> bool:
    """A YAML mapping with `arms:`: a compare file rather than a recipe (for `recipe validate`)."""
    try:
        _, raw, _ = read_yaml(Path(path), "compare", "name, model, arms, output_dir, sft and eval")
    except ConfigError:
        return False
    return "arms" in raw


def load_compare(path: str | Path) -> LoadedCompare:
    """Parse and check a compare file; raise ConfigError listing every problem with its line."""
    path = Path(path)
    text, raw, lines = read_yaml(path, "compare", "name, model, arms, output_dir, sft and eval")
    problems = Problems(str(path), lines)
    config = None
    try:
        config = CompareConfig.model_validate(raw)
    except ValidationError as e:
        problems.invalid((), e, raw)
    _check_arms(raw.get("arms"), problems)
    if isinstance(raw.get("sft"), dict) and "max_steps" in raw["sft"]:
        problems.add(
            ("sft", "max_steps"),
            [
                (
                    (),
                    "compare gives every arm the same tokens (budget:), and max_steps would stop each arm after a "
                    "number of steps whatever its tokens; remove it and set num_train_epochs",
                )
            ],
        )
    sft_values, eval_config = check_tools(raw, problems)
    kinds, with_base = _eval_models(raw, eval_config, problems)
    methods = _leak_methods(raw.get("leak_check"), problems)
    if problems.found or config is None:
        raise problems.error()
    sft_values = {"seed": config.seed, **sft_values}
    return LoadedCompare(path, text, config, lines, sft_values, eval_config, kinds, with_base, methods)


def _check_arms(arms: Any, problems: Problems) -> None:
    if not isinstance(arms, dict):
        return  # the schema's error
    if len(arms) < 2:
        problems.add(("arms",), [((), f"a comparison needs two arms or more, not {len(arms)}; add another dataset")])
    for name in arms:
        if not isinstance(name, str) or not re.match(NAME, name):
            problems.add(
                ("arms", name), [((), f"arm name {name!r}: use letters, digits, '.', '_' and '-' (a folder name)")]
            )
        elif name == BASE:
            problems.add(("arms", name), [((), "'base' names the base model in the results; call the arm otherwise")])


def _eval_models(raw: dict[str, Any], eval_config: Any, problems: Problems) -> tuple[tuple[str, ...], bool]:
    """Each arm's models to evaluate and whether the base is: eval.models when given, else the base and each
    arm's final model (merged with a merge: section, else the SFT model)."""
    if eval_config is None:
        return (), False
    merge = isinstance(raw.get("merge"), dict)
    if "models" not in eval_config.model_fields_set:
        return ("merged",) if merge else ("sft",), True
    models = eval_config.models
    kinds = tuple(m for m in models if m != BASE)
    if not kinds:
        problems.add(("eval", "models"), [((), "compare evaluates each arm's model: list sft, merged or both")])
    if "merged" in kinds and not merge:
        problems.add(("eval", "models"), [((), "merged needs a merge: section; add one, or list sft")])
    return kinds, BASE in models


def _leak_methods(raw: Any, problems: Problems) -> tuple[str, ...]:
    """The decontaminate methods, and the options checked by the decontaminate stage's own config (on a
    placeholder benchmark: the real one is the eval items, written at run time)."""
    raw = raw if isinstance(raw, dict) else {}
    options = raw.get("decontaminate") if isinstance(raw.get("decontaminate"), dict) else {}
    owned = [((key,), LEAK_OWNED[key]) for key in options if key in LEAK_OWNED]
    problems.add(("leak_check", "decontaminate"), owned)
    options = {k: v for k, v in options.items() if k not in LEAK_OWNED}
    methods = raw.get("methods")
    if not isinstance(methods, list):
        methods = default_methods(options)  # the decontaminate stage's own default
    with tempfile.TemporaryDirectory() as tmp:
        try:
            leak_stage_config(options, methods, [placeholder_benchmark(Path(tmp))])
        except ValidationError as e:
            for err in e.errors():
                loc = tuple(err["loc"])
                if loc[:1] == ("methods",):
                    continue  # leak_check.methods: the schema's error
                if loc and loc[0] in options:
                    problems.add(("leak_check", "decontaminate"), [(loc, error_message(err, options))])
                else:  # what the methods need (the embedding model installed, its options)
                    section = ("leak_check", "methods") if "methods" in raw else ("leak_check",)
                    problems.add(section, [((), error_message(err, options))])
    return tuple(methods)


def leak_stage_config(options: dict[str, Any], methods: list[str], benchmarks: list[dict[str, Any]]):
    """The decontaminate stage's config over the given benchmarks (raises pydantic's ValidationError)."""
    from ..stages.decontam import Decontaminate

    return Decontaminate.Config.model_validate(
        {**options, "type": "decontaminate", "methods": list(methods), "benchmarks": benchmarks}
    )


def placeholder_benchmark(folder: Path) -> dict[str, Any]:
    path = folder / "items.jsonl"
    path.write_text('{"id": "1", "question": "une question"}\n', encoding="utf-8")
    return {"name": "items", "path": str(path), "format": "jsonl", "fields": {"id": "id", "prompt": "question"}}
