"""What fix_text -> langid -> heuristics reject on real data, by reason (default options).

M-IFEval  ../shared/data/instruct_fr/mifeval_fr_responses: the same 235 French prompts answered
          by 17 models; the share of each model's answers rejected, and why.
vigogne   ../shared/data/instruct_fr/vigogne: real French conversations; what is rejected, with
          a sample of rejects to read (--show N).

  python benchmarks/report_real_data.py [--data ../shared/data] [--show 20]
"""

from __future__ import annotations

import argparse
import os
import random
from collections import Counter
from pathlib import Path


def stages():
    from frcorpus.stages.fix_text import FixText
    from frcorpus.stages.heuristics import Heuristics
    from frcorpus.stages.langid import LangId

    built = [
        FixText(FixText.Config(type="fix_text"), "fix_text"),
        LangId(LangId.Config(type="langid"), "langid"),
        Heuristics(Heuristics.Config(type="heuristics"), "heuristics"),
    ]
    for stage in built:
        stage.setup()
    return built


def read(path: Path, fmt: str) -> list[dict]:
    from frcorpus.sources.config import SourceConfig
    from frcorpus.sources.reader import SourceReader
    from frcorpus.sources.resolve import resolve_source

    src = resolve_source(SourceConfig(name="s", path=str(path), format=fmt))
    records = SourceReader(src, 0).read_files(list(range(len(src.files))), None)
    return [r for r in records if r["_reject"] is None]


def judge(records: list[dict], pipeline) -> Counter:
    for stage in pipeline:
        stage.run_batch(records)
    return Counter(r["_reject"]["reason"].split("(")[0] for r in records if r["_reject"])


def main() -> None:
    default = Path(os.environ.get("FRCORPUS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--show", type=int, default=0, help="print this many vigogne rejects to read")
    args = parser.parse_args()
    pipeline = stages()

    print("M-IFEval: share of each model's 235 answers rejected")
    for path in sorted((args.data / "instruct_fr" / "mifeval_fr_responses").glob("*.jsonl")):
        records = read(path, "prompt_response")
        reasons = judge(records, pipeline)
        model = path.stem.removeprefix("fr_input_response_data_")
        detail = ", ".join(f"{k} {v}" for k, v in reasons.most_common())
        print(f"  {model:48s} {sum(reasons.values()) / len(records):6.1%}  {detail}")

    records = read(args.data / "instruct_fr" / "vigogne", "auto")
    reasons = judge(records, pipeline)
    print(f"vigogne: {len(records)} records, {sum(reasons.values()) / len(records):.1%} rejected")
    for reason, n in reasons.most_common():
        print(f"  {reason:32s} {n}")
    rejects = [r for r in records if r["_reject"]]
    for r in random.Random(0).sample(rejects, min(args.show, len(rejects))):
        answer = next(m["content"] for m in reversed(r["messages"]) if m["role"] == "assistant")
        print(f"- {r['_reject']['reason']}: {r['_reject']['detail'][:100]}\n    {answer[:160]!r}")


if __name__ == "__main__":
    main()
