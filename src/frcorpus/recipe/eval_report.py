"""The evaluation's report: `results.md` (a table of tasks by models) and `results.png` (grouped bars,
drawn like the dataset card's plots, so the same results give the same bytes)."""

from __future__ import annotations

from typing import Any

from .eval_tasks import LOCAL_TASKS

# ----------------------------------------------------------------------------------- reports


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
        top = max(values) if len(labels) > 1 and len(set(values)) > 1 else None
        first = next(iter(by_model.values()))
        ns = {s["n"] for s in by_model.values()}
        metric = first["metric"] + (f" ({first['filter']})" if first["filter"] not in ("", "none") else "")
        cells = [_cell(by_model.get(label), by_model.get(label, {}).get("value") == top) for label in labels]
        n = str(first["n"]) if len(ns) == 1 else "/".join(str(by_model[m]["n"]) for m in labels if m in by_model)
        lines.append(f"| {row} | {metric} | {n} | " + " | ".join(cells) + " |")
    settings = results["settings"]
    best = "; the best is in bold" if len(labels) > 1 else ""
    lines += ["", f"Values are the mean over n items ± the standard error that lm-eval reports{best}.", ""]
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
    with fixed_style():
        fig = figure(max(4.5, 1.3 * len(rows) * max(1, len(labels)) / 2 + 2), 3.6)
        ax = fig.add_subplot()
        width = 0.8 / len(labels)
        for j, label in enumerate(labels):
            xs, ys, errs = [], [], []
            for i, row in enumerate(rows):
                score = results["scores"][row].get(label)
                if score is None:
                    continue
                xs.append(i - 0.4 + width * (j + 0.5))
                ys.append(score["value"])
                errs.append(score["stderr"] or 0.0)
            ax.bar(xs, ys, width * 0.92, yerr=errs, capsize=2, color=COLOURS[j % len(COLOURS)], label=label)
            for x, y, err in zip(xs, ys, errs, strict=True):  # above the error bar, not under it
                ax.annotate(
                    f"{y:.2f}", (x, y + err), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=7
                )
        chance = [i for i, row in enumerate(rows) if row in LOCAL_TASKS and LOCAL_TASKS[row].family == "mmlu"]
        for k, i in enumerate(chance):  # four choices: a model at 0.25 knows nothing
            ax.hlines(
                0.25, i - 0.45, i + 0.45, colors="#444444", linestyles="--", linewidth=1, label=None if k else "chance"
            )
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([f"{row}\n{next(iter(results['scores'][row].values()))['metric']}" for row in rows])
        top = max(
            (s["value"] + (s["stderr"] or 0) for by in results["scores"].values() for s in by.values()), default=1
        )
        top = max(top, 0.25 if chance else 0.0)
        ax.set_ylim(0, min(1.1, max(0.1, top * 1.3)))  # room for the value labels
        ax.set_ylabel("score")
        ax.set_title(
            f"{results['title']}: base vs fine-tuned vs merged"
            if labels == ["base", "sft", "merged"]
            else results["title"]
        )
        ax.legend(ncols=len(labels) + bool(chance), loc="upper right", fontsize=8)
        return png(fig)
