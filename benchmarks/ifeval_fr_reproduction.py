"""ifeval_fr against M-IFEval's published French accuracies, on the 17 answer files M-IFEval published
(../shared/data/instruct_fr/mifeval_fr_responses/).

For each file: frcorpus's four accuracies (strict and loose, prompt and instruction level), the published
strict prompt-level accuracy (the paper, for the 6 models issue 19 quotes; "-" where none was found) and
strict instruction-level accuracy (M-IFEval's README leaderboard, all 17), the differences, and the same
answers scored with M-IFEval's own definitions where frcorpus deviates from them (`as M-IFEval`: langdetect,
seeded, instead of lid.176; a postscript marker found anywhere, inside words too; the Latin-1 accented
letters). Then every verdict where frcorpus and those definitions disagree, with the answer's start or
the part that decides.

    python benchmarks/ifeval_fr_reproduction.py [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the published figures live with the reproduction test

from frcorpus.recipe.ifeval import load_ifeval_items, read_responses, score_response, summarize  # noqa: E402
from frcorpus.stages.instructions import checkers  # noqa: E402
from frcorpus.stages.instructions.text import english_word_tokens  # noqa: E402
from tests.recipe.test_ifeval_score import (  # noqa: E402
    FR_RESPONSES,
    PUBLISHED_INST_STRICT,
    PUBLISHED_PROMPT_STRICT,
)

LATIN1_ACCENTED = re.compile(r"[àáâãäåçèéêëìíîïñòóôõöùúûüýÿÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝ]")
SPELLED = {"P.P.S": r"p\.\s?p\.\s?s", "P.S.": r"p\.\s?s\."}


def langdetect_code(text: str) -> str | None:
    import langdetect

    try:
        return langdetect.detect(text)
    except langdetect.LangDetectException:  # no features: M-IFEval counts the instruction as followed
        return None


def as_mifeval() -> dict:
    """The builders M-IFEval defines differently from frcorpus, as it defines them."""
    import langdetect

    langdetect.DetectorFactory.seed = 0

    def postscript(*, postscript_marker):
        marker = postscript_marker.strip()
        pattern = re.compile(r"\s*" + SPELLED.get(marker, marker.lower()) + r".*$", re.M)  # anywhere, unescaped
        return lambda r: bool(pattern.search(r.lower()))

    def bullets(*, num_bullets):  # any line that starts with "*" and no second "*", or with "-"
        star, dash = re.compile(r"^\s*\*[^*].*$", re.M), re.compile(r"^\s*-.*$", re.M)
        return lambda r: len(star.findall(r)) + len(dash.findall(r)) == num_bullets

    def capital_words(*, capital_frequency, capital_relation):  # nltk's tokens whole ("l'AUTOMNE")
        compare = checkers.comparison(capital_relation)
        return lambda r: compare(sum(t.isupper() for t in english_word_tokens(r)), capital_frequency)

    return {
        "fr:detectable_content:postscript": postscript,
        "fr:detectable_format:number_bullet_lists": bullets,
        "fr:change_case:capital_word_frequency": capital_words,
        "fr:special_character:no_accents": lambda: lambda r: not LATIN1_ACCENTED.search(r),
        "fr:language:response_language": lambda *, language: lambda r: langdetect_code(r) in (language, None),
        "fr:change_case:french_capital": lambda: lambda r: r.isupper() and langdetect_code(r.lower()) in ("fr", None),
        "fr:change_case:french_lowercase": lambda: lambda r: r.islower() and langdetect_code(r) in ("fr", None),
    }


def score_all(items, answers):
    return [score_response(item, answers.get(item.key, "")) for item in items]


def where_it_decides(answer: str, instruction_id: str, kwargs: dict) -> str:
    marker = kwargs.get("postscript_marker")
    if marker:
        found = re.search(re.escape(marker.lower()[:2]), answer.lower())
        if found:
            return "..." + answer[max(0, found.start() - 40) : found.start() + 40] + "..."
    return answer[:80] + ("..." if len(answer) > 80 else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    items = load_ifeval_items(args.data_dir, "fr")
    ours_builders = dict(checkers.FR_CHECKERS)
    theirs_builders = {**ours_builders, **as_mifeval()}
    header = (
        f"{'model':52s} {'P-strict':>8s} {'I-strict':>8s} {'P-loose':>8s} {'I-loose':>8s} | "
        f"{'pub P':>6s} {'diff':>7s} | {'pub I':>6s} {'diff':>7s} | {'as M-IFEval P / I':>17s}"
    )
    print(header)
    print("-" * len(header))
    disagreements = []
    started = time.perf_counter()
    for model in sorted(PUBLISHED_INST_STRICT, key=str.lower):
        answers = read_responses(args.data_dir / FR_RESPONSES.format(model), items)
        ours = score_all(items, answers)
        checkers.FR_CHECKERS.update(theirs_builders)
        try:
            theirs = score_all(items, answers)
        finally:
            checkers.FR_CHECKERS.update(ours_builders)
        mine, as_published = summarize(ours), summarize(theirs)
        published = PUBLISHED_PROMPT_STRICT.get(model)
        prompt_gap = "-" if published is None else f"{mine['prompt_level_strict_acc'] - published:+.3f}"
        inst_published = PUBLISHED_INST_STRICT[model] / 100
        print(
            f"{model:52s} {mine['prompt_level_strict_acc']:8.3f} {mine['inst_level_strict_acc']:8.3f} "
            f"{mine['prompt_level_loose_acc']:8.3f} {mine['inst_level_loose_acc']:8.3f} | "
            f"{'-' if published is None else f'{published:.3f}':>6s} {prompt_gap:>7s} | "
            f"{inst_published:6.3f} {mine['inst_level_strict_acc'] - inst_published:+7.3f} | "
            f"{as_published['prompt_level_strict_acc']:8.3f} / {as_published['inst_level_strict_acc']:.3f}"
        )
        for item, a, b in zip(items, ours, theirs, strict=True):
            for n, instruction_id in enumerate(item.instruction_id_list):
                if a.strict[n] != b.strict[n]:
                    answer = answers.get(item.key, "")
                    disagreements.append((instruction_id, model, item.key, a.strict[n], item.kwargs[n], answer))
    print(f"\n{len(PUBLISHED_INST_STRICT)} files scored twice in {time.perf_counter() - started:.1f} s")
    print(f"\nstrict verdicts where frcorpus and M-IFEval's definitions disagree: {len(disagreements)}")
    for (instruction_id, ours_verdict), n in sorted(Counter((d[0], d[3]) for d in disagreements).items()):
        print(f"  {instruction_id}: frcorpus {ours_verdict}, M-IFEval {not ours_verdict}: {n}")
    for instruction_id, model, key, verdict, kwargs, answer in sorted(disagreements):
        shown = where_it_decides(answer, instruction_id, kwargs).replace("\n", "\\n")
        print(f"  {instruction_id} {kwargs} item {key} {model}: frcorpus {verdict}\n      {shown}")


if __name__ == "__main__":
    main()
