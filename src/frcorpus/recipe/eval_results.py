"""What the eval step keeps of lm-eval's output: the table rows (one metric per task, with its standard
error, item count and direction) and the per-item samples (samples/<model>/<task>.jsonl)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..version.writer import atomic_write_text
from .eval_tasks import EvalError

# lm-eval result keys that are not metrics
NOT_METRICS = {"alias", "name", "sample_len", "samples"}


def split_key(key: str) -> tuple[str, str]:
    """lm-eval's result key 'metric,filter' as (metric, filter)."""
    metric, _, filt = key.partition(",")
    return metric, filt


def pick_metric(metrics: dict[str, Any], wanted: str | None) -> str | None:
    """The result key ('metric,filter') to show: `wanted` (a metric name or a full key), else the first."""
    keys = [k for k in metrics if k not in NOT_METRICS and "_stderr" not in k and isinstance(metrics[k], (int, float))]
    if wanted is None:
        return keys[0] if keys else None
    return next((k for k in keys if k == wanted or split_key(k)[0] == wanted), None)


def task_scores(out: dict[str, Any], name: str, wanted: str | None) -> dict[str, dict[str, Any]]:
    """Table rows for one lm-eval task: the task itself, or a group's aggregate row, or (a group without
    one) each of its tasks. `higher_is_better` is what the task declares for the metric (True if nothing)."""
    results, counts = out["results"], out.get("n-samples", {})
    leaves = [name]
    if pick_metric(results.get(name, {}), None) is None:
        leaves = [t for t in out.get("group_subtasks", {}).get(name, []) if t in results] or leaves
    rows = {}
    for leaf in leaves:
        metrics = results.get(leaf, {})
        key = pick_metric(metrics, wanted)
        if key is None:
            names = sorted({split_key(k)[0] for k in metrics if k not in NOT_METRICS and "_stderr" not in k})
            asked = f" {wanted!r}" if wanted else ""
            raise EvalError(
                f"task {leaf!r}: lm-eval reported no metric{asked} (it reported: {', '.join(names) or 'none'}); "
                "set the task's metric: in eval.tasks to one of those"
            )
        metric, filt = split_key(key)
        stderr = metrics.get(f"{metric}_stderr,{filt}")
        subtasks = out.get("group_subtasks", {}).get(leaf) or [leaf]
        n = sum(counts.get(t, {}).get("effective", 0) for t in subtasks)
        higher = out.get("higher_is_better", {}).get(leaf, {}).get(metric)
        rows[leaf] = {
            "metric": metric,
            "filter": filt,
            "value": float(metrics[key]),
            "stderr": float(stderr) if isinstance(stderr, (int, float)) else None,
            "n": n,
            "num_fewshot": out.get("n-shot", {}).get(leaf),
            "higher_is_better": higher is not False,
            "all": {k: v for k, v in metrics.items() if k not in NOT_METRICS and isinstance(v, (int, float))},
        }
    return rows


def write_samples(
    out: dict[str, Any],
    folder: Path,
    details: dict[str, Callable[[dict[str, Any]], dict[str, Any]]],
    copies: dict[str, list[str]],
) -> None:
    """Per-item outputs, one JSONL per task: what the model answered and how it scored, plus the task's
    `details` (e.g. why an answer fails fr_answer_ok); `copies`: a shared generation pass's file is also
    written under the names of the other tasks it serves, so every table row has its samples file."""
    for task, samples in (out.get("samples") or {}).items():
        lines = []
        extra = details.get(task)
        for s in samples:
            doc = s.get("doc") or {}
            metrics = {m: s[m] for m in s.get("metrics", []) if m in s}
            lines.append(
                json.dumps(
                    {
                        "doc_id": s["doc_id"],
                        "id": doc.get("id"),
                        "target": s.get("target"),
                        "response": s.get("filtered_resps"),
                        "raw": s.get("resps") if s.get("filter") not in (None, "none") else None,
                        **metrics,
                        **(extra(s) if extra else {}),
                    },
                    ensure_ascii=False,
                    default=str,
                )
                + "\n"
            )
        text = "".join(lines)
        for name in (task, *copies.get(task, ())):
            atomic_write_text(folder / f"{name.replace('/', '_')}.jsonl", text)
