"""The evaluation's report: `results.md` (a table of tasks by models) and `results.png` (grouped bars,
drawn like the dataset card's plots, so the same results give the same bytes). Most metrics are shares
where higher is better; a metric whose task says lower is better (fr_ref_nll, a negative log-likelihood
per token) is marked so in the table, its best value is its lowest, and it gets a panel of its own."""

from __future__ import annotations

from typing import Any

from .eval_tasks import LOCAL_TASKS

# ----------------------------------------------------------------------------------- reports


def higher_is_better(score: dict[str, Any]) -> bool:
    return score.get("higher_is_better", True)  # results written before the key existed: all were


def _cell(score: dict[str, Any] | None, best: bool) -> str:
    if score is None:
        return "–"
    text = f"{score['value']:.3f}" + (f" ± {score['stderr']:.3f}" if score["stderr"] is not None else "")
    return f"**{text}**" if best else text


def results_markdown(results: dict[str, Any]) -> str:
    """The results table (rows: tasks; columns: models), with the title, the context and the settings."""
    labels = list(results["models"])
    lines = [f"# Evaluation: {results['title']}", ""]
    if results["context"]:
        lines += [f"- {key}: {value}" for key, value in results["context"].items()] + [""]
    lines += [
        "| task | metric | n | " + " | ".join(labels) + " |",
        "|---|---|--:|" + "--:|" * len(labels),
    ]
    for row, by_model in results["scores"].items():
        values = [s["value"] for s in by_model.values()]
        first = next(iter(by_model.values()))
        best = max if higher_is_better(first) else min
        top = best(values) if len(labels) > 1 and len(set(values)) > 1 else None
        ns = {s["n"] for s in by_model.values()}
        metric = first["metric"] + (f" ({first['filter']})" if first["filter"] not in ("", "none") else "")
        metric += "" if higher_is_better(first) else " (lower is better)"
        cells = [_cell(by_model.get(label), by_model.get(label, {}).get("value") == top) for label in labels]
        n = str(first["n"]) if len(ns) == 1 else "/".join(str(by_model[m]["n"]) for m in labels if m in by_model)
        lines.append(f"| {row} | {metric} | {n} | " + " | ".join(cells) + " |")
    settings = results["settings"]
    best = "; the best is in bold" if len(labels) > 1 else ""
    lines += [
        "",
        "Values are the mean over n items (unless the task says otherwise below) ± the standard error that "
        f"lm-eval reports (none for aggregates that are not means){best}.",
        "",
    ]
    for t in results["tasks"]:
        shots = f"{t['num_fewshot']}-shot"
        lines.append(
            f"- `{t['name']}`: {t['description']}; {shots}" + (f"; items in `{t['items']}`" if "items" in t else "")
        )
    lines += [
        "",
        f"{results['harness']}, seed {settings['seed']}, device {settings['device']}, dtype {settings['dtype']}, "
        f"chat template {'applied' if settings['apply_chat_template'] else 'not applied'}. "
        f"Models: " + ", ".join(f"{label} `{info['path']}`" for label, info in results["models"].items()) + ".",
        "",
    ]
    return "\n".join(lines)


# Fixed colours per column position (base, sft, merged, then any other label)
COLOURS = ("#8d99ae", "#2a6f97", "#d1495b", "#edae49", "#66a182", "#6d597a")


def results_png(results: dict[str, Any]) -> bytes:
    """Grouped bars: one group per task, one bar per model, error bars from the stderr. Same results, same
    bytes (the fixed style of `frcorpus.plots`, shared with the dataset card; no timestamp)."""
    from ..plots import figure, fixed_style, png

    labels = list(results["models"])
    rows = list(results["scores"])
    lower = [row for row in rows if not higher_is_better(next(iter(results["scores"][row].values())))]
    higher = [row for row in rows if row not in lower]
    with fixed_style():
        width = max(4.5, 1.3 * len(rows) * max(1, len(labels)) / 2 + 2) + (1.5 if higher and lower else 0)
        fig = figure(width, 3.6)
        panels = [(higher, True), (lower, False)] if higher and lower else [(higher or lower, not lower)]
        axes = fig.subplots(1, len(panels), width_ratios=[len(p) + 1 for p, _ in panels], squeeze=False)[0]
        for ax, (panel_rows, shares) in zip(axes, panels, strict=True):
            _bars(ax, results, panel_rows, labels, shares)
        title = (
            f"{results['title']}: base vs fine-tuned vs merged"
            if labels == ["base", "sft", "merged"]
            else results["title"]
        )
        if len(panels) > 1:
            fig.suptitle(title, x=0.01, ha="left", fontsize=12, fontweight="bold")
        else:
            axes[0].set_title(title)
        return png(fig)


def _bars(ax, results: dict[str, Any], rows: list[str], labels: list[str], shares: bool) -> None:
    """One panel: a group of bars per task, one bar per model. `shares`: metrics where higher is better
    (accuracies, rates: the axis stays near 0-1, with MMLU's chance line); else metrics where lower is
    better, on an axis of their own."""
    bar = 0.8 / len(labels)
    for j, label in enumerate(labels):
        xs, ys, errs = [], [], []
        for i, row in enumerate(rows):
            score = results["scores"][row].get(label)
            if score is None:
                continue
            xs.append(i - 0.4 + bar * (j + 0.5))
            ys.append(score["value"])
            errs.append(score["stderr"] or 0.0)
        ax.bar(xs, ys, bar * 0.92, yerr=errs, capsize=2, color=COLOURS[j % len(COLOURS)], label=label)
        for x, y, err in zip(xs, ys, errs, strict=True):  # above the error bar, not under it
            ax.annotate(f"{y:.2f}", (x, y + err), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=7)
    chance = [i for i, row in enumerate(rows) if row in LOCAL_TASKS and LOCAL_TASKS[row].family == "mmlu"]
    for k, i in enumerate(chance):  # four choices: a model at 0.25 knows nothing
        ax.hlines(0.25, i - 0.45, i + 0.45, colors="#444444", linestyles="--", lw=1, label=None if k else "chance")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([f"{row}\n{next(iter(results['scores'][row].values()))['metric']}" for row in rows])
    scores = [s for row in rows for s in results["scores"][row].values()]
    top = max((s["value"] + (s["stderr"] or 0) for s in scores), default=1)
    if shares:
        top = max(top, 0.25 if chance else 0.0)
        ax.set_ylim(0, min(1.1, max(0.1, top * 1.3)))  # room for the value labels
        ax.set_ylabel("score")
    else:
        ax.set_ylim(0, max(0.1, top * 1.3))
        ax.set_ylabel("lower is better")
    ax.legend(ncols=len(labels) + bool(chance), loc="upper right", fontsize=8)
