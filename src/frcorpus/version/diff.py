"""`frcorpus diff A B`: what changed between two versions of a dataset.

Records are matched by `id` (stable across runs when the source gives ids; otherwise a hash of the file,
row and line). A record is
- added: kept in B, not kept in A (`rejected_in_a` of them were in A's rejects/);
- removed: kept in A, not kept in B (`rejected_in_b` of them are in B's rejects/, with B's reason);
- changed: kept in both with a different content hash: polars' 64-bit hash of the canonical JSON of the
  content columns (`messages` by default: the roles and texts of the turns, in order), computed in
  polars over whole columns, so that a million records take seconds;
- unchanged: kept in both with the same hash.
The stats part compares the two `stats.json`: every stage's in/kept/rejected and each rejection reason's
count, per source read/kept/rejected, and the totals, as {a, b, delta}.

`diff_versions(a, b)` returns a JSON-ready dict whose keys are documented in the README ("Comparing
and inspecting versions"); `format` is bumped if they change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from frcorpus.version.layout import VersionDir, check_version_dir

FORMAT = 1
DEFAULT_COLUMNS = ("messages",)
PREVIEW_CHARS = 80


class DiffError(ValueError):
    """Two versions that cannot be compared as asked (the CLI exits with 2)."""


def _count(a: int, b: int) -> dict[str, int]:
    return {"a": a, "b": b, "delta": b - a}


def _only_in(in_a: bool, in_b: bool) -> str | None:
    return None if in_a and in_b else ("a" if in_a else "b")


def _kept(version: VersionDir, columns: tuple[str, ...]) -> pl.DataFrame:
    """id, source name and content hash of every kept record."""
    files = version.data_files()
    if not files:
        return pl.DataFrame(schema={"id": pl.String, "source": pl.String, "hash": pl.UInt64})
    lf = pl.scan_parquet(files)
    names = lf.collect_schema().names()
    missing = [c for c in columns if c not in names]
    if missing:
        raise DiffError(f"{version.path}: data has no column {', '.join(missing)}; its columns: {', '.join(names)}")
    # The JSON of a struct of the chosen columns is canonical (fixed key order, the turns in order);
    # hashing it in polars keeps the whole comparison columnar.
    return lf.select(
        pl.col("id"),
        pl.col("source").struct.field("name").alias("source"),
        pl.struct(list(columns)).struct.json_encode().hash().alias("hash"),
    ).collect()


def _rejects(version: VersionDir) -> pl.DataFrame:
    files = version.reject_files()
    if not files:
        return pl.DataFrame(schema={"id": pl.String, "stage": pl.String, "reason": pl.String, "detail": pl.String})
    return pl.scan_parquet(files).select("id", "stage", "reason", "detail").collect()


def _rows(version: VersionDir, ids: list[str], columns: list[str]) -> dict[str, dict[str, Any]]:
    """The given columns of a few kept records, by id (for the examples)."""
    files = version.data_files()
    if not ids or not files:
        return {}
    rows = pl.scan_parquet(files).filter(pl.col("id").is_in(ids)).select(["id", *columns]).collect().to_dicts()
    return {r["id"]: r for r in rows}


def _preview(text: str | None, start: int = 0) -> str | None:
    if text is None:
        return None
    piece = text[start : start + PREVIEW_CHARS]
    return ("…" if start else "") + piece + ("…" if start + PREVIEW_CHARS < len(text) else "")


def _record_example(row: dict[str, Any] | None, record_id: str, source: str | None) -> dict[str, Any]:
    messages = (row or {}).get("messages") or []
    return {
        "id": record_id,
        "source": source,
        "turns": len(messages),
        "preview": _preview(messages[0]["content"]) if messages else None,
    }


def _first_difference(ma: list[dict], mb: list[dict]) -> dict[str, Any] | None:
    """The first turn that differs, with an excerpt of both texts from a little before the first
    character that differs."""
    for i in range(max(len(ma), len(mb))):
        x = ma[i] if i < len(ma) else None
        y = mb[i] if i < len(mb) else None
        if x == y:
            continue
        ca, cb = (x or {}).get("content") or "", (y or {}).get("content") or ""
        k = next((j for j, (p, q) in enumerate(zip(ca, cb, strict=False)) if p != q), min(len(ca), len(cb)))
        start = max(0, k - 20)
        return {
            "turn": i,
            "role": {"a": x and x["role"], "b": y and y["role"]},
            "a": _preview(x and ca, start),
            "b": _preview(y and cb, start),
        }
    return None


def _changed_example(record_id: str, ra: dict, rb: dict, columns: tuple[str, ...]) -> dict[str, Any]:
    differing = [c for c in columns if json.dumps(ra.get(c), default=str) != json.dumps(rb.get(c), default=str)]
    example: dict[str, Any] = {"id": record_id, "columns": differing}
    if "messages" in columns:
        ma, mb = ra.get("messages") or [], rb.get("messages") or []
        example["turns"] = {"a": len(ma), "b": len(mb)}
        example["first_difference"] = _first_difference(ma, mb)
    return example


def _by_reason(frame: pl.DataFrame) -> dict[str, int]:
    counts = frame.group_by("reason").len().sort(["len", "reason"], descending=[True, False])
    return dict(zip(counts["reason"].to_list(), counts["len"].to_list(), strict=True))


def _reject_examples(frame: pl.DataFrame, n: int) -> list[dict[str, Any]]:
    rows = frame.sort("id").head(n).select("id", "stage", "reason", "detail").to_dicts()
    for r in rows:
        r["detail"] = _preview(r["detail"])
    return rows


def record_diff(
    a: VersionDir, b: VersionDir, columns: tuple[str, ...] = DEFAULT_COLUMNS, examples: int = 3
) -> dict[str, Any]:
    """The record part of the diff (see the module docstring); examples are the first by id."""
    ka, kb = _kept(a, columns), _kept(b, columns)
    joined = ka.with_columns(pl.lit(True).alias("in_a")).join(
        kb.with_columns(pl.lit(True).alias("in_b")), on="id", how="full", coalesce=True, suffix="_b"
    )
    in_a, in_b = pl.col("in_a").fill_null(False), pl.col("in_b").fill_null(False)
    added = joined.filter(in_b & ~in_a).select("id", pl.col("source_b").alias("source"))
    removed = joined.filter(in_a & ~in_b).select("id", "source")
    both = joined.filter(in_a & in_b)
    changed = both.filter(pl.col("hash") != pl.col("hash_b")).select("id", "source")
    ra, rb = _rejects(a), _rejects(b)
    kept_to_rejected = removed.join(rb, on="id", how="inner")
    rejected_to_kept = added.join(ra, on="id", how="inner")

    added_ex, removed_ex, changed_ex = (f.sort("id").head(examples) for f in (added, removed, changed))
    cols = sorted({"messages", *columns})
    rows_a = _rows(a, removed_ex["id"].to_list() + changed_ex["id"].to_list(), cols)
    rows_b = _rows(b, added_ex["id"].to_list() + changed_ex["id"].to_list(), cols)
    return {
        "added": {
            "count": added.height,
            "rejected_in_a": rejected_to_kept.height,
            "not_in_a": added.height - rejected_to_kept.height,
            "examples": [_record_example(rows_b.get(i), i, s) for i, s in added_ex.iter_rows()],
        },
        "removed": {
            "count": removed.height,
            "rejected_in_b": kept_to_rejected.height,
            "not_in_b": removed.height - kept_to_rejected.height,
            "examples": [_record_example(rows_a.get(i), i, s) for i, s in removed_ex.iter_rows()],
        },
        "changed": {
            "count": changed.height,
            "examples": [_changed_example(i, rows_a[i], rows_b[i], columns) for i in changed_ex["id"].to_list()],
        },
        "unchanged": both.height - changed.height,
        "kept_to_rejected": {
            "count": kept_to_rejected.height,
            "by_reason": _by_reason(kept_to_rejected),
            "examples": _reject_examples(kept_to_rejected, examples),
        },
        "rejected_to_kept": {
            "count": rejected_to_kept.height,
            "by_reason": _by_reason(rejected_to_kept),
            "examples": _reject_examples(rejected_to_kept, examples),
        },
    }


def _ordered_union(first: list[str], second: list[str]) -> list[str]:
    """B's order, then what only A has, in A's order."""
    seen = set(second)
    return list(second) + [k for k in first if k not in seen]


def stats_diff(stats_a: dict[str, Any], stats_b: dict[str, Any]) -> dict[str, Any]:
    """Per stage in/kept/rejected and per reason, per source read/kept/rejected, totals: {a, b, delta}, from
    two stats.json bodies (a count that is absent is 0)."""
    sa, sb = stats_a.get("stages", {}), stats_b.get("stages", {})
    stages = {}
    for stage_id in _ordered_union(list(sa), list(sb)):
        x, y = sa.get(stage_id, {}), sb.get(stage_id, {})
        rx, ry = x.get("rejected", {}), y.get("rejected", {})
        stages[stage_id] = {
            "only_in": _only_in(stage_id in sa, stage_id in sb),
            "in": _count(x.get("in", 0), y.get("in", 0)),
            "kept": _count(x.get("kept", 0), y.get("kept", 0)),
            "rejected": _count(sum(rx.values()), sum(ry.values())),
            "reasons": {r: _count(rx.get(r, 0), ry.get(r, 0)) for r in sorted(set(rx) | set(ry))},
        }
    srca, srcb = stats_a.get("sources", {}), stats_b.get("sources", {})
    sources = {
        name: {
            "only_in": _only_in(name in srca, name in srcb),
            **{
                k: _count(srca.get(name, {}).get(k, 0), srcb.get(name, {}).get(k, 0))
                for k in ("read", "kept", "rejected")
            },
        }
        for name in _ordered_union(list(srca), list(srcb))
    }
    ta, tb = stats_a.get("totals", {}), stats_b.get("totals", {})
    totals = {k: _count(ta.get(k, 0), tb.get(k, 0)) for k in ("read", "kept", "rejected")}
    return {"stages": stages, "sources": sources, "totals": totals}


def _side(version: VersionDir) -> dict[str, Any]:
    """Which version a side is; one without a manifest (written by an early release) by its folder."""
    manifest = version.manifest if version.manifest_file.is_file() else None
    return {
        "path": str(version.path),
        "name": manifest.name if manifest else None,
        "version": manifest.version if manifest else version.path.name,
        "fingerprint": manifest.fingerprint if manifest else version.stats.fingerprint,
    }


def diff_versions(
    a: Path | str, b: Path | str, columns: tuple[str, ...] = DEFAULT_COLUMNS, examples: int = 3
) -> dict[str, Any]:
    """Compare two version directories (raises VersionDirError, DiffError)."""
    a, b = check_version_dir(a), check_version_dir(b)
    if not columns:
        raise DiffError("no content column to compare; give at least one, e.g. messages")
    side_a, side_b = _side(a), _side(b)
    return {
        "format": FORMAT,
        "a": side_a,
        "b": side_b,
        "identical": side_a["fingerprint"] is not None and side_a["fingerprint"] == side_b["fingerprint"],
        "content_columns": list(columns),
        "records": record_diff(a, b, columns, examples),
        **stats_diff(a.stats.as_json(), b.stats.as_json()),
    }


# ----------------------------------------------------------------------------------------- display


def _cell(c: dict[str, int]) -> str:
    return f"{c['a']:,}" if not c["delta"] else f"{c['a']:,} → {c['b']:,} ({c['delta']:+,})"


def print_diff(result: dict[str, Any], console) -> None:
    """The diff as rich tables (what `frcorpus diff` prints without --json)."""
    from rich.markup import escape
    from rich.table import Table

    for side in ("a", "b"):
        s = result[side]
        console.print(f"[bold]{side.upper()}[/] {escape(str(s['version']))}  {escape(s['path'])}", highlight=False)
    if result["identical"]:
        console.print("[green]same fingerprint: the two versions hold the same files[/]")
    rec, totals = result["records"], result["totals"]
    columns = ", ".join(result["content_columns"])
    table = Table(title=f"records (matched by id; content: {columns})", title_justify="left")
    for col, justify in (("", "left"), ("records", "right"), ("", "left")):
        table.add_column(col, justify=justify)
    table.add_row("kept in A", f"{totals['kept']['a']:,}", "")
    table.add_row("kept in B", f"{totals['kept']['b']:,}", "")
    added, removed = rec["added"], rec["removed"]
    table.add_row(
        "added", f"{added['count']:,}", f"{added['rejected_in_a']:,} rejected in A, {added['not_in_a']:,} not in A"
    )
    table.add_row(
        "removed",
        f"{removed['count']:,}",
        f"{removed['rejected_in_b']:,} rejected in B, {removed['not_in_b']:,} not in B",
    )
    table.add_row("changed", f"{rec['changed']['count']:,}", "")
    table.add_row("unchanged", f"{rec['unchanged']:,}", "")
    console.print(table)
    for key, title in (
        ("kept_to_rejected", "kept in A, rejected in B"),
        ("rejected_to_kept", "rejected in A, kept in B"),
    ):
        if rec[key]["count"]:
            moved = Table(title=f"{title}: by reason", title_justify="left")
            moved.add_column("reason")
            moved.add_column("records", justify="right")
            for reason, n in rec[key]["by_reason"].items():
                moved.add_row(escape(reason), f"{n:,}")
            console.print(moved)
    stages = Table(title="stages (A → B)", title_justify="left")
    for col, justify in (("stage / reason", "left"), ("in", "right"), ("kept", "right"), ("rejected", "right")):
        stages.add_column(col, justify=justify)
    for stage_id, s in result["stages"].items():
        only = f" (only in {s['only_in'].upper()})" if s["only_in"] else ""
        stages.add_row(f"[bold]{escape(stage_id)}[/]{only}", _cell(s["in"]), _cell(s["kept"]), _cell(s["rejected"]))
        for reason, c in s["reasons"].items():
            stages.add_row(f"  {escape(reason)}", "", "", _cell(c))
    console.print(stages)
    sources = Table(title="sources (A → B)", title_justify="left")
    for col, justify in (("source", "left"), ("read", "right"), ("kept", "right"), ("rejected", "right")):
        sources.add_column(col, justify=justify)
    for name, s in result["sources"].items():
        only = f" (only in {s['only_in'].upper()})" if s["only_in"] else ""
        sources.add_row(escape(name) + only, _cell(s["read"]), _cell(s["kept"]), _cell(s["rejected"]))
    sources.add_row("[bold]total[/]", *(_cell(totals[k]) for k in ("read", "kept", "rejected")))
    console.print(sources)
    _print_examples(rec, console)


def _print_examples(rec: dict[str, Any], console) -> None:
    from rich.markup import escape

    lines = []
    for key in ("added", "removed"):
        for e in rec[key]["examples"]:
            lines.append(f"{key} {e['id']} ({e['source']}, {e['turns']} turns): {e['preview']!r}")
    for e in rec["changed"]["examples"]:
        d = e.get("first_difference")
        if d:
            role = d["role"]["a"] or d["role"]["b"]
            lines.append(f"changed {e['id']} turn {d['turn']} ({role}): {d['a']!r} → {d['b']!r}")
        else:
            lines.append(f"changed {e['id']}: {', '.join(e['columns'])}")
    for key, label in (("kept_to_rejected", "now rejected"), ("rejected_to_kept", "now kept")):
        for e in rec[key]["examples"]:
            lines.append(f"{label} {e['id']}: {e['reason']} {e['detail'] or ''}".rstrip())
    if lines:
        console.print("[bold]examples[/]")
        for line in lines:
            console.print("  " + escape(line), highlight=False, soft_wrap=True)
