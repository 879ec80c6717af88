"""`translate.masking`: segments masked before translation, restored and checked after; markdown structure."""

from __future__ import annotations

import json
import random

import pytest

from frcorpus.stages.translate.masking import (
    Masked,
    markdown_structure,
    mask,
    restore,
    round_trip,
    structure_problems,
    token,
)


@pytest.mark.parametrize(
    ("text", "segment"),
    [
        ("Run this:\n\n```python\nprint('hi')\n```\n\nDone.", "```python\nprint('hi')\n```"),
        ("Run this:\n\n~~~\nls -la\n~~~\n\nDone.", "~~~\nls -la\n~~~"),
        ("A longer fence:\n````\n```\nnested\n```\n````\nafter", "````\n```\nnested\n```\n````"),
        ("Unclosed:\n```sh\nrm -rf build", "```sh\nrm -rf build"),
        ("1. Install:\n\n   ```bash\n   pip install x\n   ```\n", "   ```bash\n   pip install x\n   ```"),
        ("Indented code:\n\n    x = 1\n    y = 2\n\nThat was code.", "    x = 1\n    y = 2"),
        ("Call `len(x)` here.", "`len(x)`"),
        ("Double ``a ` b`` ticks.", "``a ` b``"),
        ("Inline ```x``` triple.", "```x```"),
        ("Use <code>a < b</code> here.", "<code>a < b</code>"),
        ("The area is $\\pi r^2$ exactly.", "$\\pi r^2$"),
        ("Display $$\\sum_{i=1}^n i$$ here.", "$$\\sum_{i=1}^n i$$"),
        ("Paren \\(a + b\\) form.", "\\(a + b\\)"),
        ("Bracket \\[\nx^2\n\\] form.", "\\[\nx^2\n\\]"),
        ("Env \\begin{align}\na &= b\n\\end{align} done.", "\\begin{align}\na &= b\n\\end{align}"),
        ("See https://example.com/a?b=1 for more.", "https://example.com/a?b=1"),
        ("Wiki (https://en.wikipedia.org/wiki/Foo_(bar)).", "https://en.wikipedia.org/wiki/Foo_(bar)"),
        ("Go to www.example.org, then.", "www.example.org"),
        ("A [relative link](./docs/setup.md) here.", "./docs/setup.md"),
        ("Write to jane.doe+tag@example.co.uk today.", "jane.doe+tag@example.co.uk"),
        ("Hello {{ user.name }}, welcome.", "{{ user.name }}"),
        ("{% if x %}yes{% endif %}", "{% if x %}"),
        ("Shell ${HOME} path.", "${HOME}"),
        ("Dear {name}, thanks.", "{name}"),
        ("Value {0:.2f} units.", "{0:.2f}"),
        ("Printf %s and more.", "%s"),
        ("Count %5d items.", "%5d"),
        ("Named %(count)d items.", "%(count)d"),
        ("Replace <PLACEHOLDER> now.", "<PLACEHOLDER>"),
        ("Key <API_KEY> here.", "<API_KEY>"),
        ("Hi [insert name here], welcome.", "[insert name here]"),
        ("Some <b>bold</b> text.", "<b>"),
        ("A <div class='x'>box</div>.", "<div class='x'>"),
        ('A <my-widget size="3"> tag.', '<my-widget size="3">'),
        ("Comment <!-- hidden --> here.", "<!-- hidden -->"),
    ],
)
def test_each_kind_of_segment_is_masked(text, segment):
    masked = mask(text)
    assert segment in masked.segments
    assert token(masked.segments.index(segment) + 1) in masked.text
    assert segment not in masked.text
    assert round_trip(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "It costs $5 and $10 in total.",  # dollars, not math (pandoc's rule)
        "La startup a investi 8000 $ / 2 = 4000 $.",
        "A 50% discount and 100 % sure.",
        "Signé : [Votre nom]",  # a name to fill in is translated, not masked
        "Use <your name> as the title.",
        "- item\n    - nested item four spaces in\n\n    continued item paragraph",
        "The set {1, 2} has two elements.",
        "Email me @john on the forum.",
    ],
)
def test_prose_is_left_alone(text):
    assert mask(text).segments == []


def test_tokens_are_numbered_in_text_order():
    masked = mask("A `x` then $y$ then https://z.org.")
    assert masked == Masked("A ⟦1⟧ then ⟦2⟧ then ⟦3⟧.", ["`x`", "$y$", "https://z.org"])


def test_text_that_looks_like_tokens_still_round_trips():
    text = "Brackets ⟦1⟧ and 〚2〛 and ⟦ 3 ⟧ and a lone ⟧ with `code`."
    masked = mask(text)
    # the source's own look-alikes are segments: the only brackets the model sees are the tokens
    assert masked.text.count("⟦") == len(masked.segments) == 5
    assert "〚" not in masked.text
    assert masked.segments[:4] == ["⟦1⟧", "〚2〛", "⟦ 3 ⟧", "⟧"]
    restored = restore(masked.text.replace("Brackets", "Crochets"), masked)
    assert restored.text == text.replace("Brackets", "Crochets") and restored.problems == []


def test_restore_reports_missing_duplicated_and_invented_tokens():
    masked = mask("Set `x = 1` then call `run()`.")
    restored = restore("Posez ⟦1⟧ puis ⟦1⟧ et ⟦9⟧.", masked)
    assert restored.problems == [
        "segment 1 (`x = 1`) appears 2 times",
        "segment 2 (`run()`) missing",
        "token ⟦9⟧ matches no segment",
    ]
    assert restored.text == "Posez `x = 1` puis `x = 1` et ⟦9⟧."


def test_a_long_segment_is_quoted_short_in_a_problem():
    masked = mask("Code:\n\n```python\n" + "x = 1\n" * 30 + "```")
    assert restore("Code :", masked).problems == ["segment 1 (```python x = 1 x = 1 x = 1 x = 1 x = 1…) missing"]


@pytest.mark.parametrize(
    "damaged",
    [
        "Posez ⟦ 1 ⟧ puis ⟦2 ⟧.",  # spaces inside
        "Posez ⟦\u202f1\u202f⟧ puis ⟦\u00a02⟧.",  # French typography's (narrow) no-break spaces
        "Posez 〚1〛 puis 〚2⟧.",  # CJK look-alike brackets
    ],
)
def test_trivial_damage_is_repaired(damaged):
    masked = mask("Set `x` then `y`.")
    restored = restore(damaged, masked)
    assert restored.text == "Posez `x` puis `y`."
    assert restored.problems == [] and restored.repaired >= 1


def test_damage_that_is_not_trivial_is_a_problem():
    masked = mask("Set `x` then `y`.")
    # a line break inside, a changed number: not the token any more
    restored = restore("Posez ⟦\n1⟧ puis [[2]].", masked)
    assert restored.problems == ["segment 1 (`x`) missing", "segment 2 (`y`) missing"]
    assert restore("Posez ⟦1⟧ puis ⟦2⟧.", masked).repaired == 0


def test_round_trip_of_random_mixtures():
    """A property test: any concatenation of segments, prose and token look-alikes comes back."""
    pieces = [
        "Some prose. ", "`code`", "```py\nx = 1\n```", "\n\n", "\n", "$x$", "$$y$$", "$5 ", "\\(z\\)", "⟦1⟧",
        "⟦", "⟧", "〚3〛", "{name}", "{{v}}", "%s", "https://a.org/b). ", "<b>", "</b>", "    indented\n",
        "- item\n", "| a | b |\n", "[insert x]", "<X>", "a@b.co", "`", "$", "\\", "~~~\n", "{", "}",
    ]  # fmt: skip
    rng = random.Random(7)
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        masked = mask(text)
        assert restore(masked.text, masked).text == text, text
        assert restore(masked.text, masked).problems == [], text


# ---- markdown structure ----------------------------------------------------------------------------

SOURCE = (
    "# Title\n\nIntro paragraph\nwrapped here.\n\n- one\n- two\n  - nested\n\n1. first\n2. second\n\n> quoted\n\n"
    "| a | b |\n|---|---|\n| 1 | 2 |\n\n---\n\nEnd."
)


def test_markdown_structure():
    assert markdown_structure(SOURCE) == (
        "h1", "break", "text", "break", "bullet", "bullet", "bullet:2", "break", "numbered", "numbered", "break",
        "quote>text", "break", "table:2", "table:2", "table:2", "break", "hr", "break", "text",
    )  # fmt: skip
    assert markdown_structure("Title\n=====\n\nSub\n---\ntext\n\n***") == ("h1", "break", "h2", "text", "break", "hr")
    # what is inside code or formulas is not structure
    assert markdown_structure("Text\n\n```\n# not a heading\n- not an item\n```") == ("text", "break", "text")
    assert markdown_structure("$$\n- x\n$$") == ("text",)


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        (
            SOURCE.replace("# Title", "## Titre"),
            "source line 1 is a level-1 heading, output line 1 is a level-2 heading",
        ),
        (
            SOURCE.replace("- one\n- two\n  - nested", "un, deux, imbriqué"),
            "source line 6 is a bullet item, output line 6 is a paragraph",
        ),
        (
            SOURCE.replace("  - nested", "- imbriqué"),
            "source line 8 is a bullet item at depth 2, output line 8 is a bullet item",
        ),
        (
            SOURCE.replace("\n\n1. first", "\n1. premier"),
            "source line 9 is a blank line, output line 9 is a numbered item",
        ),
        (
            SOURCE.replace("| 1 | 2 |", "| 1 | 2 | 3 |"),
            "source line 17 is a table row of 2 cells, output line 17 is a table row of 3 cells",
        ),
        (SOURCE.replace("\n\n---", ""), "source line 19 is a horizontal rule, output line 19 is a paragraph"),
        (
            SOURCE.replace("> quoted", "quoted"),
            "source line 13 is a blockquote holding a paragraph, output line 13 is a paragraph",
        ),
        (SOURCE + "\n\nNote : ajout.", "the output goes on after the source's last block: a paragraph at line 23"),
        (
            SOURCE.split("\n\n> quoted")[0],
            "the output ends early: it lacks a blockquote holding a paragraph (source line 13) and 5 more blocks",
        ),
    ],
)
def test_structure_problems_name_the_first_difference(output, problem):
    assert structure_problems(SOURCE, output) == [problem]


def test_same_structure_is_no_problem():
    rewrapped = SOURCE.replace("Intro paragraph\nwrapped here.", "Un paragraphe d'introduction sur une seule ligne.")
    assert structure_problems(SOURCE, rewrapped) == []
    assert structure_problems(SOURCE, SOURCE.replace("\n", "\r\n")) == []
    assert structure_problems("Text\n\ufeff\nMore", "Texte\n\nPlus") == []  # a byte-order mark line is blank


# ---- real data -----------------------------------------------------------------------------------


def _turns(shared_data) -> list[str]:
    """English and French turns of the shared data, those with code, LaTeX or links first."""
    texts = []
    for line in (shared_data / "instruct_en/ifeval_en_gpt4o/en_input_response_data_gpt-4o-2024-08-06.jsonl").open():
        row = json.loads(line)
        texts += [row["prompt"], row["response"]]
    for row in json.loads((shared_data / "instruct_en/alpaca_demo/alpaca_en_demo.json").read_text(encoding="utf-8")):
        texts += [row["instruction"], row["input"], row["output"]]
    for line in (shared_data / "instruct_fr/mt_bench_fr_reference/gpt-4.jsonl").open():
        texts += json.loads(line)["choices"][0]["turns"]
    for line in (shared_data / "instruct_fr/vigogne/oasst_20230412_fr_1k.jsonl").open():
        texts += [t["content"] for t in json.loads(line)["conversation"]]
    for name in ("gpt-4o-2024-08-06", "claude-3-5-sonnet-20240620", "mistralai__Mistral-7B-Instruct-v0.3"):
        for line in (shared_data / f"instruct_fr/mifeval_fr_responses/fr_input_response_data_{name}.jsonl").open():
            texts.append(json.loads(line)["response"])
    texts = [t for t in dict.fromkeys(texts) if t.strip()]
    marked = [t for t in texts if any(m in t for m in ("```", "`", "$", "\\(", "http", "<", "{", "    "))]
    return marked + [t for t in texts if t not in set(marked)][: max(0, 3000 - len(marked))]


def test_round_trip_on_real_english_and_french_turns(shared_data):
    turns = _turns(shared_data)
    assert len(turns) >= 3000
    kinds = {"fence": 0, "inline": 0, "latex": 0, "url": 0, "tag": 0}
    for text in turns:
        masked = mask(text)
        restored = restore(masked.text, masked)
        assert restored.text == text and restored.problems == [], text[:200]
        assert markdown_structure(restored.text) == markdown_structure(text)
        for segment in masked.segments:
            if segment.lstrip().startswith(("```", "~~~")):
                kinds["fence"] += 1
            elif segment.startswith("`"):
                kinds["inline"] += 1
            elif segment.startswith(("$", "\\(", "\\[", "\\begin")):
                kinds["latex"] += 1
            elif segment.startswith(("http", "www.")):
                kinds["url"] += 1
            elif segment.startswith("<"):
                kinds["tag"] += 1
    # the data has every kind, so the round trip above went through each of them
    assert all(n >= 20 for n in kinds.values()), kinds
