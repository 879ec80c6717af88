"""The parts of the dataset card that explain the data rather than count it: who the sources come from
(attribution), one record as a reader meets it, the rejections of each source, the corpus's languages,
and the limitations the run knows of.

Like the rest of the card, everything comes from the version's files: pipeline.yaml (what the user set)
and pipeline.resolved.yaml (every value), stats.json (the stages' counters), manifest.json, and the
Parquet files. What is particular to a stage type is read by its type name; nothing here is claimed
that the run does not show.
"""

from __future__ import annotations

import re
import textwrap
from collections import Counter
from pathlib import PurePosixPath
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from frcorpus.card_templates import code_fence
from frcorpus.licenses import parse
from frcorpus.version.layout import VersionDir, split_files

EXAMPLE_CHARS = 600  # a message of the example record is cut after about this many characters
EXAMPLE_MESSAGES = 6  # and the conversation after this many messages
EXAMPLE_WIDTH = 100  # its lines are wrapped at this width, for reading in a code block
EXAMPLE_SCAN = 2_000  # rows of the first data file the example is chosen among
HUB_DATASET = re.compile(r"^hf://datasets/(?P<repo>[^@]+)")
GLOB = re.compile(r"[*?\[]")
REQUESTED = "kept_requested_language."  # langid's counter of answers kept because a user asked for them
QUALITY_STAGES = ("llm_judge", "quality_classifier", "relevance")
DEDUP_STAGES = ("exact_dedup", "minhash_dedup", "semantic_dedup")


# ----------------------------------------------------------------------------------- attribution


def upstream(uri: str, homepage: str | None) -> str:
    """The sources table's `upstream` cell (Markdown): the homepage and the Hub dataset when there are;
    else the file's name, never the path it had on the machine that ran the pipeline."""
    parts = [f"<{homepage}>"] if homepage else []
    hub = HUB_DATASET.match(uri)
    if hub:
        parts.append(f"[{hub['repo']}](https://huggingface.co/datasets/{hub['repo']})")
    if parts:  # where the data comes from; the file frcorpus read is in manifest.json
        return " ".join(parts)
    if uri.startswith("frcorpus://"):
        return f"`{uri}` (bundled with frcorpus)"
    path = PurePosixPath(uri.replace("\\", "/").rstrip("/"))
    name = f"{path.parent.name}/{path.name}" if GLOB.search(path.name) and path.parent.name else path.name
    return f"`{name}` (local file)"


def source_attribution(version: VersionDir) -> dict[str, dict[str, Any]]:
    """Source name -> what the pipeline says of its upstream: homepage, citation, description (None when
    not given, or for a version written before these options existed)."""
    found = {}
    for source in version.config.get("sources") or []:
        found[source["name"]] = {
            "homepage": source.get("homepage"),
            "citation": (source.get("citation") or "").strip() or None,
            "description": (source.get("description") or "").strip() or None,
        }
    return found


def attribution_notes(sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The card's Attribution paragraphs, one per source (from the rows of the sources table): its name,
    licence, description and homepage in a sentence, and its citation."""
    notes = []
    for s in sources:
        licence = s["license_id"] or "licence not declared"
        words = [f"**{s['name']}** ({licence})"]
        if s["description"] or s["homepage"]:
            description = s["description"] or ""
            if description and description[-1] not in ".!?":
                description += "."
            homepage = f"<{s['homepage']}>" if s["homepage"] else ""
            words = [words[0] + ":", *(w for w in (description, homepage) if w)]
        else:
            words.append("names no upstream: the pipeline gives it no homepage, description or citation.")
        citation = s["citation"]
        notes.append(
            {
                "text": " ".join(words),
                "citation": citation,
                "citation_language": "bibtex" if citation and citation.startswith("@") else "text",
                "citation_fence": code_fence(citation or ""),
                "credited": bool(s["homepage"] or s["citation"]),
            }
        )
    return notes


# ----------------------------------------------------------------------------------- languages


def _langid_filters(version: VersionDir) -> list[dict[str, Any]]:
    """The `langid` stages that rejected (not `annotate_only`), with their resolved options."""
    return [
        cfg for cfg in version.stage_configs.values() if cfg.get("type") == "langid" and not cfg.get("annotate_only")
    ]


def corpus_languages(version: VersionDir, found: Counter) -> list[str]:
    """The languages the card header declares: those a `langid` stage keeps (found in the data; all of
    them for a corpus with no record left), else the languages found (the sources' declared ones, or a
    translation's target). Languages of the answers `allow_requested` let through are not the corpus's:
    the card body lists them (`requested_languages`)."""
    filters = _langid_filters(version)
    if not filters:
        return [code for code, _ in sorted(found.items(), key=lambda kv: (-kv[1], str(kv[0]))) if code]
    keep = [code for code in filters[0].get("keep") or [] if all(code in (f.get("keep") or []) for f in filters)]
    present = [code for code in keep if found.get(code)]
    return present or keep


def requested_languages(version: VersionDir) -> list[dict[str, Any]]:
    """The answers in another language a `langid` stage kept because a user turn asked for that language:
    language -> records, from its counters."""
    counts: Counter = Counter()
    for sid, cfg in version.stage_configs.items():
        if cfg.get("type") == "langid" and sid in version.stats.stages:
            for key, n in version.stats.stages[sid].counters.items():
                if key.startswith(REQUESTED):
                    counts[key[len(REQUESTED) :]] += int(n)
    return [{"code": code, "records": n} for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


# ----------------------------------------------------------------------------------- rejections by source


def rejections_by_source(version: VersionDir) -> dict[str, Any]:
    """Rejected records per reason (rows, in the order of the stages, then by count) and per source
    (columns, in the order of stats.json), counted in rejects/ (every rejected record is there, with its
    source and reason). Sources that rejected nothing have a column of zeros."""
    counts: Counter = Counter()
    for path in version.reject_files():
        table = pq.read_table(path, columns=["source", "reason"])
        names = pc.struct_field(table["source"].combine_chunks(), "name")
        grouped = (
            pa.table({"source": names, "reason": table["reason"]})
            .group_by(["reason", "source"])
            .aggregate([([], "count_all")])
        )
        for row in grouped.to_pylist():
            counts[(row["reason"], row["source"])] += row["count_all"]
    sources = list(version.stats.sources)
    rows = []
    for st in version.stats.stages.values():
        for reason, total in sorted(st.rejected.items(), key=lambda r: (-r[1], r[0])):
            rows.append({"reason": reason, "counts": [counts[(reason, s)] for s in sources], "total": total})
    return {"sources": sources, "rows": rows}


# ----------------------------------------------------------------------------------- the example record


def example_record(version: VersionDir) -> dict[str, Any] | None:
    """One kept record of the first split, as a reader would meet it: among the first rows of its first
    file, the conversation whose answers' length is the median (neither a one-liner nor the longest), its
    messages cut to a readable size. None for a version with no record."""
    split, pattern = next(iter(split_files(version.path).items()))
    files = version.data_files(split if pattern != "data/*.parquet" else None)
    rows: list[dict[str, Any]] = []
    for path in files:
        parquet = pq.ParquetFile(path)
        columns = [c for c in ("id", "messages", "source") if c in parquet.schema_arrow.names]
        for batch in parquet.iter_batches(columns=columns, batch_size=EXAMPLE_SCAN):
            rows = batch.to_pylist()
            break
        if rows:
            break
    if not rows:
        return None

    def answer_chars(row: dict[str, Any]) -> int:
        return sum(len(m["content"] or "") for m in row["messages"] if m["role"] == "assistant")

    ranked = sorted(range(len(rows)), key=lambda i: (answer_chars(rows[i]), i))
    row = rows[ranked[(len(ranked) - 1) // 2]]
    messages = row["messages"]
    shown = [_shown_message(m["role"], m["content"] or "") for m in messages[:EXAMPLE_MESSAGES]]
    # say how it is shown only when it is not shown whole, as it is
    notes = []
    if any(m["cut"] for m in shown):
        notes.append(f"messages cut after about {EXAMPLE_CHARS} characters")
    if any(m["wrapped"] for m in shown):
        notes.append(f"lines wrapped at {EXAMPLE_WIDTH} columns")
    return {
        "id": row.get("id"),
        "source": (row.get("source") or {}).get("name"),
        "split": split,
        "messages": shown,
        "more_messages": max(0, len(messages) - EXAMPLE_MESSAGES),
        "notes": notes,
    }


def _shown_message(role: str, content: str) -> dict[str, Any]:
    cut = content
    if len(content) > EXAMPLE_CHARS:
        cut = content[:EXAMPLE_CHARS]
        space = cut.rfind(" ", EXAMPLE_CHARS // 2)
        cut = cut[:space] if space > 0 else cut
    lines, wrapped = [], False
    for line in cut.rstrip().split("\n"):
        if len(line) <= EXAMPLE_WIDTH:
            lines.append(line)  # as it is (tabs, indentation)
        else:
            lines.extend(
                textwrap.wrap(line, EXAMPLE_WIDTH, break_long_words=False, replace_whitespace=False, expand_tabs=False)
            )
            wrapped = True
    text = "\n".join(lines)
    omitted = len(content) - len(cut)
    if omitted > 0:
        text += f"\n[… {omitted:,} more characters]"
    return {"role": role, "text": text, "fence": code_fence(text), "cut": omitted > 0, "wrapped": wrapped}


# ----------------------------------------------------------------------------------- limitations


def _options_set(version: VersionDir) -> dict[str, list[str]]:
    """Stage id -> the options pipeline.yaml sets for it (besides `type` and `id`), in its order."""
    written = (yaml.safe_load(version.pipeline_text) or {}).get("stages") or []
    ids = list(version.stage_configs)
    found = {}
    for sid, entry in zip(ids, written, strict=False):
        if isinstance(entry, dict):
            found[sid] = [k for k in entry if k not in ("type", "id")]
    return found


def _code_list(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def limitations(
    version: VersionDir,
    languages: list[str],
    requested: list[dict[str, Any]],
    translated: int,
    test_rows: int,
) -> list[str]:
    """The card's Limitations: what the run did not check, and how what it checked was set, each line
    from this version's own files (no line holds for every version)."""
    configs = version.stage_configs
    types = [cfg.get("type") for cfg in configs.values()]
    lines = []
    options = _options_set(version)
    defaults = [sid for sid in configs if not options.get(sid)]
    changed = [f"`{sid}` ({', '.join(options[sid])})" for sid in configs if options.get(sid)]
    if configs:
        parts = []
        if defaults:
            parts.append(f"{_code_list(defaults)} ran with every option at its default")
        if changed:
            parts.append(f"the pipeline set {', '.join(changed)}")
        sentence = "; ".join(parts)
        lines.append(sentence[0].upper() + sentence[1:] + " (every value is in `pipeline.resolved.yaml`).")
    else:
        lines.append("No stage ran: the records are the sources' as read, only their format checked.")
    for sid, cfg in configs.items():
        if cfg.get("annotate_only"):
            counters = version.stats.stages[sid].counters if sid in version.stats.stages else {}
            would = sum(int(n) for k, n in counters.items() if k.startswith("would_reject."))
            lines.append(
                f"`{sid}` only annotated (`annotate_only: true`): it rejected nothing, and would have rejected "
                f"{would} record{'s' if would != 1 else ''}."
            )
    filters = _langid_filters(version)
    if filters:
        first = filters[0]
        kept_on_request = sum(r["records"] for r in requested)
        lines.append(
            f"Languages kept: {', '.join(languages)} (`langid`, require: {first.get('require')}, min_score "
            f"{first.get('min_score')}, max_foreign_share {first.get('max_foreign_share')})"
            + (
                f"; {kept_on_request} record{'s' if kept_on_request != 1 else ''} with an answer in another "
                f"language a user turn asked for {'were' if kept_on_request != 1 else 'was'} kept too "
                "(`allow_requested`, listed above)."
                if kept_on_request
                else "."
            )
        )
    else:
        lines.append(
            "No language identification ran (no filtering `langid` stage): the languages above are those the "
            "sources declare (or a translation's target), not measured."
        )
    if translated:
        lines.append(
            f"{translated} kept record{'s are' if translated != 1 else ' is a'} machine translation"
            f"{'s' if translated != 1 else ''} (`translate`); each keeps its original in `original_messages`."
        )
    if "heuristics" not in types:
        lines.append(
            "No `heuristics` stage ran: refusals, truncated answers, AI boilerplate and repetition loops were "
            "not filtered."
        )
    if not any(t in types for t in QUALITY_STAGES):
        lines.append(
            "No model judged the answers (no `llm_judge`, `quality_classifier` or `relevance` stage): nothing "
            "checked that an answer is correct or helpful."
        )
    if not any(t in types for t in DEDUP_STAGES):
        lines.append("No deduplication ran: a conversation may appear more than once.")
    elif "minhash_dedup" not in types and "semantic_dedup" not in types:
        lines.append("Only exact duplicates were removed (`exact_dedup`); near duplicates were not looked for.")
    lines.extend(_lsh_lines(version))
    if "decontaminate" not in types:
        lines.append("No decontamination ran: the records were not checked against any evaluation benchmark.")
    if test_rows:
        split = next(cfg for cfg in configs.values() if cfg.get("type") == "split")
        size = (
            f"test_size {split['test_size']}"
            if split.get("test_size") is not None
            else (f"test_fraction {split.get('test_fraction')}")
        )
        lines.append(
            f"The test split ({test_rows} records) is a seeded sample of the same sources as train (`split`, "
            f"{size}{' per stratum' if split.get('stratify', True) else ''}), not an independent benchmark."
        )
    declared = [s for s, st in version.stats.sources.items() if st.license]
    if declared:
        lines.append(
            "The licences are those the pipeline declares for each source (`license:`); frcorpus did not check "
            "them against the upstreams."
        )
    return lines


def _lsh_lines(version: VersionDir) -> list[str]:
    """How near a near duplicate was, per `minhash_dedup` stage: the bands and rows it used (its counters,
    resolved from its threshold when the pipeline gave one) and the Jaccard similarity they put the cut at."""
    lines = []
    for sid, cfg in version.stage_configs.items():
        counters = version.stats.stages[sid].counters if sid in version.stats.stages else {}
        if cfg.get("type") != "minhash_dedup" or "lsh_bands" not in counters:
            continue
        bands, rows = int(counters["lsh_bands"]), int(counters["lsh_rows"])
        half = (1.0 - 0.5 ** (1.0 / bands)) ** (1.0 / rows)  # the S-curve's half point (minhash.half_point)
        lines.append(
            f"`{sid}` compared {cfg.get('n_grams')}-word shingles of the {cfg.get('view')} with MinHash, "
            f"{bands} bands x {rows} rows: a pair is found half the time at a Jaccard similarity of {half:.2f}, "
            "more often above it, and pairs well below it are kept as distinct records."
        )
    return lines


def licence_cell(licence: str | None) -> str:
    """The sources table's licence: the id and what restricts it."""
    return f"{licence} ({parse(licence).label})" if licence else "not declared"
