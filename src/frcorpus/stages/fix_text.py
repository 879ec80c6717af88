"""`fix_text`: repair text without damaging French typography or code.

Mojibake ("Ã©tÃ©", "s\\x92engager") is repaired by ftfy's encoding fixes only: ftfy's other steps
are either done here, where they can be counted and kept out of code, or are wrong for French
(`uncurl_quotes` turns ’ into '). Control and invisible characters go, whitespace is tidied, and
Unicode is normalised. Fenced code blocks, inline code and URLs are never touched.

French typography is kept as it is by default (« », ’, non-breaking spaces). `typography: fr-FR`
makes it consistent: ’ for apostrophes, « » with narrow no-break spaces for quotes, a narrow
no-break space before ; ! ? and a no-break space before : where the text had a space. `ascii`
turns all of it into ASCII, and only when asked.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, ClassVar, Literal

from pydantic import Field

from frcorpus.stages.base import StageConfig, Transformer
from frcorpus.text.code import FENCED_CODE

NNBSP, NBSP = "\u202f", "\u00a0"
# Code and links keep their exact bytes: fenced blocks (through the closing fence or the end),
# inline code, URLs.
PROTECTED = re.compile(FENCED_CODE + r"|`[^`\n]+`|(?:https?://|www\.)\S+", re.S)
# UTF-8 read as cp1252 or latin-1 always shows a lead byte (0xC2-0xF4: Â..ô) followed by a continuation
# byte (0x80-0xBF, as cp1252 or latin-1 shows it); C1 controls are cp1252 read as latin-1. ftfy (about
# 25 us per sentence just to check) runs only on text with one of these pairs: French letters alone
# (« âge », « naïf », « été ») no longer send a turn to it, as the single letters Ã Â â Å ï Ð Ñ did
# (benchmarks/bench_fix_text.py: 2 of 3,777 French turns sent, against 367; every mojibake sent). A no-break
# space after a lead byte counts only after a two-byte lead (« Ã\xa0 » for « à »), and the plain space
# it may have become only after Â or Ã (« ÉTÉ 2024 » is no mojibake).
CP1252_SHOWN = (  # what cp1252 shows for the bytes 0x80-0x9F (the others of 0x80-0xBF are latin-1's)
    "\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014\u2018-\u201e"
    "\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122"
)
# one class first, then the pair told apart by lookbehinds: `re` skips the other characters in C
# (2.4x faster than three alternatives, which it tries at every position)
MOJIBAKE_HINT = re.compile(
    "[\x80-\x9f\xc2-\xf4](?:(?<=[\x80-\x9f])|(?<=[\xc2-\xf4])[\xa1-\xbf"
    + CP1252_SHOWN
    + "]|(?<=[\xc2-\xdf])\xa0|(?<=[\xc2\xc3]) )"
)
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# zero-width space, soft hyphen, BOM, word joiner, direction marks and embeddings; zero-width
# (non-)joiners stay: emoji sequences and some scripts need them
INVISIBLE = re.compile("[\u200b\u00ad\ufeff\u2060\u200e\u200f\u202a-\u202e\u2066-\u2069\u180e]")
TRAILING_SPACE = re.compile(r"[ \t]+(?=\n|\Z)")
SPACE_RUN = re.compile(r"(?<=\S) {2,}(?=\S)")
BLANK_LINES = re.compile(r"\n{3,}")
LAYOUT_FIXES = ("whitespace", "typography")  # the fixes that would change code if it were not held out
PLACEHOLDER = re.compile("\ue000(\\d+)\ue001")

APOSTROPHE = re.compile(r"(?<=\w)['‘`´](?=\w)")
STRAIGHT_QUOTES = re.compile(r'"([^"\n]{1,800}?)"')
CURLY_QUOTES = re.compile(r"“([^”\n]{1,800}?)”")
GUILLEMET_OPEN = re.compile(r"«[ \u00a0\u202f]*")
GUILLEMET_CLOSE = re.compile(r"[ \u00a0\u202f]*»")
SPACE_BEFORE_HIGH = re.compile(r"(?<=\S)[ \u00a0\u202f]+(?=[;!?])")
SPACE_BEFORE_COLON = re.compile(r"(?<=\S)[ \u00a0\u202f]+(?=:(?:\s|$))")
TO_ASCII = str.maketrans({"’": "'", "‘": "'", "«": '"', "»": '"', "“": '"', "”": '"', NBSP: " ", NNBSP: " "})
ASCII_GUILLEMET = re.compile(r"«[ \u00a0\u202f]*|[ \u00a0\u202f]*»")


def tidy_whitespace(text: str) -> str:
    """No spaces at the end of a line, single spaces between words, at most one blank line. Each pattern
    runs only where a substring test finds what it changes: the trailing-space pattern tries every space
    of the text (measured on 3,777 French turns: 0.20 s for the three patterns, against 0.01 s tested)."""
    if " \n" in text or "\t\n" in text or text.endswith((" ", "\t")):
        text = TRAILING_SPACE.sub("", text)
    if "  " in text:
        text = SPACE_RUN.sub(" ", text)
    if "\n\n\n" in text:
        text = BLANK_LINES.sub("\n\n", text)
    return text


def french_typography(text: str) -> str:
    text = APOSTROPHE.sub("’", text)
    text = STRAIGHT_QUOTES.sub(lambda m: f"«{NNBSP}{m.group(1).strip()}{NNBSP}»", text)
    text = CURLY_QUOTES.sub(lambda m: f"«{NNBSP}{m.group(1).strip()}{NNBSP}»", text)
    text = GUILLEMET_OPEN.sub(f"«{NNBSP}", text)
    text = GUILLEMET_CLOSE.sub(f"{NNBSP}»", text)
    text = SPACE_BEFORE_HIGH.sub(NNBSP, text)
    return SPACE_BEFORE_COLON.sub(NBSP, text)


def ascii_typography(text: str) -> str:
    # « mot » becomes "mot": the spaces inside guillemets go with them
    text = ASCII_GUILLEMET.sub('"', text)
    return text.translate(TO_ASCII).replace("…", "...")


class FixText(Transformer):
    """Repair broken text without damaging French typography or code.

    Mojibake is repaired by ftfy's encoding fixes (`Ã©tÃ©`, `s\\x92engager`); control characters and
    invisible ones (zero-width spaces, soft hyphens, BOMs, direction marks) are removed; the text is
    normalised to Unicode NFC and stray whitespace is tidied. Code blocks, inline code and URLs are left
    untouched. `typography` chooses what happens to French typography: `keep` (the default: « », ’ and
    no-break spaces as they are), `fr-FR` (’, « » with narrow no-break spaces, a no-break space before
    ; : ! ?) or `ascii` (only when asked). Each repair is counted in `stats.json`
    (`turns_fixed.<repair>`). A record whose assistant turns are all empty once repaired is rejected.
    """

    name: ClassVar[str] = "fix_text"
    family: ClassVar[str] = "fix_text"
    reasons: ClassVar[tuple[str, ...]] = ("empty_after_fix",)
    requires: ClassVar[dict[str, str]] = {"ftfy": "pip install ftfy"}

    class Config(StageConfig):
        type: Literal["fix_text"]
        mojibake: bool = Field(True, description="repair text decoded with the wrong encoding (ftfy)")
        unicode_form: Literal["NFC", "NFKC", "none"] = Field("NFC", description="Unicode normalisation")
        controls: bool = Field(True, description="remove control characters (tab, newline, CR kept)")
        invisible: bool = Field(True, description="remove zero-width spaces, soft hyphens, BOMs, direction marks")
        whitespace: bool = Field(True, description="trailing spaces, runs of spaces, more than one blank line")
        typography: Literal["keep", "fr-FR", "ascii"] = Field(
            "keep", description="keep « » ’ and no-break spaces as they are, make them consistent (fr-FR), or ASCII"
        )

    def __init__(self, config, stage_id):
        super().__init__(config, stage_id)
        self.steps: list[tuple[str, Any]] = []

    def setup(self) -> None:
        import ftfy

        # encoding repairs only; the other steps are below (counted, code kept out) or wrong for French
        ftfy_config = ftfy.TextFixerConfig(
            unescape_html=False,
            fix_latin_ligatures=False,
            fix_character_width=False,
            uncurl_quotes=False,
            fix_line_breaks=False,
            remove_control_chars=False,
            normalization=None,
            explain=False,
        )
        cfg = self.config
        steps = []
        if cfg.mojibake:
            steps.append(("mojibake", lambda t: ftfy.fix_text(t, ftfy_config) if MOJIBAKE_HINT.search(t) else t))
        if cfg.controls:
            steps.append(("controls", lambda t: CONTROL.sub("", t.replace("\r\n", "\n").replace("\r", "\n"))))
        if cfg.invisible:
            steps.append(("invisible", lambda t: INVISIBLE.sub("", t)))
        if cfg.unicode_form != "none":
            form = cfg.unicode_form
            steps.append(("unicode", lambda t: t if t.isascii() else unicodedata.normalize(form, t)))
        if cfg.whitespace:
            steps.append(("whitespace", tidy_whitespace))
        if cfg.typography == "fr-FR":
            steps.append(("typography", french_typography))
        elif cfg.typography == "ascii":
            steps.append(("typography", ascii_typography))
        self.steps = steps

    def fix(self, text: str) -> tuple[str, list[str]]:
        """The fixed text and the names of the fixes that changed it. Code and URLs are swapped for
        placeholders (private-use characters no step touches) while the steps run."""
        kept: list[str] = []

        def hold(m: re.Match) -> str:
            kept.append(m.group(0))
            return f"\ue000{len(kept) - 1}\ue001"

        protect = "`" in text or "~~~" in text or "http" in text or "www." in text
        steps = self.steps
        if protect and ("\ue000" in text or "\ue001" in text):
            # the text already holds the placeholder characters: no placeholders, and only the repairs
            # that are safe inside code (no whitespace or typography changes)
            protect = False
            steps = [(name, step) for name, step in steps if name not in LAYOUT_FIXES]
        work = PROTECTED.sub(hold, text) if protect else text
        done = []
        for name, step in steps:
            fixed = step(work)
            if fixed != work:
                work = fixed
                done.append(name)
        if work != work.strip() and any(name == "whitespace" for name, _ in steps):
            work = work.strip()
            if "whitespace" not in done:
                done.append("whitespace")
        if kept:
            work = PLACEHOLDER.sub(lambda m: kept[int(m.group(1))], work)
        return work, done

    def process(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            changed = False
            messages = []
            for m in record["messages"]:
                content, done = self.fix(m["content"])
                for name in done:
                    self.count(f"turns_fixed.{name}")
                if done:
                    changed = True
                messages.append({"role": m["role"], "content": content})
            if changed:
                self.count("records_changed")
                record["messages"] = messages
            if not any(m["content"] for m in messages if m["role"] == "assistant"):
                self.reject(record, "empty_after_fix", "every assistant turn is empty once repaired")
