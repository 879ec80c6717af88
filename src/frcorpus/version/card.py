"""The dataset card of a version directory: README.md (Hub YAML header + sections) and plots/*.png.

Everything comes from the version's own files (stats.json, manifest.json, pipeline.yaml,
pipeline.resolved.yaml, data/ and rejects/ Parquet), so that the run's finalize step and
`frcorpus card VERSION_DIR` give the same bytes. The Markdown comes from the Jinja template
`cards/dataset_card.md.j2` with the header written by huggingface_hub's `DatasetCardData` and parsed
back by `DatasetCard`; any failure is an error. The facts come from `facts`, the plots from `plots`,
the sections that explain (attribution, example record, rejections by source, languages, limitations)
from `card_sections`.

The card knows no stage class: the models come from manifest.json, the rest from the stats and the
resolved pipeline. What is particular to one stage type is read from those files by type name: the
decontamination section (a `decontaminate` stage's benchmarks and counters) and the language-score plot
(the records a `langid` stage rejected).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from frcorpus.card_templates import CardError, card_environment, code_fence
from frcorpus.licenses import OutputLicence, output_licence, parse
from frcorpus.resources import resource_dir
from frcorpus.version.card_sections import (
    attribution_notes,
    corpus_languages,
    example_record,
    licence_cell,
    limitations,
    rejections_by_source,
    requested_languages,
    source_attribution,
    upstream,
)
from frcorpus.version.facts import DataFacts, LengthCounter, scan_data
from frcorpus.version.layout import (
    CARD,
    MANIFEST,
    PIPELINE,
    PLOTS,
    REJECTS,
    RESOLVED,
    STATS,
    FileEntry,
    Manifest,
    VersionDir,
    split_files,
)
from frcorpus.version.plots import Plot, existing_plots, write_plots
from frcorpus.version.writer import check_version, file_entry, write_if_changed, write_manifest

TEMPLATE = "dataset_card.md.j2"
BASE_TAGS = ["frcorpus", "sft", "instruction-tuning"]
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
CARD_INPUTS = (STATS, MANIFEST, PIPELINE, RESOLVED)  # the files the card is made from


def size_category(n: int) -> str:
    for limit, label in SIZE_CATEGORIES:
        if n < limit:
            return label
    return "1B<n<10B"


def open_version(version_dir: Path) -> VersionDir:
    """The version whose card is made, once its card inputs are there."""
    version = VersionDir(version_dir)
    missing = [n for n in CARD_INPUTS if not (version.path / n).is_file()]
    if missing:
        raise CardError(f"{version.path} is not a frcorpus version directory: {', '.join(missing)} missing")
    return version


# ----------------------------------------------------------------------------------- the card's context


def _source_rows(version: VersionDir) -> list[dict[str, Any]]:
    inputs = {i.name: i for i in version.manifest.inputs}
    attribution = source_attribution(version)
    rows = []
    for name, s in version.stats.sources.items():
        info = inputs.get(name)
        files = info.files if info else []
        if info and info.revision:
            revision = f"`{info.revision[:12]}`"
        elif len(files) == 1 and files[0].sha256:
            revision = f"sha256 `{files[0].sha256[:12]}`"
        else:
            revision = f"{len(files)} files (sha256 in manifest.json)" if files else "-"
        licence = s.license or (info.license if info else None)
        credit = attribution.get(name, {"homepage": None, "citation": None, "description": None})
        rows.append(
            {
                "name": name,
                "upstream": upstream(info.uri, credit["homepage"]) if info else "-",
                **credit,
                "revision": revision,
                "license": licence_cell(licence),
                "license_id": licence,
                "read": s.read,
                "kept": s.kept,
                "rejected": s.rejected,
                "formats": ", ".join(sorted(s.formats)) or "-",
            }
        )
    return rows


def _stage_rows(version: VersionDir) -> list[dict[str, Any]]:
    rows = []
    for stage_id, st in version.stats.stages.items():
        kind = version.stage_type(stage_id)
        reasons = sorted(st.rejected.items(), key=lambda r: (-r[1], r[0]))
        rows.append(
            {
                "label": stage_id if kind == stage_id else f"{stage_id} ({kind})",
                "in": st.n_in,
                "kept": st.kept,
                "rejected": sum(st.rejected.values()),
                "reasons": ", ".join(f"{r}: {n}" for r, n in reasons) or "-",
            }
        )
    return rows


def _decontamination(version: VersionDir) -> list[dict[str, Any]]:
    """The decontamination section: per `decontaminate` stage, its benchmarks with the records removed
    or flagged (its reasons and `would_reject.` counters) and the items matched (its counters)."""
    reports = []
    for sid, cfg in version.stage_configs.items():
        if cfg.get("type") != "decontaminate" or sid not in version.stats.stages:
            continue
        st = version.stats.stages[sid]
        counters = st.counters
        benchmarks = []
        for b in cfg.get("benchmarks") or []:
            name = b["name"]
            prefix = f"decontaminate.{name}."
            removed = sum(n for r, n in st.rejected.items() if r.startswith(prefix))
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
                "in": st.n_in,
                "benchmarks": benchmarks,
            }
        )
    return reports


def _licence_context(version: VersionDir, chosen: OutputLicence) -> dict[str, Any]:
    card = version.config.get("card") or {}
    return {
        "id": chosen.id,
        "name": chosen.name,
        "chosen": chosen.chosen,
        "allow_conflict": bool(card.get("allow_license_conflict")),
        "conflicts": [{"source": s, "license": lic, "label": parse(lic).label} for s, lic in chosen.conflicts],
        "undeclared": [n for n, s in version.stats.sources.items() if not s.license],
        "sources": sorted({s.license for s in version.stats.sources.values() if s.license}),
    }


def header(version: VersionDir, chosen: OutputLicence, languages: list[str], has_rejects: bool) -> dict[str, Any]:
    """The card's YAML header, as the Hub reads it (`configs` make load_dataset find the splits)."""
    card = version.config.get("card") or {}
    splits = split_files(version.path)
    configs = [{"config_name": "default", "data_files": [{"split": k, "path": v} for k, v in splits.items()]}]
    if has_rejects:
        configs.append({"config_name": "rejects", "data_files": [{"split": "train", "path": f"{REJECTS}/*.parquet"}]})
    data: dict[str, Any] = {}
    if languages:
        data["language"] = languages
    data["license"] = chosen.id
    if chosen.name:
        data["license_name"] = chosen.name
    data.update(
        {
            "task_categories": ["text-generation"],
            "size_categories": [size_category(version.stats.totals.kept)],
            "tags": list(dict.fromkeys(BASE_TAGS + list(card.get("tags") or []))),
            "pretty_name": version.manifest.name or version.config.get("name"),
            "configs": configs,
        }
    )
    return data


def context(
    version: VersionDir,
    facts: DataFacts,
    plots: list[Plot],
    length_label: str,
    repo_id: str | None,
    include_rejects: bool = True,
):
    """The card's YAML header and the template's variables."""
    stats, manifest = version.stats, version.manifest
    card = version.config.get("card") or {}
    licences = {n: s.license for n, s in stats.sources.items()}
    chosen = output_licence(licences, card.get("license"), bool(card.get("allow_license_conflict")))
    total_lang = sum(facts.languages.values())
    languages = [
        {"code": code, "records": n, "share": f"{100 * n / total_lang:.1f}".removesuffix(".0")}
        for code, n in sorted(facts.languages.items(), key=lambda kv: (-kv[1], str(kv[0])))
        if code
    ]
    has_rejects = include_rejects and bool(version.reject_files())
    split_rows = version.split_rows()
    splits = split_files(version.path)
    turns, answers = DataFacts.cat(facts.turns), DataFacts.cat(facts.answer_lengths)
    prompts = DataFacts.cat(facts.prompt_lengths)
    models = [m.as_json() for m in manifest.models]
    for (model, revision), n in sorted(facts.lineage_models.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        models.append(
            {"stage": "lineage", "role": f"translated {n} kept records", "model": model, "revision": revision}
        )
    name = manifest.name or version.config.get("name")
    declared = corpus_languages(version, facts.languages)
    requested = requested_languages(version)
    data = header(version, chosen, declared, has_rejects)
    sources = _source_rows(version)
    split_counts = {k: split_rows.get(k, 0) for k in splits}
    translated = sum(facts.lineage_models.values())
    return data, {
        "name": name,
        "version": manifest.version,
        "description": version.config.get("description"),
        "created": manifest.created[:10],
        "totals": stats.totals.as_json(),
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
        "sources": sources,
        "attribution": attribution_notes(sources),
        "requested_languages": requested,
        "stages": _stage_rows(version),
        "rejections": rejections_by_source(version),
        "example": example_record(version),
        "limitations": limitations(version, declared, requested, translated, split_counts.get("test", 0)),
        "plots": plots,
        "decontamination": _decontamination(version),
        "has_rejects": has_rejects,
        "splits": split_counts,
        "split_files": splits,
        "repo_id": repo_id or f"your-namespace/{name}",
        "frcorpus_version": manifest.frcorpus,
        "dependencies": manifest.dependencies,
        "models": models,
        "pipeline_yaml": version.pipeline_text.rstrip("\n"),
        "fence": code_fence(version.pipeline_text),
        "fingerprint": manifest.fingerprint,
        "run_key": manifest.run_key,
    }


# ----------------------------------------------------------------------------------- rendering


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
    version = open_version(version_dir)
    count = LengthCounter((version.config.get("card") or {}).get("tokenizer"))
    facts = scan_data(version, count)
    plots = write_plots(version, facts, count.label)
    card_data, ctx = context(version, facts, plots, count.label, repo_id)
    text = render(card_data, ctx)
    write_if_changed(version.card_file, text.encode("utf-8"))
    return CardResult(version.card_file, [version.path / p.file for p in plots], text)


def card_text(version_dir: Path, repo_id: str | None = None, include_rejects: bool = True) -> str:
    """The card for a copy of the version elsewhere (a Hub repo): its `repo_id` in the loading examples,
    and no `rejects` configuration when the rejects are not published with it. Writes nothing; links
    the plots already in plots/."""
    version = open_version(version_dir)
    count = LengthCounter((version.config.get("card") or {}).get("tokenizer"))
    facts = scan_data(version, count)
    return render(*context(version, facts, existing_plots(version), count.label, repo_id, include_rejects))


def is_card_file(rel: str) -> bool:
    """README.md and plots/: the files of a version derived from the others, which `frcorpus card` rewrites."""
    return rel == CARD or rel.startswith(f"{PLOTS}/")


def seal_card(version_dir: Path, card: CardResult) -> Manifest:
    """List the card files just written in the manifest, in place of those it listed, and reseal it
    (manifest.sha256); return the manifest. When their entries are unchanged nothing is written: a render
    that gives the same bytes leaves manifest.json and manifest.sha256 byte for byte as they were."""
    manifest = VersionDir(version_dir).manifest
    files = {rel: entry for rel, entry in manifest.files.items() if not is_card_file(rel)}
    files.update({p.relative_to(version_dir).as_posix(): file_entry(p) for p in [card.readme, *card.plots]})
    if _as_json(files) != _as_json(manifest.files):
        manifest = manifest.model_copy(update={"files": files})
        write_manifest(version_dir, manifest)
    return manifest


def _as_json(files: dict[str, FileEntry]) -> dict[str, Any]:
    return {rel: entry.as_json() for rel, entry in files.items()}


def refresh_card(version_dir: Path, repo_id: str | None = None) -> CardResult:
    """`frcorpus card`: re-render README.md and plots/ of a version that matches its manifest in every file
    (`check_version`, else VersionCheckError and nothing written), then seal them into the manifest. The
    one rewrite a version allows, of files derived from the others; manifest.json and manifest.sha256
    change only when the card's bytes do (another `repo_id`, another frcorpus release)."""
    check_version(Path(version_dir))
    card = write_card(version_dir, repo_id)
    seal_card(Path(version_dir), card)
    return card
