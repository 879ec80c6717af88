"""The dataset card of a version directory: README.md (Hub YAML header + sections) and plots/*.png.

Everything comes from the version's own files (stats.json, manifest.json, pipeline.yaml,
pipeline.resolved.yaml, data/ and rejects/ Parquet), so that the run's finalize step and
`frcorpus card VERSION_DIR` give the same bytes. The Markdown comes from the Jinja template
`cards/dataset_card.md.j2` with the header written by huggingface_hub's `DatasetCardData` and parsed
back by `DatasetCard`; any failure is an error (DESIGN section 4, point 8). Plots are drawn with
matplotlib's Agg canvas under a fixed style, size and dpi, without timestamps, so that two renders of
one version are byte-identical.
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from frcorpus.licenses import OutputLicence, output_licence, parse
from frcorpus.output import (
    CARD,
    check_version,
    file_entry,
    read_manifest,
    split_files,
    write_if_changed,
    write_manifest,
)
from frcorpus.resources import resource_dir

TEMPLATE = "dataset_card.md.j2"
PLOTS = "plots"
BASE_TAGS = ["frcorpus", "sft", "instruction-tuning"]
# runs of characters that are not (Unicode) spaces: French puts a no-break space before ? ! : ;
WORD = r"[^\s\pZ]+"
MAX_TURNS_BAR = 20  # conversations with more turns share the last bar
MAX_REASONS = 24  # the rarer reasons share one bar
# Hub size categories (the `size_categories` values it lists)
SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
)


class CardError(Exception):
    """A version directory whose card cannot be written (missing files, a tokenizer not found)."""


def size_category(n: int) -> str:
    for limit, label in SIZE_CATEGORIES:
        if n < limit:
            return label
    return "1B<n<10B"


# ----------------------------------------------------------------------------------- reading the version


def stage_ids(stages: list[dict[str, Any]]) -> list[str]:
    """Stage ids as PipelineConfig.stage_ids gives them, from the resolved YAML's plain dicts (a version
    written by another frcorpus release may not validate against this one's models)."""
    ids, seen = [], Counter()
    for s in stages:
        if s.get("id"):
            ids.append(s["id"])
            continue
        seen[s["type"]] += 1
        ids.append(s["type"] if seen[s["type"]] == 1 else f"{s['type']}_{seen[s['type']]}")
    return ids


@dataclass
class Version:
    """The files of a version directory that the card reads."""

    dir: Path
    stats: dict[str, Any]
    manifest: dict[str, Any]
    config: dict[str, Any]  # pipeline.resolved.yaml
    pipeline_text: str
    stage_configs: dict[str, dict[str, Any]]  # stage id -> its resolved config

    @classmethod
    def read(cls, version_dir: Path) -> Version:
        missing = [
            n
            for n in ("stats.json", "manifest.json", "pipeline.yaml", "pipeline.resolved.yaml")
            if not (version_dir / n).is_file()
        ]
        if missing:
            raise CardError(f"{version_dir} is not a frcorpus version directory: {', '.join(missing)} missing")
        config = yaml.safe_load((version_dir / "pipeline.resolved.yaml").read_text(encoding="utf-8"))
        stages = config.get("stages") or []
        return cls(
            version_dir,
            json.loads((version_dir / "stats.json").read_text(encoding="utf-8")),
            json.loads((version_dir / "manifest.json").read_text(encoding="utf-8")),
            config,
            (version_dir / "pipeline.yaml").read_text(encoding="utf-8"),
            dict(zip(stage_ids(stages), stages, strict=True)),
        )

    def stage_type(self, stage_id: str) -> str:
        return self.stage_configs.get(stage_id, {}).get("type", stage_id)

    def files(self, folder: str) -> list[Path]:
        return sorted((self.dir / folder).glob("*.parquet"))


@dataclass
class DataFacts:
    """What the plots and the summary need from the Parquet files, as small numeric arrays."""

    columns: list[str] = field(default_factory=list)
    turns: list[np.ndarray] = field(default_factory=list)  # user + assistant messages per conversation
    prompt_lengths: list[np.ndarray] = field(default_factory=list)
    answer_lengths: list[np.ndarray] = field(default_factory=list)
    languages: Counter = field(default_factory=Counter)
    lang_kept: list[np.ndarray] = field(default_factory=list)
    # records a langid stage rejected: detected language -> scores
    lang_rejected: dict[str, list[np.ndarray]] = field(default_factory=dict)
    scores_kept: dict[str, list[float]] = field(default_factory=dict)
    scores_rejected: dict[str, list[float]] = field(default_factory=dict)  # rejected by the stage that scored
    lineage_models: Counter = field(default_factory=Counter)  # (model, revision) of translated records

    @staticmethod
    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0)


class LengthCounter:
    """Words (runs of non-space characters), or tokens of a tokenizer.json."""

    def __init__(self, tokenizer: str | None):
        self.tokenizer = None
        self.label = "words (whitespace-separated, not model tokens)"
        if tokenizer:
            from tokenizers import Tokenizer

            path = Path(tokenizer).expanduser()
            file = path / "tokenizer.json" if path.is_dir() else path
            if not file.is_file():  # `frcorpus card` on another machine than the run's
                raise CardError(f"card.tokenizer: no tokenizer.json at {tokenizer}; the length plot counts its tokens")
            self.tokenizer = Tokenizer.from_file(str(file))
            self.label = f"tokens ({path.name})"

    def __call__(self, texts: pa.Array) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros(0, dtype=np.int64)
        if self.tokenizer is None:
            return pc.fill_null(pc.count_substring_regex(texts, WORD), 0).to_numpy(zero_copy_only=False)
        encoded = self.tokenizer.encode_batch([t or "" for t in texts.to_pylist()], add_special_tokens=False)
        return np.array([len(e.ids) for e in encoded], dtype=np.int64)


def _field(table: pa.Table, column: str, name: str) -> pa.Array | None:
    if column not in table.column_names:
        return None
    col = table[column].combine_chunks()
    return pc.struct_field(col, name) if pa.types.is_struct(col.type) else None


def scan_data(version: Version, count: LengthCounter) -> DataFacts:
    facts = DataFacts()
    langid_stages = {sid for sid, cfg in version.stage_configs.items() if cfg.get("type") == "langid"}
    score_stage = {  # score key -> id of the stage that wrote it
        cfg.get("name") or sid: sid for sid, cfg in version.stage_configs.items() if "scores" in _annotations(cfg)
    }
    for path in version.files("data"):
        schema = pq.read_schema(path)
        facts.columns = schema.names
        wanted = [c for c in ("messages", "source", "langid", "scores", "lineage") if c in schema.names]
        for batch in pq.ParquetFile(path).iter_batches(columns=wanted, batch_size=8192):
            table = pa.Table.from_batches([batch])
            _scan_messages(table, facts, count)
            _scan_language(table, facts)
            score = _field(table, "langid", "score")
            if score is not None:
                facts.lang_kept.append(pc.drop_null(score).to_numpy(zero_copy_only=False))
            if "scores" in table.column_names:
                for key, value in _score_pairs(table["scores"]):
                    facts.scores_kept.setdefault(key, []).append(value)
            model, revision = _field(table, "lineage", "model"), _field(table, "lineage", "model_revision")
            if model is not None:
                for m, r in zip(model.to_pylist(), revision.to_pylist(), strict=True):
                    if m:
                        facts.lineage_models[(m, r)] += 1
    for path in version.files("rejects"):
        schema = pq.read_schema(path)
        wanted = [c for c in ("stage", "langid", "scores") if c in schema.names]
        table = pq.read_table(path, columns=wanted)
        stage = table["stage"].to_pylist()
        score = _field(table, "langid", "score")
        if score is not None and langid_stages:
            mask = pa.array([s in langid_stages for s in stage])
            langs, scores = _field(table, "langid", "lang").filter(mask), score.filter(mask)
            for lang in sorted({x for x in langs.to_pylist() if x is not None}):
                chosen = pc.drop_null(scores.filter(pc.equal(langs, lang)))
                facts.lang_rejected.setdefault(lang, []).append(chosen.to_numpy(zero_copy_only=False))
        if "scores" in table.column_names:
            for i, pairs in enumerate(table["scores"].to_pylist()):
                for key, value in pairs or []:
                    if score_stage.get(key) == stage[i]:
                        facts.scores_rejected.setdefault(key, []).append(value)
    for key in facts.scores_kept:  # every score is drawn with its rejects, if any, even none kept
        facts.scores_rejected.setdefault(key, [])
    return facts


def _annotations(stage_config: dict[str, Any]) -> list[str]:
    from frcorpus.stages import REGISTRY

    cls = REGISTRY.get(stage_config.get("type", ""))
    return [name for name, _ in cls.annotations] if cls else []


def _score_pairs(column: pa.ChunkedArray):
    for pairs in column.to_pylist():
        yield from pairs or []


def _scan_messages(table: pa.Table, facts: DataFacts, count: LengthCounter) -> None:
    messages = table["messages"].combine_chunks()
    flat = pc.list_flatten(messages)
    parents = pc.list_parent_indices(messages).to_numpy()
    roles = pc.struct_field(flat, "role")
    content = pc.struct_field(flat, "content")
    spoken = np.asarray(pc.not_equal(roles, "system").to_numpy(zero_copy_only=False), dtype=bool)
    facts.turns.append(np.bincount(parents[spoken], minlength=len(messages)))
    for role, out in (("user", facts.prompt_lengths), ("assistant", facts.answer_lengths)):
        out.append(count(content.filter(pc.equal(roles, role))))


def _scan_language(table: pa.Table, facts: DataFacts) -> None:
    """The record's language as `record.record_language` gives it: langid's, else a translation's
    target, else the source's declared one."""
    n = table.num_rows
    lang = _field(table, "langid", "lang")
    if lang is not None:
        lang = pc.if_else(pc.equal(lang, "und"), pa.scalar(None, pa.string()), lang)
    candidates = [
        c for c in (lang, _field(table, "lineage", "target_lang"), _field(table, "source", "language")) if c is not None
    ]
    found = pc.coalesce(*candidates) if candidates else pa.nulls(n, pa.string())
    for item in pc.value_counts(found).to_pylist():
        facts.languages[item["values"]] += item["counts"]


# ----------------------------------------------------------------------------------- plots


KEPT, REJECTED, SECOND = "#2a6f97", "#d1495b", "#edae49"
STYLE = {
    "font.family": "DejaVu Sans",  # shipped with matplotlib: the same glyphs (é, «, ’) on every machine
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e3e3e3",
    "grid.linewidth": 0.8,
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.dpi": 110,
    "path.simplify": False,
}


def fmt(n: float) -> str:
    """12 345: a narrow no-break space groups digits, as in French and SI."""
    return f"{int(n):,}".replace(",", "\u202f")


@dataclass(frozen=True)
class Plot:
    file: str  # plots/<name>.png, relative to the version directory
    title: str


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})  # no version or date in the file
    return buf.getvalue()


def _int_axis(ax, axis: str = "y") -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(MaxNLocator(integer=True))
    target.set_major_formatter(FuncFormatter(lambda v, _: fmt(v)))


def plot_source_mix(version: Version):
    sources = version.stats["sources"]
    if not sources or not any(s["read"] for s in sources.values()):
        return None
    names = list(sources)
    kept = np.array([sources[n]["kept"] for n in names])
    rejected = np.array([sources[n]["rejected"] for n in names])
    fig = _figure(8, 1.6 + 0.45 * len(names))
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


def plot_rejects(version: Version):
    reasons: list[tuple[str, str, int]] = []
    for stage_id, st in version.stats["stages"].items():
        reasons.extend((stage_id, reason, n) for reason, n in st["rejected"].items() if n)
    if not reasons:
        return None
    reasons.sort(key=lambda r: (-r[2], r[1]))
    if len(reasons) > MAX_REASONS:
        rest = reasons[MAX_REASONS - 1 :]
        reasons = reasons[: MAX_REASONS - 1] + [("", f"{len(rest)} other reasons", sum(r[2] for r in rest))]
    shown = {r[0] for r in reasons}
    stage_order = [s for s in version.stats["stages"] if s in shown]  # the legend in pipeline order
    import matplotlib as mpl

    palette = mpl.colormaps["tab10"].colors
    colors = {s: palette[i % len(palette)] for i, s in enumerate(stage_order)}
    fig = _figure(8, 1.4 + 0.28 * len(reasons))
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
    fig = _figure(8, 3.6)
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
    fig = _figure(8, 3.8)
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
    fig = _figure(8, 3.6)
    ax = fig.add_subplot()
    _score_hist(ax, groups, np.linspace(0, 1, 21))
    ax.set_xlim(0, 1)
    ax.set_xlabel("confidence in the detected language of the conversation (fastText; column langid.score)")
    ax.set_ylabel("conversations")
    ax.set_title("Language identification: kept and rejected conversations")
    return fig


def plot_quality_scores(version: Version, facts: DataFacts):
    keys = sorted(facts.scores_kept)
    if not keys:
        return None
    cols = min(2, len(keys))
    rows = (len(keys) + cols - 1) // cols
    fig = _figure(8, 0.6 + 3.0 * rows)
    thresholds = {  # score key -> the min_score its stage decides with, where the YAML sets one
        cfg.get("name") or sid: cfg.get("min_score")
        for sid, cfg in version.stage_configs.items()
        if "scores" in _annotations(cfg)
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


def write_plots(version: Version, facts: DataFacts, length_label: str) -> list[Plot]:
    """Draw every plot whose data the version has into plots/; remove plots a previous render left."""
    import matplotlib as mpl

    folder = version.dir / PLOTS
    written: list[Plot] = []
    with mpl.rc_context():
        mpl.rcdefaults()  # a user's matplotlibrc must not change the bytes
        mpl.rcParams.update(STYLE)
        for name, (title, make) in PLOT_MAKERS.items():
            fig = make(version, facts, length_label)
            if fig is None:
                continue
            write_if_changed(folder / f"{name}.png", _png(fig))
            written.append(Plot(f"{PLOTS}/{name}.png", title))
    keep = {Path(p.file).name for p in written}
    for stale in folder.glob("*.png") if folder.is_dir() else []:
        if stale.name not in keep:
            stale.unlink()
    return written


# ----------------------------------------------------------------------------------- the card's context


def configured_models(stage_configs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Models the stages were configured with: (stage, role, model, revision)."""
    from frcorpus import __version__

    bundled = {"model": "lid.176.ftz (fastText)", "revision": f"bundled with frcorpus {__version__}"}
    models = []
    for sid, cfg in stage_configs.items():
        kind = cfg.get("type")
        if kind == "langid":
            found = {"model": cfg["model"], "revision": None} if cfg.get("model") else bundled
            models.append({"stage": sid, "role": "language identification", **found})
        if isinstance(cfg.get("llm"), dict):
            llm = cfg["llm"]
            role = {"translate": "translation", "llm_judge": "judge"}.get(kind, "generation")
            models.append({"stage": sid, "role": role, "model": llm.get("model"), "revision": llm.get("revision")})
        if kind == "translate":
            found = {"model": cfg["langid_model"], "revision": None} if cfg.get("langid_model") else bundled
            models.append({"stage": sid, "role": "language gate", **found})
        if kind == "decontaminate" and "embedding" in (cfg.get("methods") or []):
            models.append({"stage": sid, "role": "embeddings", "model": cfg.get("embedding_model"), "revision": None})
        if kind == "semantic_dedup":
            models.append({"stage": sid, "role": "embeddings", "model": cfg.get("model"), "revision": None})
        if kind == "quality_classifier":
            models.append({"stage": sid, "role": "quality scorer", "model": cfg.get("scorer"), "revision": None})
    return models


def _cell(value: Any) -> str:
    """A Markdown table cell: a `|` would end it, a newline would end the row."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _revision(revision: str | None) -> str:
    """A commit or content hash as code, a tag or a sentence as text."""
    if not revision:
        return "-"
    return f"`{revision}`" if re.fullmatch(r"[0-9a-f]{7,64}", revision) else _cell(revision)


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in `text`."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _source_rows(version: Version) -> list[dict[str, Any]]:
    inputs = {i["name"]: i for i in version.manifest.get("inputs", [])}
    rows = []
    for name, s in version.stats["sources"].items():
        info = inputs.get(name, {})
        files = info.get("files", [])
        if info.get("revision"):
            revision = f"`{info['revision'][:12]}`"
        elif len(files) == 1 and files[0].get("sha256"):
            revision = f"sha256 `{files[0]['sha256'][:12]}`"
        else:
            revision = f"{len(files)} files (sha256 in manifest.json)" if files else "-"
        licence = s.get("license") or info.get("license")
        rows.append(
            {
                "name": name,
                "origin": info.get("uri", "-"),
                "revision": revision,
                "license": f"{licence} ({parse(licence).label})" if licence else "not declared",
                "read": s["read"],
                "kept": s["kept"],
                "rejected": s["rejected"],
                "formats": ", ".join(sorted(s.get("formats", {}))) or "-",
            }
        )
    return rows


def _stage_rows(version: Version) -> list[dict[str, Any]]:
    rows = []
    for stage_id, st in version.stats["stages"].items():
        kind = version.stage_type(stage_id)
        reasons = sorted(st["rejected"].items(), key=lambda r: (-r[1], r[0]))
        rows.append(
            {
                "label": stage_id if kind == stage_id else f"{stage_id} ({kind})",
                "in": st["in"],
                "kept": st["kept"],
                "rejected": sum(st["rejected"].values()),
                "reasons": ", ".join(f"{r}: {n}" for r, n in reasons) or "-",
            }
        )
    return rows


def _decontamination(version: Version) -> list[dict[str, Any]]:
    reports = []
    for sid, cfg in version.stage_configs.items():
        if cfg.get("type") != "decontaminate" or sid not in version.stats["stages"]:
            continue
        st = version.stats["stages"][sid]
        counters = st.get("counters", {})
        benchmarks = []
        for b in cfg.get("benchmarks") or []:
            name = b["name"]
            prefix = f"decontaminate.{name}."
            removed = sum(n for r, n in st["rejected"].items() if r.startswith(prefix))
            flagged = sum(n for k, n in counters.items() if k.startswith(f"would_reject.{prefix}"))
            items = sum(1 for k in counters if k.startswith(f"{name}.item."))
            benchmarks.append(
                {
                    "name": name,
                    "removed": removed,
                    "flagged": flagged,
                    "matching": counters.get(f"{name}.records", 0),
                    "distinct_items": items,
                }
            )
        reports.append(
            {
                "stage": sid,
                "methods": ", ".join(cfg.get("methods") or []),
                "annotate_only": bool(cfg.get("annotate_only")),
                "in": st["in"],
                "benchmarks": benchmarks,
            }
        )
    return reports


def _licence_context(version: Version, chosen: OutputLicence) -> dict[str, Any]:
    card = version.config.get("card") or {}
    return {
        "id": chosen.id,
        "name": chosen.name,
        "chosen": chosen.chosen,
        "allow_conflict": bool(card.get("allow_license_conflict")),
        "conflicts": [{"source": s, "license": lic, "label": parse(lic).label} for s, lic in chosen.conflicts],
        "undeclared": [n for n, s in version.stats["sources"].items() if not s.get("license")],
        "sources": sorted({s["license"] for s in version.stats["sources"].values() if s.get("license")}),
    }


def header(version: Version, chosen: OutputLicence, languages: list[str], has_rejects: bool) -> dict[str, Any]:
    """The card's YAML header, as the Hub reads it (`configs` make load_dataset find the splits)."""
    card = version.config.get("card") or {}
    splits = split_files(version.dir)
    configs = [{"config_name": "default", "data_files": [{"split": k, "path": v} for k, v in splits.items()]}]
    if has_rejects:
        configs.append({"config_name": "rejects", "data_files": [{"split": "train", "path": "rejects/*.parquet"}]})
    data: dict[str, Any] = {}
    if languages:
        data["language"] = languages
    data["license"] = chosen.id
    if chosen.name:
        data["license_name"] = chosen.name
    data.update(
        {
            "task_categories": ["text-generation"],
            "size_categories": [size_category(version.stats["totals"]["kept"])],
            "tags": list(dict.fromkeys(BASE_TAGS + list(card.get("tags") or []))),
            "pretty_name": version.manifest.get("name") or version.config.get("name"),
            "configs": configs,
        }
    )
    return data


def context(
    version: Version,
    facts: DataFacts,
    plots: list[Plot],
    length_label: str,
    repo_id: str | None,
    include_rejects: bool = True,
):
    stats, manifest = version.stats, version.manifest
    card = version.config.get("card") or {}
    licences = {n: s.get("license") for n, s in stats["sources"].items()}
    chosen = output_licence(licences, card.get("license"), bool(card.get("allow_license_conflict")))
    total_lang = sum(facts.languages.values())
    languages = [
        {"code": code, "records": n, "share": f"{100 * n / total_lang:.1f}".removesuffix(".0")}
        for code, n in sorted(facts.languages.items(), key=lambda kv: (-kv[1], str(kv[0])))
        if code
    ]
    has_rejects = include_rejects and bool(version.files("rejects"))
    split_rows = Counter()  # rows per split, from the manifest's file list
    for rel, entry in version.manifest.get("files", {}).items():
        if rel.startswith("data/"):
            name = Path(rel).name
            split_rows[name.split("-", 1)[0] if "-" in name else "train"] += entry.get("rows", 0)
    turns, answers = DataFacts.cat(facts.turns), DataFacts.cat(facts.answer_lengths)
    prompts = DataFacts.cat(facts.prompt_lengths)
    models = configured_models(version.stage_configs)
    for (model, revision), n in sorted(facts.lineage_models.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        models.append(
            {"stage": "lineage", "role": f"translated {n} kept records", "model": model, "revision": revision}
        )
    name = manifest.get("name") or version.config.get("name")
    data = header(version, chosen, [lang["code"] for lang in languages], has_rejects)
    return data, {
        "name": name,
        "version": manifest.get("version", version.dir.name),
        "description": version.config.get("description"),
        "created": (manifest.get("created") or "")[:10],
        "totals": stats["totals"],
        "columns": facts.columns,
        "languages": languages,
        "size": {
            "turns": int(turns.sum()),
            "median_turns": float(np.median(turns)) if turns.size else 0,
            "median_prompt": float(np.median(prompts)) if prompts.size else 0,
            "median_answer": float(np.median(answers)) if answers.size else 0,
            "unit": length_label.split(" ")[0],
        },
        "licence": _licence_context(version, chosen),
        "sources": _source_rows(version),
        "stages": _stage_rows(version),
        "plots": plots,
        "decontamination": _decontamination(version),
        "has_rejects": has_rejects,
        "splits": {k: split_rows.get(k, 0) for k in split_files(version.dir)},
        "train_files": next(iter(split_files(version.dir).values())),
        "repo_id": repo_id or f"your-namespace/{name}",
        "frcorpus_version": manifest.get("frcorpus"),
        "dependencies": manifest.get("dependencies", {}),
        "models": models,
        "pipeline_yaml": version.pipeline_text.rstrip("\n"),
        "fence": _fence(version.pipeline_text),
        "fingerprint": manifest.get("fingerprint") or stats.get("fingerprint"),
        "run_key": manifest.get("run_key"),
    }


# ----------------------------------------------------------------------------------- rendering


def card_environment():
    """Jinja over the cards/ templates (dataset and model cards), with the table-cell and revision filters.
    The templates are user-editable files, so they render in the sandbox: they cannot reach Python."""
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(resource_dir("cards"))),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # Markdown, not HTML
    )
    env.filters["cell"] = _cell
    env.filters["revision"] = _revision
    return env


def render(card_data: dict[str, Any], ctx: dict[str, Any]) -> str:
    """cards/dataset_card.md.j2 with the header from DatasetCardData, checked by parsing it back with
    DatasetCard. StrictUndefined: a name the template misspells is an error, not an empty cell."""
    from huggingface_hub import DatasetCard, DatasetCardData

    env = card_environment()
    yaml_header = DatasetCardData(**card_data).to_yaml()
    text = env.get_template(TEMPLATE).render(card_data=yaml_header, **ctx)
    parsed = DatasetCard(text).data.to_dict()
    lost = sorted(k for k in card_data if parsed.get(k) != card_data[k])
    if lost:
        raise CardError(
            f"dataset card header does not read back as written ({', '.join(lost)}); "
            f"check {resource_dir('cards') / TEMPLATE}"
        )
    return text


@dataclass
class CardResult:
    readme: Path
    plots: list[Path]
    text: str


def write_card(version_dir: Path, repo_id: str | None = None) -> CardResult:
    """Write README.md and plots/ of a version directory from its files. Touches nothing else."""
    version_dir = Path(version_dir)
    version = Version.read(version_dir)
    count = LengthCounter((version.config.get("card") or {}).get("tokenizer"))
    facts = scan_data(version, count)
    plots = write_plots(version, facts, count.label)
    card_data, ctx = context(version, facts, plots, count.label, repo_id)
    text = render(card_data, ctx)
    write_if_changed(version_dir / CARD, text.encode("utf-8"))
    return CardResult(version_dir / CARD, [version_dir / p.file for p in plots], text)


def card_text(version_dir: Path, repo_id: str | None = None, include_rejects: bool = True) -> str:
    """The card for a copy of the version elsewhere (a Hub repo): its `repo_id` in the loading examples,
    and no `rejects` configuration when the rejects are not published with it. Writes nothing; links
    the plots already in plots/."""
    version = Version.read(Path(version_dir))
    count = LengthCounter((version.config.get("card") or {}).get("tokenizer"))
    facts = scan_data(version, count)
    plots = [
        Plot(f"{PLOTS}/{n}.png", t) for n, (t, _) in PLOT_MAKERS.items() if (version.dir / PLOTS / f"{n}.png").is_file()
    ]
    return render(*context(version, facts, plots, count.label, repo_id, include_rejects))


def manifest_models(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The models of a resolved pipeline configuration, for manifest.json."""
    stages = config.get("stages") or []
    return configured_models(dict(zip(stage_ids(stages), stages, strict=True)))


def is_card_file(rel: str) -> bool:
    """README.md and plots/: the files of a version derived from the others, which `frcorpus card` rewrites."""
    return rel == CARD or rel.startswith(f"{PLOTS}/")


def seal_card(version_dir: Path, card: CardResult) -> dict[str, Any]:
    """List the card files just written in the manifest, in place of those it listed, and reseal it
    (manifest.sha256); return the manifest. When their entries are unchanged nothing is written: a render
    that gives the same bytes leaves manifest.json and manifest.sha256 byte for byte as they were."""
    manifest = read_manifest(version_dir)
    files = {rel: entry for rel, entry in manifest["files"].items() if not is_card_file(rel)}
    files.update({p.relative_to(version_dir).as_posix(): file_entry(p) for p in [card.readme, *card.plots]})
    if files != manifest["files"]:
        manifest = {**manifest, "files": files}
        write_manifest(version_dir, manifest)
    return manifest


def refresh_card(version_dir: Path, repo_id: str | None = None) -> CardResult:
    """`frcorpus card`: re-render README.md and plots/ of a version that matches its manifest in every file
    (`check_version`, else VersionCheckError and nothing written), then seal them into the manifest. The
    one rewrite a version allows, of files derived from the others; manifest.json and manifest.sha256
    change only when the card's bytes do (another `repo_id`, another frcorpus release)."""
    check_version(Path(version_dir))
    card = write_card(version_dir, repo_id)
    seal_card(Path(version_dir), card)
    return card
