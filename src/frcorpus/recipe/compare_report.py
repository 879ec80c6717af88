"""The comparison's statistics and reports: per-item values read from each eval run's samples, paired
bootstrap intervals of the deltas, `compare.md` (a table per task) and `compare.png` (the deltas with their
intervals, drawn like the eval's results.png: the same results give the same bytes).

Per-item values. Each model's `samples/<label>/<task>.jsonl` holds one line per item, with the metric's
value. A task's statistic is either a mean of per-item values (acc, exact_match, a per-prompt accuracy),
or a ratio of sums: a token-weighted NLL (lines with `nll_sum` or `nll`, and `tokens`: total NLL / total
tokens), or a per-instruction accuracy (a list per item: passed / instructions). The statistic recomputed
from the lines must equal what lm-eval reported, else the task gets no interval (and says why).

Paired bootstrap. The models are scored on the same items (checked by id); each resample draws n items
with replacement, the same draw for every model of a task (numpy, seeded), and recomputes the statistic
of both models on it; the interval is the percentile interval of the differences. Identical per-item
values give a difference of exactly 0 in every resample.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .compare_data import CompareError

RATIO_FIELDS = (("nll_sum", "tokens"), ("nll", "tokens"))  # a per-item numerator and denominator
BLOCK_CELLS = 1 << 22  # resamples x items drawn at a time (32 MiB of indices)
MATCH_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ItemValues:
    """One model's per-item values on one task: numerators, and denominators for a ratio statistic (None: a
    mean), by item key in file order."""

    keys: list[str]
    num: np.ndarray
    den: np.ndarray | None

    def statistic(self) -> float:
        return _stat(self.num, self.den, np.arange(len(self.keys))[None, :])[0]

    def aligned(self, keys: list[str], where: str, reference: str) -> ItemValues:
        """The same values in the order of `keys`; an error if the items differ."""
        position = {k: i for i, k in enumerate(self.keys)}
        missing = [k for k in keys if k not in position]
        extra = sorted(set(self.keys) - set(keys))
        if missing or extra or len(keys) != len(self.keys):
            example = f"{missing[0]!r} is missing" if missing else f"{extra[0]!r} is extra" if extra else "repeated ids"
            raise CompareError(
                f"{where}: its items differ from {reference}'s ({len(self.keys)} items against {len(keys)}; "
                f"{example}); the deltas need the same items: evaluate every model with the same eval section"
            )
        order = np.array([position[k] for k in keys], dtype=np.int64)
        return ItemValues(list(keys), self.num[order], None if self.den is None else self.den[order])


def _stat(num: np.ndarray, den: np.ndarray | None, idx: np.ndarray) -> np.ndarray:
    """The statistic of each row of item indices."""
    top = num[idx].sum(axis=1)
    if den is None:
        return top / idx.shape[1]
    bottom = den[idx].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1), np.nan)


def read_item_values(path: Path, metric: str) -> ItemValues:
    """Per-item values of `metric` from a samples file (see the module docstring for the kinds)."""
    if not path.is_file():
        raise CompareError(f"{path}: no per-item samples; run the evaluation again")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise CompareError(f"{path}: no items")
    keys = [str(line["id"]) if line.get("id") is not None else f"doc:{line['doc_id']}" for line in lines]
    first = lines[0]
    ratio = next((f for f in RATIO_FIELDS if all(_number(first.get(k)) for k in f)), None)
    if ratio is not None:
        num = [line[ratio[0]] for line in lines]
        den = [line[ratio[1]] for line in lines]
    elif _number(first.get(metric)):
        num, den = [line[metric] for line in lines], None
    elif isinstance(first.get(metric), list):  # one value per instruction: passed / instructions
        num = [sum(map(float, line[metric])) for line in lines]
        den = [len(line[metric]) for line in lines]
    else:
        have = ", ".join(k for k in first if k not in ("doc_id", "id", "target", "response", "raw"))
        raise CompareError(
            f"{path}: no per-item value of {metric!r} (the lines hold: {have or 'nothing else'}); the interval needs "
            f"the metric per item, or {' and '.join(RATIO_FIELDS[0])} for a ratio metric"
        )
    return ItemValues(
        keys, np.asarray(num, dtype=np.float64), None if den is None else np.asarray(den, dtype=np.float64)
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class Interval:
    delta: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"delta": self.delta, "low": self.low, "high": self.high}


def paired_bootstrap(
    reference: ItemValues, other: ItemValues, resamples: int = 10_000, seed: int = 0, confidence: float = 0.95
) -> Interval:
    """The difference other - reference of the statistic, and its paired bootstrap percentile interval."""
    n = len(reference.keys)
    if len(other.keys) != n:
        raise CompareError(f"paired bootstrap over {n} and {len(other.keys)} items: align the items first")
    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples, dtype=np.float64)
    step = max(1, BLOCK_CELLS // max(n, 1))
    for lo in range(0, resamples, step):
        idx = rng.integers(0, n, size=(min(step, resamples - lo), n))
        diffs[lo : lo + len(idx)] = _stat(other.num, other.den, idx) - _stat(reference.num, reference.den, idx)
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(diffs, [tail, 100 - tail])
    return Interval(float(other.statistic() - reference.statistic()), float(low), float(high))


# ----------------------------------------------------------------------------------- the table


def task_table(
    task: str,
    rows: dict[str, dict[str, Any]],
    samples: dict[str, Path],
    reference: dict[str, str],
    bootstrap: dict[str, Any],
) -> dict[str, Any]:
    """One task of compare.json: each model's score (results.json's), and its deltas to its reference arm's
    model and to the base with their intervals. `rows`: label -> score; `samples`: label -> samples file;
    `reference`: label -> the label it is compared with first (the first arm's model of the same kind)."""
    labels = list(rows)
    first = rows[labels[0]]
    out: dict[str, Any] = {
        "task": task,
        "metric": first["metric"],
        "filter": first.get("filter"),
        "n": first.get("n"),
        "higher_is_better": first.get("higher_is_better", True),
        "scores": {label: {"value": s["value"], "stderr": s.get("stderr")} for label, s in rows.items()},
        "deltas": {},
    }
    try:
        values = {label: read_item_values(samples[label], first["metric"]) for label in labels}
    except CompareError as e:
        out["note"] = f"no intervals: {e}"
        return out
    keys = values[labels[0]].keys
    values = {label: v.aligned(keys, f"{task}: {label}", labels[0]) for label, v in values.items()}
    off = [label for label in labels if abs(values[label].statistic() - rows[label]["value"]) > _tolerance(rows[label])]
    if off:
        label = off[0]
        out["note"] = (
            f"no intervals: the per-item values of {label} give {values[label].statistic():.6g}, not the "
            f"{rows[label]['value']:.6g} lm-eval reported (a statistic this report does not know how to resample)"
        )
        return out
    out["statistic"] = "ratio" if values[labels[0]].den is not None else "mean"
    for label in labels:
        deltas = {}
        for name, ref in (("vs_first", reference.get(label)), ("vs_base", "base" if "base" in values else None)):
            if ref is not None and ref != label:
                deltas[name] = {"reference": ref, **paired_bootstrap(values[ref], values[label], **bootstrap).as_dict()}
        out["deltas"][label] = deltas
    return out


def _tolerance(score: dict[str, Any]) -> float:
    return MATCH_TOLERANCE * max(1.0, abs(score["value"]))


def _signed(x: float) -> str:
    return f"{x:+.3f}".replace("-", "−")


def _delta_cell(delta: dict[str, Any] | None) -> str:
    if delta is None:
        return "–"
    return f"{_signed(delta['delta'])} [{_signed(delta['low'])}, {_signed(delta['high'])}]"


def compare_markdown(report: dict[str, Any]) -> str:
    """compare.md: the arms and what they trained on (datasets by fingerprint), then a table per task."""
    budget = report["budget"]
    confidence = round(report["bootstrap"]["confidence"] * 100)
    lines = [f"# Comparison: {report['name']}", ""]
    base = report["base_model"]
    lines += [f"Base model: `{base['model']}`" + (f" ({base['revision']})" if base.get("revision") else "") + ".", ""]
    lines += [
        "| arm | dataset | version | fingerprint | records | no answer | leaked | records used | tokens used |",
        "|---|---|---|---|--:|--:|--:|--:|--:|",
    ]
    for arm in report["arms"]:
        data, counts, used = arm["dataset"], arm["counts"], arm["selection"]
        lines.append(
            f"| {arm['name']} | {data['name']} | {data['version']} | `{data.get('fingerprint') or '–'}` | "
            f"{counts['records']} | {counts['skipped_no_assistant']} | {counts['leaked']} | {used['records_used']} | "
            f"{used['tokens_used']} ({used['budget_share'] * 100:.2f}%) |"
        )
    lines += ["", budget["statement"], ""]
    leak = report["leak_check"]
    lines.append(f"Leak check ({', '.join(leak['methods'])}, on_leak: {leak['on_leak']}): {leak['statement']}")
    lines.append("")
    for task in report["tasks"]:
        metric = task["metric"] + (f" ({task['filter']})" if task.get("filter") not in (None, "", "none") else "")
        better = "" if task.get("higher_is_better", True) else " (lower is better)"
        lines += [f"## {task['task']}: {metric}{better}, n = {task['n']}", ""]
        first = report["reference_arm"]
        lines += [
            f"| model | score | Δ vs {first} [{confidence}% CI] | Δ vs base [{confidence}% CI] |",
            "|---|--:|--:|--:|",
        ]
        for label, score in task["scores"].items():
            deltas = task["deltas"].get(label, {})
            stderr = f" ± {score['stderr']:.3f}" if score.get("stderr") is not None else ""
            lines.append(
                f"| {label} | {score['value']:.4f}{stderr} | {_delta_cell(deltas.get('vs_first'))} | "
                f"{_delta_cell(deltas.get('vs_base'))} |"
            )
        if task.get("note"):
            lines += ["", task["note"]]
        lines.append("")
    lines += [
        f"Δ is model − reference on the same items; the interval is a paired bootstrap over items "
        f"({report['bootstrap']['resamples']} resamples, seed {report['bootstrap']['seed']}, percentile). "
        "An interval that holds 0 is no evidence of a difference.",
        "",
    ]
    if report.get("missing"):
        lines += [f"Not in this report (not run yet): {', '.join(report['missing'])}.", ""]
    return "\n".join(lines)


def compare_png(report: dict[str, Any]) -> bytes:
    """One panel per task: each delta with its interval (to the first arm, to the base), a line at 0."""
    from ..plots import figure, fixed_style, png
    from .eval_report import COLOURS

    tasks = [t for t in report["tasks"] if t["deltas"]] or report["tasks"]
    with fixed_style():
        rows_per_task = [
            [(label, kind, d) for label, ds in t["deltas"].items() for kind, d in ds.items()] for t in tasks
        ]
        height = max(2.4, 0.45 * max((len(r) for r in rows_per_task), default=1) + 1.4)
        fig = figure(max(4.5, 3.6 * len(tasks)), height)
        axes = fig.subplots(1, len(tasks), squeeze=False)[0]
        for ax, task, rows in zip(axes, tasks, rows_per_task, strict=True):
            for y, (_, kind, d) in enumerate(reversed(rows)):
                colour = COLOURS[1] if kind == "vs_first" else COLOURS[0]
                ax.errorbar(
                    d["delta"],
                    y,
                    xerr=[[d["delta"] - d["low"]], [d["high"] - d["delta"]]],
                    fmt="o",
                    color=colour,
                    capsize=3,
                )
            ax.axvline(0, color="#444444", linewidth=1, linestyle="--")
            ax.set_yticks(range(len(rows)))
            ax.set_yticklabels([f"{label} − {d['reference']}" for label, _, d in reversed(rows)])
            ax.set_xlabel(f"Δ {task['metric']}" + ("" if task.get("higher_is_better", True) else " (lower is better)"))
            ax.set_title(task["task"], fontsize=10)
            if not rows:
                ax.text(0.5, 0.5, task.get("note", "no interval")[:60], ha="center", transform=ax.transAxes)
        fig.suptitle(f"{report['name']}: deltas, {round(report['bootstrap']['confidence'] * 100)}% paired bootstrap")
        return png(fig)
