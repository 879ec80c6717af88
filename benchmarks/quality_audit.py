"""The hand-read audit of issue 20, made repeatable: what a chain keeps and rejects on real answers, and
how many of its decisions a careful French reader calls wrong.

One pipeline reads four sources, in this order (the order matters to dedup, which keeps copies by
source order unless told otherwise): the M-IFEval French answers of Qwen2.5-0.5B (weak), Qwen2.5-7B and
gpt-4o (good), and vigogne's OASST conversations (human). The stages are those of `--chain` (a pipeline
file; only its `stages:` are used). Then:

- a seeded sample of `--sample` answers the chain kept from Qwen2.5-0.5B: the share a reader calls
  plainly bad (goal of issue 20: at most 25%);
- a seeded sample of as many of its non-dedup rejects: the share that are right (goal: 59 of 60);
- every non-dedup reject of Qwen2.5-7B, gpt-4o and OASST: the good ones among them are false rejections,
  counted against each source's input (goal: at most 2%).

A reader's verdicts live in `benchmarks/audit/labels.jsonl`, one line per record read:
`{"source", "location", "label": "good" | "bad", "why"}` (plus `"by_design": true` for a good answer that a
rule removes on purpose: a refusal or AI boilerplate, which the audit does not count as a false
rejection), keyed by source name and the record's
location in its file, so a verdict read once serves every later chain that keeps or rejects the same
record. Records the audit needs that carry no verdict yet are written to `<out>/to_read.md` (prompt,
answer, decision) and counted as unread: the figures are only final when nothing is left to read.

    .venv/bin/python benchmarks/quality_audit.py --chain pipelines/quickstart.yaml --out /tmp/audit-qs
    .venv/bin/python benchmarks/quality_audit.py --chain benchmarks/audit/chain.yaml --out /tmp/audit-new

(the first is the shipped quickstart's stages, the second the same plus M-IFEval's instruction ids and
the answer-quality score; a stage's relative paths are read from the repository root).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import yaml

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("FRCORPUS_SHARED_DATA", HERE.parent.parent / "shared" / "data"))
RESPONSES = SHARED / "instruct_fr" / "mifeval_fr_responses"
SOURCES = {  # name -> (path, format): read in this order
    "qwen05": (RESPONSES / "fr_input_response_data_Qwen__Qwen2.5-0.5B-Instruct-GPTQ-Int4.jsonl", "prompt_response"),
    "qwen7b": (RESPONSES / "fr_input_response_data_Qwen__Qwen2.5-7B-Instruct-GPTQ-Int4.jsonl", "prompt_response"),
    "gpt4o": (RESPONSES / "fr_input_response_data_gpt-4o-2024-08-06.jsonl", "prompt_response"),
    "oasst": (SHARED / "instruct_fr" / "vigogne" / "oasst_20230412_fr_1k.jsonl", "auto"),
}
WEAK, GOOD = "qwen05", ("qwen7b", "gpt4o", "oasst")
DEDUP_STAGES = ("exact_dedup", "minhash_dedup", "semantic_dedup")
LABELS = HERE / "audit" / "labels.jsonl"


def audit_pipeline(chain: Path, out_dir: Path) -> dict:
    stages = yaml.safe_load(chain.read_text(encoding="utf-8"))["stages"]
    return {
        "name": "quality-audit",
        "version": "auto",
        "description": f"issue 20's audit of {chain.name}",
        "sources": [
            {"name": name, "path": str(path), "format": fmt, "license": "apache-2.0", "language": "fr"}
            for name, (path, fmt) in SOURCES.items()
        ],
        "stages": stages,
        "executor": {"type": "local", "tasks": 2, "workers": 2},
        "output": {"dir": str(out_dir / "versions")},
    }


def run_chain(chain: Path, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    pipeline = out_dir / "pipeline.yaml"
    pipeline.write_text(yaml.safe_dump(audit_pipeline(chain, out_dir), sort_keys=False), encoding="utf-8")
    frcorpus = Path(sys.executable).with_name("frcorpus")
    # from the repository root, as a stage's relative paths (instruction files...) are read by frcorpus
    subprocess.run([str(frcorpus), "run", "-q", str(pipeline)], check=True, cwd=HERE.parent)
    versions = sorted(glob.glob(str(out_dir / "versions" / "quality-audit" / "20*")), key=os.path.getmtime)
    return Path(versions[-1])


def rows(version: Path, folder: str) -> list[dict]:
    out = []
    for f in sorted(glob.glob(str(version / folder / "*.parquet"))):
        out += pq.read_table(f, columns=None).to_pylist()
    return out


def read_labels() -> dict[tuple[str, str], dict]:
    if not LABELS.exists():
        return {}
    labels = {}
    for n, line in enumerate(LABELS.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            row = json.loads(line)
            if row.get("label") not in ("good", "bad"):
                raise SystemExit(f"{LABELS}:{n}: label must be 'good' or 'bad', not {row.get('label')!r}")
            labels[(row["source"], row["location"])] = row
    return labels


def false_rejection(label: dict) -> bool:
    return label.get("label") == "good" and not label.get("by_design", False)


def key(record: dict) -> tuple[str, str]:
    return record["source"]["name"], record["source"]["location"]


def turns(record: dict) -> str:
    if record.get("messages"):
        return "\n\n".join(f"**{m['role']}**: {m['content']}" for m in record["messages"])
    return f"(raw) {record.get('raw')}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chain", type=Path, default=HERE.parent / "pipelines" / "quickstart.yaml")
    parser.add_argument("--out", type=Path, default=Path("/tmp/quality-audit"))
    parser.add_argument("--version", type=Path, help="read this finished version instead of running the chain")
    parser.add_argument("--sample", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    version = args.version or run_chain(args.chain, args.out)
    kept, rejected = rows(version, "data"), rows(version, "rejects")
    read = Counter(r["source"]["name"] for r in kept + rejected)
    labels = read_labels()
    to_read: list[tuple[str, dict]] = []

    print(f"chain {args.chain} -> {version}")
    reasons: dict[str, Counter] = defaultdict(Counter)
    for r in rejected:
        reasons[r["source"]["name"]][r["reason"]] += 1
    for name in SOURCES:
        n_kept = sum(r["source"]["name"] == name for r in kept)
        print(f"\n{name}: read {read[name]}, kept {n_kept}")
        for reason, n in reasons[name].most_common():
            print(f"    {n:4d}  {reason}")

    weak_kept = sorted((r for r in kept if r["source"]["name"] == WEAK), key=lambda r: r["id"])
    sample = random.Random(args.seed).sample(weak_kept, min(args.sample, len(weak_kept)))
    verdicts = Counter(labels[key(r)]["label"] if key(r) in labels else "unread" for r in sample)
    to_read += [("kept", r) for r in sample if key(r) not in labels]
    bad_share = verdicts["bad"] / max(verdicts["bad"] + verdicts["good"], 1)
    print(
        f"\n{WEAK}: sample of {len(sample)} kept answers (seed {args.seed}): bad {verdicts['bad']}, "
        f"good {verdicts['good']}, unread {verdicts['unread']}: {bad_share:.0%} plainly bad (goal <= 25%)"
    )
    weak_rejects = [r for r in rejected if r["source"]["name"] == WEAK and r["stage"] not in DEDUP_STAGES]
    weak_rejects = random.Random(args.seed).sample(weak_rejects, min(args.sample, len(weak_rejects)))
    read_rejects = Counter(labels[key(r)]["label"] if key(r) in labels else "unread" for r in weak_rejects)
    to_read += [("rejected", r) for r in weak_rejects if key(r) not in labels]
    print(
        f"{WEAK}: sample of {len(weak_rejects)} non-dedup rejects (seed {args.seed}): right (bad answers) "
        f"{read_rejects['bad']}, wrong (good answers) {read_rejects['good']}, unread {read_rejects['unread']}"
    )

    for name in GOOD:
        mine = [r for r in rejected if r["source"]["name"] == name and r["stage"] not in DEDUP_STAGES]
        by_label = Counter(labels[key(r)]["label"] if key(r) in labels else "unread" for r in mine)
        to_read += [("rejected", r) for r in mine if key(r) not in labels]
        wrong = Counter(r["reason"] for r in mine if false_rejection(labels.get(key(r), {})))
        by_design = sum(labels.get(key(r), {}).get("by_design", False) for r in mine)
        print(
            f"{name}: {len(mine)} non-dedup rejects: good {by_label['good']}, of which {by_design} by design "
            f"(refusals, boilerplate): false rejections {sum(wrong.values())} = "
            f"{sum(wrong.values()) / read[name]:.1%} of {read[name]} read (goal <= 2%); bad {by_label['bad']}, "
            f"unread {by_label['unread']}" + (f"; false rejections by reason: {dict(wrong)}" if wrong else "")
        )

    report = args.out / "to_read.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    with report.open("w", encoding="utf-8") as f:
        for decision, r in to_read:
            name, location = key(r)
            f.write(f"## {name} {location} ({decision}: {r.get('reason') or 'kept'})\n\n{turns(r)}\n\n")
            f.write(f'```\n{{"source": "{name}", "location": "{location}", "label": "", "why": ""}}\n```\n\n')
    print(f"\n{len(to_read)} records without a verdict: {report}")


if __name__ == "__main__":
    main()
