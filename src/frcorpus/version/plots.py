"""The dataset card's six plots, drawn from stats.json, the resolved pipeline and the facts scanned from
the data, in the shared fixed style (`frcorpus.plots`): two renders of one version are byte-identical.
A plot whose data the version lacks is neither drawn nor linked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from frcorpus.plots import figure, fixed_style, png
from frcorpus.version.facts import DataFacts, score_stages
from frcorpus.version.layout import PLOTS, VersionDir
from frcorpus.version.writer import write_if_changed

MAX_TURNS_BAR = 20  # conversations with more turns share the last bar
MAX_REASONS = 24  # the rarer reasons share one bar

KEPT, REJECTED, SECOND = "#2a6f97", "#d1495b", "#edae49"


def fmt(n: float) -> str:
    """12 345: a narrow no-break space groups digits, as in French and SI."""
    return f"{int(n):,}".replace(",", "\u202f")


@dataclass(frozen=True)
class Plot:
    file: str  # plots/<name>.png, relative to the version directory
    title: str


def _int_axis(ax, axis: str = "y") -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(MaxNLocator(integer=True))
    target.set_major_formatter(FuncFormatter(lambda v, _: fmt(v)))


def plot_source_mix(version: VersionDir):
    sources = version.stats.sources
    if not sources or not any(s.read for s in sources.values()):
        return None
    names = list(sources)
    kept = np.array([sources[n].kept for n in names])
    rejected = np.array([sources[n].rejected for n in names])
    fig = figure(8, 1.6 + 0.45 * len(names))
    ax = fig.add_subplot()
    y = np.arange(len(names))
    ax.barh(y, kept, color=KEPT, label="kept", height=0.6)
    ax.barh(y, rejected, left=kept, color=REJECTED, alpha=0.55, label="rejected", height=0.6)
    for i in range(len(names)):
        read = kept[i] + rejected[i]
        share = f" ({100 * kept[i] / read:.0f} % kept)" if read else ""
        ax.text(read, i, f"  {fmt(kept[i])} / {fmt(read)}{share}", va="center", fontsize=9)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlim(0, (kept + rejected).max() * 1.35)
    ax.grid(axis="y", visible=False)
    _int_axis(ax, "x")
    ax.set_xlabel("records")
    ax.set_title("Records per source: kept and rejected")
    # above the axes, right of the title: the bars and their labels may fill any corner inside
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, borderaxespad=0.2)
    return fig


def plot_rejects(version: VersionDir):
    reasons: list[tuple[str, str, int]] = []
    for stage_id, st in version.stats.stages.items():
        reasons.extend((stage_id, reason, n) for reason, n in st.rejected.items() if n)
    if not reasons:
        return None
    reasons.sort(key=lambda r: (-r[2], r[1]))
    if len(reasons) > MAX_REASONS:
        rest = reasons[MAX_REASONS - 1 :]
        reasons = reasons[: MAX_REASONS - 1] + [("", f"{len(rest)} other reasons", sum(r[2] for r in rest))]
    shown = {r[0] for r in reasons}
    stage_order = [s for s in version.stats.stages if s in shown]  # the legend in pipeline order
    import matplotlib as mpl

    palette = mpl.colormaps["tab10"].colors
    colors = {s: palette[i % len(palette)] for i, s in enumerate(stage_order)}
    fig = figure(8, 1.4 + 0.28 * len(reasons))
    ax = fig.add_subplot()
    y = np.arange(len(reasons))
    counts = np.array([r[2] for r in reasons])
    ax.barh(y, counts, color=[colors.get(r[0], "#999999") for r in reasons], height=0.7)
    for i, n in enumerate(counts):
        ax.text(n, i, f" {fmt(n)}", va="center", fontsize=9)
    # the reason without its stage prefix: the colour says the stage
    ax.set_yticks(y, [r[1].split(".", 1)[1] if r[0] and "." in r[1] else r[1] for r in reasons], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, counts.max() * 1.15)
    ax.grid(axis="y", visible=False)
    _int_axis(ax, "x")
    ax.set_xlabel("records rejected")
    total = int(counts.sum())
    ax.set_title(f"Rejected records by reason ({fmt(total)} in all)")
    from matplotlib.patches import Patch

    fig.legend(  # beside the axes: equal counts fill the whole width
        handles=[Patch(color=colors[s], label=s) for s in stage_order],
        title="stage",
        loc="outside right upper",
        fontsize=9,
        title_fontsize=9,
    )
    return fig


def plot_turns(facts: DataFacts):
    turns = DataFacts.cat(facts.turns)
    if turns.size == 0:
        return None
    capped = np.minimum(turns, MAX_TURNS_BAR)
    values = np.arange(capped.min(), capped.max() + 1)
    counts = np.array([(capped == v).sum() for v in values])
    fig = figure(8, 3.6)
    ax = fig.add_subplot()
    ax.bar(values, counts, color=KEPT, width=0.75)
    if len(values) <= MAX_TURNS_BAR:
        for v, n in zip(values, counts, strict=True):
            if n:
                ax.text(v, n, fmt(n), ha="center", va="bottom", fontsize=9)
        ax.set_ylim(0, counts.max() * 1.1)
    labels = [f"{v}+" if v == MAX_TURNS_BAR and turns.max() > MAX_TURNS_BAR else str(v) for v in values]
    step = max(1, len(values) // 20)
    ax.set_xticks(values[::step], labels[::step])
    ax.grid(axis="x", visible=False)
    _int_axis(ax)
    ax.set_xlabel("turns per conversation (user and assistant messages)")
    ax.set_ylabel("conversations")
    ax.set_title(f"Turns per conversation (median {np.median(turns):g}, {fmt(turns.size)} conversations)")
    return fig


def _bins(values: np.ndarray, n: int = 40) -> tuple[np.ndarray, bool]:
    low, high = max(1, int(values.min())), max(2, int(values.max()))
    if high / low > 50:  # long tails: log-spaced bins, a log axis
        return np.unique(np.round(np.geomspace(low, high + 1, n))), True
    return np.linspace(0, high + 1, n), False


def plot_lengths(facts: DataFacts, label: str):
    prompts, answers = DataFacts.cat(facts.prompt_lengths), DataFacts.cat(facts.answer_lengths)
    if prompts.size == 0 and answers.size == 0:
        return None
    bins, log = _bins(np.concatenate([prompts, answers]))
    fig = figure(8, 3.8)
    ax = fig.add_subplot()
    for values, color, name in (
        (prompts, KEPT, "prompts (user turns)"),
        (answers, SECOND, "answers (assistant turns)"),
    ):
        if values.size:
            ax.hist(np.maximum(values, bins[0]) if log else values, bins=bins, color=color, alpha=0.6, label=None)
            ax.hist(
                np.maximum(values, bins[0]) if log else values,
                bins=bins,
                histtype="step",
                color=color,
                linewidth=1.5,
                label=f"{name}: median {np.median(values):g}",
            )
    if log:
        ax.set_xscale("log")
    _int_axis(ax)
    ax.set_xlabel(f"length in {label}" + (", log scale" if log else ""))
    ax.set_ylabel("turns")
    ax.set_title("Length of prompts and answers, per turn")
    ax.legend()
    return fig


def _score_hist(ax, groups: list[tuple[np.ndarray, str, str]], bins) -> None:
    """Groups (values, colour, label) side by side in each bin: overlaid, a small group hides in a large one."""
    groups = [(v, c, f"{label} ({fmt(v.size)})") for v, c, label in groups if v.size]
    ax.hist([g[0] for g in groups], bins=bins, color=[g[1] for g in groups], label=[g[2] for g in groups])
    counts = np.concatenate([np.histogram(g[0], bins=bins)[0] for g in groups])
    if counts.max() > 20 * np.median(counts[counts > 0]):  # a peak would flatten most other bins
        ax.set_yscale("log")
        ax.set_ylim(0.7, counts.max() * 1.6)
        ax.yaxis.set_major_formatter(_thousands())
    else:
        _int_axis(ax)
    ax.legend(loc="best", fontsize=9)


def _thousands():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: fmt(v) if v >= 1 else "")


def plot_language_scores(facts: DataFacts):
    kept = DataFacts.cat(facts.lang_kept)
    rejected = {lang: DataFacts.cat(parts) for lang, parts in facts.lang_rejected.items()}
    if kept.size == 0 and not any(v.size for v in rejected.values()):
        return None
    # the score is the confidence in the language fastText detected: rejects are told apart by that language
    by_size = sorted(rejected.items(), key=lambda kv: (-kv[1].size, kv[0]))
    groups = [(kept, KEPT, "kept")]
    for (lang, values), colour in zip(by_size[:3], (REJECTED, SECOND, "#8c6bb1"), strict=False):
        groups.append((values, colour, f"rejected, detected {lang}"))
    if len(by_size) > 3:
        groups.append((np.concatenate([v for _, v in by_size[3:]]), "#999999", "rejected, other languages"))
    fig = figure(8, 3.6)
    ax = fig.add_subplot()
    _score_hist(ax, groups, np.linspace(0, 1, 21))
    ax.set_xlim(0, 1)
    ax.set_xlabel("confidence in the detected language of the conversation (fastText; column langid.score)")
    ax.set_ylabel("conversations")
    ax.set_title("Language identification: kept and rejected conversations")
    return fig


def plot_quality_scores(version: VersionDir, facts: DataFacts):
    keys = sorted(facts.scores_kept)
    if not keys:
        return None
    cols = min(2, len(keys))
    rows = (len(keys) + cols - 1) // cols
    fig = figure(8, 0.6 + 3.0 * rows)
    thresholds = {  # score key -> the min_score its stage decides with, where the YAML sets one
        key: version.stage_configs[sid].get("min_score") for key, sid in score_stages(version.stage_configs).items()
    }
    for i, key in enumerate(keys):
        ax = fig.add_subplot(rows, cols, i + 1)
        kept = np.array(facts.scores_kept[key], dtype=float)
        rejected = np.array(facts.scores_rejected.get(key, []), dtype=float)
        both = np.concatenate([kept, rejected])
        low, high = float(both.min()), float(both.max())
        if np.all(both == np.round(both)) and high - low <= 20:  # a judge's 1-5 scale: one bar per grade
            bins = np.arange(low - 0.5, high + 1.5)
            ax.set_xticks(np.arange(low, high + 1))
        else:
            bins = np.linspace(low, high if high > low else low + 1, 21)
        _score_hist(ax, [(kept, KEPT, "kept"), (rejected, REJECTED, "rejected by its stage")], bins)
        if thresholds.get(key) is not None:
            ax.axvline(thresholds[key], color="#444444", linestyle="--", linewidth=1)
            ax.text(thresholds[key], ax.get_ylim()[1], " min_score", va="top", fontsize=8, color="#444444")
        ax.set_title(key, fontsize=11)
        ax.set_xlabel("score (column scores)")
        ax.set_ylabel("conversations")
    fig.suptitle("Quality scores", x=0.01, ha="left", fontweight="bold", fontsize=12)
    return fig


# name -> (alt text, how to draw it); in the card's order
PLOT_MAKERS = {
    "source_mix": ("Records per source", lambda version, facts, label: plot_source_mix(version)),
    "rejects_by_reason": ("Rejected records by reason", lambda version, facts, label: plot_rejects(version)),
    "turns": ("Turns per conversation", lambda version, facts, label: plot_turns(facts)),
    "lengths": ("Length of prompts and answers", lambda version, facts, label: plot_lengths(facts, label)),
    "language_scores": ("Language identification scores", lambda version, facts, label: plot_language_scores(facts)),
    "quality_scores": ("Quality scores", lambda version, facts, label: plot_quality_scores(version, facts)),
}


def write_plots(version: VersionDir, facts: DataFacts, length_label: str) -> list[Plot]:
    """Draw every plot whose data the version has into plots/; remove plots a previous render left."""
    folder = version.plots
    written: list[Plot] = []
    with fixed_style():
        for name, (title, make) in PLOT_MAKERS.items():
            fig = make(version, facts, length_label)
            if fig is None:
                continue
            write_if_changed(folder / f"{name}.png", png(fig))
            written.append(Plot(f"{PLOTS}/{name}.png", title))
    keep = {Path(p.file).name for p in written}
    for stale in folder.glob("*.png") if folder.is_dir() else []:
        if stale.name not in keep:
            stale.unlink()
    return written


def existing_plots(version: VersionDir) -> list[Plot]:
    """The plots a render left in plots/, in the card's order: what a card written elsewhere links."""
    return [Plot(f"{PLOTS}/{n}.png", t) for n, (t, _) in PLOT_MAKERS.items() if (version.plots / f"{n}.png").is_file()]
