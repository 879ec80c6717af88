"""`frcorpus recipe compare`: train the same base model on two or more dataset versions (arms) with the same
SFT on the same number of tokens, evaluate each and the base on the same items, and report the deltas with
paired bootstrap intervals.

    <output_dir>/compare.yaml              the compare file, byte for byte (the last one run)
    <output_dir>/state.json                per arm: its key, each step's seconds; the base's eval key
    <output_dir>/leak/data/<task>.jsonl    the eval items the arms are checked against
    <output_dir>/arms/<arm>/train/         the arm's training set (data/train-00000.parquet, selection.json)
    <output_dir>/arms/<arm>/sft/, merged/  the arm's models (the recipe's SFT and merge steps)
    <output_dir>/arms/<arm>/eval/          the arm's evaluation (results.json, samples/<label>/<task>.jsonl)
    <output_dir>/base/eval/                the base model's evaluation
    <output_dir>/compare.json, .md, .png   the comparison

Steps, per arm: prepare (read, leak check, tokens: compare_data.py; every arm before any training, since
the default budget is the smallest arm's total), select (the seeded subsample to the budget), sft, merge,
eval; then the base's eval, then the report. An arm whose key (its selection, which holds its dataset's
fingerprint and the budget, and the sft, merge and eval sections) is unchanged and whose results exist is
not trained or evaluated again; inside an arm that changed, the SFT is redone only if its own inputs
changed (its key), the merge and the eval likewise.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..resources import package_version
from ..version.writer import atomic_write_bytes, atomic_write_text
from .compare_config import BASE, LoadedCompare
from .compare_data import (
    ArmPool,
    CompareError,
    Selection,
    arm_pool,
    choose_budget,
    eval_items,
    leak_stage,
    select,
    token_counter,
    write_selection,
)
from .compare_report import compare_markdown, compare_png, task_table
from .config import build_sft_args, input_key

logger = logging.getLogger(__name__)

VERSIONED = ("frcorpus", "trl", "transformers", "torch", "lm_eval", "mergekit", "numpy")
Progress = Callable[[str, str, float | None, str], None]  # (arm or "base", step, seconds or None, note)


def _quiet(who: str, step: str, seconds: float | None, note: str) -> None:
    logger.info("compare: %s: %s%s%s", who, step, f" {seconds:.1f} s" if seconds is not None else "", f" ({note})")


class CompareState:
    def __init__(self, folder: Path):
        self.path = folder / "state.json"
        self.data: dict[str, Any] = (
            json.loads(self.path.read_text(encoding="utf-8")) if self.path.is_file() else {"arms": {}, "base": {}}
        )

    def arm(self, arm: str) -> dict[str, Any]:
        return self.data["arms"].get(arm) or {}

    def save(self, loaded: LoadedCompare) -> None:
        atomic_write_text(self.path, json.dumps(self.data, indent=2) + "\n")
        atomic_write_text(loaded.output_dir / "compare.yaml", loaded.text)


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def run_compare(
    loaded: LoadedCompare, *, force: bool = False, only: list[str] | None = None, progress: Progress = _quiet
) -> dict[str, Any]:
    """Run (or resume) the comparison and write compare.json, .md and .png; return what compare.json holds.
    `only`: train and evaluate these arms only (every arm is still read: the budget depends on all)."""
    from ..llm.models import local_model

    unknown = sorted(set(only or []) - set(loaded.arms))
    if unknown:
        raise CompareError(f"--only {unknown[0]}: no such arm (arms: {', '.join(loaded.arms)})")
    cfg = loaded.config
    out = loaded.output_dir
    started = time.perf_counter()
    state = CompareState(out)
    base_folder, revision = local_model(cfg.model, cfg.revision)
    sft_args = build_sft_args(loaded.sft_values, out / "sft-args", validate_only=True)

    clock = time.perf_counter()
    benchmarks, members, unchecked = eval_items(loaded.eval_config, out / "leak")
    stage = leak_stage(cfg.leak_check.decontaminate, loaded.leak_methods, benchmarks)
    count = token_counter(base_folder, cfg.chat_template, sft_args)
    progress("all", "eval items", time.perf_counter() - clock, f"{len(benchmarks)} tasks to check leaks against")
    pools: dict[str, ArmPool] = {}
    for arm, ref in cfg.arms.items():
        clock = time.perf_counter()
        pools[arm] = arm_pool(arm, ref, stage, members, count, cfg.leak_check.on_leak)
        pools[arm].seconds = time.perf_counter() - clock
        c = pools[arm].counts
        progress(
            arm,
            "prepare",
            pools[arm].seconds,
            f"{c['available']} records, {pools[arm].total} tokens, {c['leaked']} leaked",
        )
    budget, origin = choose_budget(pools, cfg.budget.tokens)
    selections = {arm: select(pool, budget, cfg.seed) for arm, pool in pools.items()}
    versions = {
        arm: write_selection(pools[arm], selections[arm], loaded.arm_dir(arm) / "train", cfg.seed)
        for arm in loaded.arms
    }
    keys = {arm: _arm_key(loaded, version.describe(), revision) for arm, version in versions.items()}

    for arm in loaded.arms:
        if only and arm not in only:
            continue
        _run_arm(loaded, arm, versions[arm], keys[arm], pools[arm].seconds, state, revision, force, progress)
    if loaded.with_base:
        _run_base(loaded, base_folder, revision, state, force, progress)

    # the arms whose results are those of their current selection (not an older run's, left by --only)
    done = [
        arm
        for arm in loaded.arms
        if state.arm(arm).get("key") == keys[arm] and (loaded.arm_dir(arm) / "eval" / "results.json").is_file()
    ]
    report = _report(loaded, pools, selections, done, budget, origin, unchecked, sft_args, state, revision)
    report["timings"]["total"] = round(time.perf_counter() - started, 1)
    atomic_write_text(out / "compare.json", json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(out / "compare.md", compare_markdown(report))
    atomic_write_bytes(out / "compare.png", compare_png(report))
    progress("all", "report", None, str(out / "compare.md"))
    return report


# ----------------------------------------------------------------------------------- the steps


def _arm_key(loaded: LoadedCompare, dataset: dict[str, Any], revision: str | None) -> str:
    cfg = loaded.config
    return input_key(
        dataset,
        cfg.model,
        revision,
        cfg.chat_template,
        loaded.sft_values,
        cfg.merge,
        loaded.eval_config.model_dump(),
        loaded.kinds,
    )


def _run_arm(
    loaded: LoadedCompare,
    arm: str,
    version,
    key: str,
    prepare_seconds: float,
    state: CompareState,
    revision: str | None,
    force: bool,
    progress: Progress,
) -> None:
    """SFT, merge and eval of one arm on its selection (`version`), each skipped when its key is unchanged."""
    from .luth import merge_key, step_merge
    from .sft import read_marker, run_sft, sft_dir, sft_key

    entry = state.arm(arm)
    eval_dir = loaded.arm_dir(arm) / "eval"
    if entry.get("key") == key and (eval_dir / "results.json").is_file() and not force:
        progress(arm, "up to date", None, f"finished {entry.get('finished')}")
        return
    recipe = loaded.arm_recipe(arm)
    seconds: dict[str, float] = {"prepare": round(prepare_seconds, 1)}

    marker = read_marker(sft_dir(recipe))
    retrain = force or (marker is not None and marker.get("key") != sft_key(recipe, version.describe()))
    clock = time.perf_counter()
    record = run_sft(recipe, force=retrain, dataset=version)  # a finished SFT with the same key is kept
    seconds["sft"] = round(time.perf_counter() - clock, 1)
    train = record["train"]
    kept = marker is not None and not retrain
    progress(
        arm,
        "sft",
        seconds["sft"],
        "kept (same key)" if kept else f"{train['steps']} steps, {train['tokens']} tokens seen (TRL)",
    )
    folders = {"sft": sft_dir(recipe)}
    merged_key = None
    if loaded.config.merge is not None:
        result = step_merge(recipe, force=force)
        seconds["merge"] = round(result["seconds"], 1)
        progress(arm, "merge", seconds["merge"], "kept (same key)" if result.get("skipped") else "merged")
        folders["merged"] = loaded.arm_dir(arm) / "merged"
        merged_key = merge_key(recipe, record)
    eval_key = input_key(loaded.eval_config.model_dump(), loaded.kinds, record["key"], merged_key)
    if entry.get("eval_key") == eval_key and (eval_dir / "results.json").is_file() and not force:
        seconds["eval"] = 0.0
        progress(arm, "eval", None, "kept (same key)")
    else:
        from .evaluate import run_eval

        clock = time.perf_counter()
        models = {label: folders[kind] for kind, label in loaded.labels(arm).items()}
        data = version.describe()
        context = {
            "base model": f"{loaded.config.model} ({revision})",
            "dataset": f"{data['name']} {data['version']} ({data.get('fingerprint')})",
            "selection": f"{data['selection']['tokens']} tokens, {data['selection']['records']} records",
        }
        run_eval(loaded.eval_config, models, eval_dir, title=f"{loaded.config.name}: {arm}", context=context)
        seconds["eval"] = round(time.perf_counter() - clock, 1)
        progress(arm, "eval", seconds["eval"], str(eval_dir / "results.md"))
    state.data["arms"][arm] = {
        "key": key,
        "sft_key": record["key"],
        "eval_key": eval_key,
        "finished": _now(),
        "seconds": seconds,
        "train": {k: train.get(k) for k in ("steps", "epochs", "tokens", "tokens_per_s", "loss_first", "loss_last")},
    }
    state.save(loaded)


def _run_base(
    loaded: LoadedCompare, base_folder: Path, revision: str | None, state: CompareState, force: bool, progress
) -> None:
    from .evaluate import run_eval

    key = input_key(loaded.eval_config.model_dump(), loaded.config.model, revision)
    out = loaded.output_dir / "base" / "eval"
    if state.data["base"].get("key") == key and (out / "results.json").is_file() and not force:
        progress(BASE, "eval", None, "kept (same key)")
        return
    clock = time.perf_counter()
    context = {"base model": f"{loaded.config.model} ({revision})"}
    run_eval(loaded.eval_config, {BASE: base_folder}, out, title=f"{loaded.config.name}: base", context=context)
    seconds = round(time.perf_counter() - clock, 1)
    state.data["base"] = {"key": key, "finished": _now(), "seconds": {"eval": seconds}}
    state.save(loaded)
    progress(BASE, "eval", seconds, str(out / "results.md"))


# ----------------------------------------------------------------------------------- the report


def _report(
    loaded: LoadedCompare,
    pools: dict[str, ArmPool],
    selections: dict[str, Selection],
    done: list[str],
    budget: int,
    origin: str,
    unchecked: dict[str, str],
    sft_args,
    state: CompareState,
    revision: str | None,
) -> dict[str, Any]:
    cfg = loaded.config
    if not done:
        raise CompareError("no arm has finished: nothing to compare yet")
    results: dict[str, dict[str, Any]] = {}  # label -> (results.json, its eval folder)
    models: list[dict[str, Any]] = []
    if loaded.with_base:
        results[BASE] = _results(loaded.output_dir / "base" / "eval")
        models.append({"label": BASE, "arm": None, "kind": "base", "path": str(results[BASE]["models"][BASE]["path"])})
    for arm in done:
        eval_dir = loaded.arm_dir(arm) / "eval"
        arm_results = _results(eval_dir)
        for kind, label in loaded.labels(arm).items():
            results[label] = arm_results
            models.append({"label": label, "arm": arm, "kind": kind, "path": arm_results["models"][label]["path"]})
    first = loaded.arms[0]
    reference = {m["label"]: loaded.labels(first)[m["kind"]] for m in models if m["arm"] is not None}
    bootstrap = {
        "resamples": cfg.bootstrap.resamples,
        "seed": cfg.seed,
        "confidence": cfg.bootstrap.confidence,
    }
    tasks = []
    for row in next(iter(results.values()))["scores"]:
        rows = {label: r["scores"][row][label] for label, r in results.items() if label in r["scores"].get(row, {})}
        samples = {label: _samples_dir(loaded, label, models) / f"{row.replace('/', '_')}.jsonl" for label in rows}
        table = task_table(row, rows, samples, reference, bootstrap)
        stale = _items_mismatch(loaded.output_dir / "leak" / "data" / f"{row}.jsonl", row, results)
        if stale:
            table["note"] = " ".join(filter(None, (table.get("note"), stale)))
        tasks.append(table)
    arms = [_arm_entry(loaded, arm, pools[arm], selections[arm], state) for arm in loaded.arms]
    return {
        "name": cfg.name,
        "created": _now(),
        "base_model": {"model": cfg.model, "revision": revision},
        "reference_arm": first,
        "budget": _budget_entry(budget, origin, sft_args, arms, done),
        "leak_check": _leak_entry(loaded, pools, unchecked),
        "arms": arms,
        "models": models,
        "tasks": tasks,
        "bootstrap": {**bootstrap, "method": "paired, percentile, over items"},
        "missing": [arm for arm in loaded.arms if arm not in done],
        "timings": {
            "arms": {arm: state.arm(arm).get("seconds") for arm in done},
            "base": state.data["base"].get("seconds"),
        },
        "versions": {p: package_version(p) or "not installed" for p in VERSIONED},
    }


def _items_mismatch(leak_items: Path, task: str, results: dict[str, dict[str, Any]]) -> str | None:
    """Why the models' items of a local task are not the ones the leak check saw (the benchmark files changed
    between runs, and some evaluations were kept), or None."""
    hashes = {
        label: next((t.get("items_sha256") for t in r["tasks"] if t["name"] == task), None)
        for label, r in results.items()
    }
    if not leak_items.is_file() or None in hashes.values():
        return None
    checked = hashlib.sha256(leak_items.read_bytes()).hexdigest()
    other = [label for label, h in hashes.items() if h != checked]
    if not other:
        return None
    return (
        f"The items {', '.join(other)} were scored on are not the ones the leak check saw ({leak_items}): the "
        "benchmark files changed since; run again with --force."
    )


def _results(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "results.json").read_text(encoding="utf-8"))


def _samples_dir(loaded: LoadedCompare, label: str, models: list[dict[str, Any]]) -> Path:
    model = next(m for m in models if m["label"] == label)
    folder = loaded.output_dir / "base" / "eval" if model["arm"] is None else loaded.arm_dir(model["arm"]) / "eval"
    return folder / "samples" / label


def _arm_entry(loaded: LoadedCompare, arm: str, pool: ArmPool, selection: Selection, state: CompareState):
    entry = state.arm(arm)
    return {
        "name": arm,
        "dataset": pool.version.describe(),
        "counts": pool.counts,
        "selection": selection.figures(pool),
        "leaks_per_task": pool.leaks_per_task,
        "leak_examples": [dataclasses.asdict(leak) for leak in pool.leaks[:5]],
        "train": entry.get("train"),
        "seconds": entry.get("seconds"),
        "train_set": str(loaded.arm_dir(arm) / "train"),
    }


def _budget_entry(budget: int, origin: str, sft_args, arms: list[dict[str, Any]], done: list[str]) -> dict[str, Any]:
    """The budget, and what makes equal tokens equal compute (or not) with these SFT options."""
    epochs = sft_args.num_train_epochs
    steps = {a["name"]: (a.get("train") or {}).get("steps") for a in arms if a["name"] in done}
    seen = {a["name"]: (a.get("train") or {}).get("tokens") for a in arms if a["name"] in done}
    if sft_args.packing:
        how = (
            f"packing ({sft_args.packing_strategy}, {sft_args.max_length} tokens a sequence): the number of "
            "optimizer steps follows the tokens"
        )
    else:
        how = (
            "no packing: the number of optimizer steps follows the records, not the tokens, so arms with equal "
            "tokens may take different numbers of steps (set packing: true for equal steps)"
        )
    used = ", ".join(f"{a['name']} {a['selection']['tokens_used']}" for a in arms)
    statement = (
        f"Token budget: {budget} tokens per epoch ({origin}), {epochs:g} epoch{'s' if epochs != 1 else ''}; "
        f"tokens used: {used}. "
        f"{how}; SFT steps: " + ", ".join(f"{k} {v}" for k, v in steps.items()) + "; tokens seen as TRL counted "
        "them: " + ", ".join(f"{k} {v}" for k, v in seen.items()) + "."
    )
    return {
        "tokens": budget,
        "origin": origin,
        "epochs": epochs,
        "packing": bool(sft_args.packing),
        "packing_strategy": sft_args.packing_strategy if sft_args.packing else None,
        "max_length": sft_args.max_length,
        "steps": steps,
        "tokens_seen": seen,
        "statement": statement,
    }


def _leak_entry(loaded: LoadedCompare, pools: dict[str, ArmPool], unchecked: dict[str, str]) -> dict[str, Any]:
    parts = []
    for arm, pool in pools.items():
        per_task = ", ".join(f"{t} {c['records']}" for t, c in pool.leaks_per_task.items() if c["records"])
        parts.append(f"{arm} {pool.counts['leaked']} removed" + (f" ({per_task})" if per_task else ""))
    statement = "; ".join(parts) + "."
    if unchecked:
        statement += " Not checked: " + "; ".join(f"{t} ({why})" for t, why in unchecked.items()) + "."
    return {
        "methods": list(loaded.leak_methods),
        "on_leak": loaded.config.leak_check.on_leak,
        "options": loaded.config.leak_check.decontaminate,
        "items": str(loaded.output_dir / "leak" / "data"),
        "not_checked": unchecked,
        "statement": statement,
    }
