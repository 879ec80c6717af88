"""The recipe's steps over one output folder, and `frcorpus recipe luth`: SFT, merge, eval in order.

    <output_dir>/recipe.yaml        the recipe file, byte for byte (the last one run)
    <output_dir>/state.json         per step: its key, when it finished, how long it took
    <output_dir>/sft/               the fine-tuned model, frcorpus_sft.json, TRL checkpoints
    <output_dir>/merged/            the merged model, its model card, mergekit_config.yml
    <output_dir>/eval/              results.json, results.md, results.png

Each step has a key: a hash of what it depends on (the SFT's options and dataset; the merge section and
the SFT's key; the eval section and the merge's key). A finished step whose key is unchanged is skipped,
so `luth` picks up where it stopped; a step whose inputs changed is run again (the SFT refuses, since
it overwrites a trained model: `--force`). An interrupted SFT resumes from its last checkpoint.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .config import LoadedRecipe, input_key
from .sft import read_marker, run_sft, sft_dir

logger = logging.getLogger(__name__)

STEPS = ("sft", "merge", "eval")


class StepError(ValueError):
    """A step that cannot run yet or as configured (the message says what to do)."""


class RecipeState:
    def __init__(self, loaded: LoadedRecipe):
        self.loaded = loaded
        self.path = loaded.output_dir / "state.json"
        self.data: dict[str, Any] = (
            json.loads(self.path.read_text(encoding="utf-8")) if self.path.is_file() else {"steps": {}}
        )

    def done(self, step: str, key: str) -> bool:
        entry = self.data["steps"].get(step)
        return bool(entry and entry.get("key") == key)

    def record(self, step: str, key: str, seconds: float, **extra: Any) -> None:
        finished = datetime.now(UTC).replace(microsecond=0).isoformat()
        self.data["steps"][step] = {"key": key, "finished": finished, "seconds": round(seconds, 1), **extra}
        self.data["recipe"] = self.loaded.config.name
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=2) + "\n", encoding="utf-8")
        (self.loaded.output_dir / "recipe.yaml").write_text(self.loaded.text, encoding="utf-8")

    def key(self, step: str) -> str | None:
        return (self.data["steps"].get(step) or {}).get("key")


def _base(loaded: LoadedRecipe) -> tuple[Path, str]:
    from ..llm.models import local_model

    return local_model(loaded.config.model, loaded.config.revision)


def step_sft(loaded: LoadedRecipe, force: bool = False) -> dict[str, Any]:
    state = RecipeState(loaded)
    trained = read_marker(sft_dir(loaded)) is not None and not force
    started = time.perf_counter()
    record = run_sft(loaded, force=force)  # checks that a model already there was trained on the same inputs
    seconds = time.perf_counter() - started
    if not trained or not state.done("sft", record["key"]):
        state.record("sft", record["key"], seconds, train=record["train"])
    return {"step": "sft", "seconds": seconds, "skipped": trained, "record": record}


def _sft_record(loaded: LoadedRecipe, step: str) -> dict[str, Any]:
    record = read_marker(sft_dir(loaded))
    if record is None:
        raise StepError(
            f"recipe {step}: {sft_dir(loaded)} has no trained model; run `frcorpus recipe sft {loaded.path}` first"
        )
    return record


def merge_key(loaded: LoadedRecipe, sft_record: dict[str, Any]) -> str:
    return input_key(sft_record["key"], loaded.config.merge)


def step_merge(loaded: LoadedRecipe, force: bool = False) -> dict[str, Any]:
    from .merge import run_merge

    if loaded.config.merge is None:
        raise StepError(f"{loaded.path}: the recipe has no merge: section")
    state = RecipeState(loaded)
    record = _sft_record(loaded, "merge")
    key = merge_key(loaded, record)
    out = loaded.output_dir / "merged"
    if state.done("merge", key) and (out / "config.json").is_file() and not force:
        logger.info("merge: %s is up to date; skipping", out)
        return {"step": "merge", "seconds": 0.0, "skipped": True}
    started = time.perf_counter()
    base, revision = _base(loaded)
    context = {
        "dataset": record["dataset"],
        "base_model": loaded.config.model,
        "base_revision": revision,
        "recipe_name": loaded.config.name,
        "sft": _sft_summary(record),
    }
    if out.exists():  # an older merge (other inputs, or --force): derived, so replaced
        shutil.rmtree(out)
    run_merge(loaded.config.merge, base, sft_dir(loaded), out, context=context)
    seconds = time.perf_counter() - started
    state.record("merge", key, seconds)
    return {"step": "merge", "seconds": seconds}


def _sft_summary(record: dict[str, Any]) -> dict[str, Any]:
    sft, train = record.get("sft", {}), record.get("train", {})
    summary = {k: sft[k] for k in ("num_train_epochs", "max_steps", "learning_rate", "lr_scheduler_type") if k in sft}
    summary.update(
        records=record.get("counts", {}).get("trained"),
        steps=train.get("steps"),
        loss_first=_round(train.get("loss_first")),
        loss_last=_round(train.get("loss_last")),
        chat_template=record.get("chat_template"),
    )
    return {k: v for k, v in summary.items() if v is not None}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def step_eval(loaded: LoadedRecipe, force: bool = False) -> dict[str, Any]:
    from .evaluate import run_eval

    cfg = loaded.eval_config
    if cfg is None:
        raise StepError(f"{loaded.path}: the recipe has no eval: section")
    state = RecipeState(loaded)
    base, revision = _base(loaded)
    folders = {"base": base, "sft": sft_dir(loaded), "merged": loaded.output_dir / "merged"}
    for label in cfg.models:
        if label != "base" and not (folders[label] / "config.json").is_file():
            step = "sft" if label == "sft" else "merge"
            raise StepError(
                f"recipe eval: eval.models lists {label} but {folders[label]} has no model; run "
                f"`frcorpus recipe {step} {loaded.path}` first, or leave {label} out of eval.models"
            )
    key = input_key(cfg.model_dump(), revision, state.key("sft"), state.key("merge"))
    out = loaded.output_dir / "eval"
    if state.done("eval", key) and (out / "results.json").is_file() and not force:
        logger.info("eval: %s is up to date; skipping", out)
        return {"step": "eval", "seconds": 0.0, "skipped": True}
    started = time.perf_counter()
    record = read_marker(sft_dir(loaded)) or {}
    context = {"base model": f"{loaded.config.model} ({revision})"}
    if record.get("dataset"):
        data = record["dataset"]
        context["dataset"] = f"{data.get('name')} {data.get('version')}"
    results = run_eval(
        cfg, {label: folders[label] for label in cfg.models}, out, title=loaded.config.name, context=context
    )
    seconds = time.perf_counter() - started
    state.record("eval", key, seconds)
    return {"step": "eval", "seconds": seconds, "results": results}


STEP_FUNCTIONS: dict[str, Callable[..., dict[str, Any]]] = {"sft": step_sft, "merge": step_merge, "eval": step_eval}
