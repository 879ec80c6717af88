"""One verifiable instruction turned into a check of an answer, whatever its id's family: what the
`verify_instructions` stage and the recipe's IFEval tasks (`ifeval_fr`, `ifeval_en`) share.

Three families of ids:
- `fr:<id>`: M-IFEval's French instructions, frcorpus's own checkers (`checkers.FR_CHECKERS`);
- `en:<id>`: IFEval's English instructions, lm-evaluation-harness's own checkers (`lm_eval.tasks.ifeval`,
  the `train` extra), imported, with Punkt's English tables provided offline first
  (`text.use_offline_punkt`: lm-eval would otherwise call `nltk.download`);
- a bare id (`length_constraints:number_words`, no prefix): the constraints `detect.py` finds in a
  prompt that carries no ids, checked by frcorpus's language-neutral checkers
  (`checkers.NEUTRAL_CHECKERS`, the kwargs named as the `fr:` ones).

Strict and loose are IFEval's (Zhou et al. 2023): strict checks the answer as written; loose also tries it
without its first line, without its last line, without both, and each of those with every `*` removed
(`loose_versions`).
"""

from __future__ import annotations

import functools
import inspect
import random

from frcorpus.stages.instructions.checkers import FR_CHECKERS, NEUTRAL_CHECKERS, NEUTRAL_IDS, Check
from frcorpus.stages.instructions.reader import READER_CHECKERS, Reading
from frcorpus.stages.instructions.text import CheckerDependencyMissing, use_offline_punkt

ENGLISH_DRAW_SEED = 0
LM_EVAL_HINT = "pip install 'frcorpus[train]'"

__all__ = [
    "NEUTRAL_IDS",
    "Check",
    "build_check",
    "english_checkers",
    "known_instruction",
    "loose_versions",
]


@functools.cache
def english_checkers() -> dict[str, type]:
    """lm-eval's IFEval instruction classes by id (without the `en:` prefix), imported once Punkt's
    English tables are on nltk's path; langdetect, which its language checkers call, is seeded (it is
    random otherwise, and a verdict could change from run to run)."""
    use_offline_punkt()
    try:
        import langdetect
        from lm_eval.tasks.ifeval.instructions_registry import INSTRUCTION_DICT
    except ImportError as e:
        raise CheckerDependencyMissing(
            f"the `en:` instruction ids need lm-eval's IFEval checkers ({e}), in the train extra: {LM_EVAL_HINT}"
        ) from None
    langdetect.DetectorFactory.seed = 0
    return dict(INSTRUCTION_DICT)


def known_instruction(lang: str, instruction_id: str) -> bool:
    """Whether `lang`'s checkers know the id (`fr:...` for French, `en:...` for English)."""
    if lang == "fr":
        return instruction_id in FR_CHECKERS
    return instruction_id.startswith("en:") and instruction_id.removeprefix("en:") in english_checkers()


def build_check(instruction_id: str, kwargs: dict, prompt: str, reading: Reading = "benchmark") -> Check:
    """The check of one instruction (TypeError or ValueError for kwargs that do not fit, KeyError for an
    unknown `fr:` or bare id): `fr:` ids by frcorpus's French checkers, bare ids by its language-neutral
    ones, `en:` ids by lm-eval's (which may read the prompt). `reading: reader` takes, for the ids whose
    literal definition misjudges good answers, a careful reader's reading (`reader.READER_CHECKERS`);
    `benchmark` (what `ifeval_fr` scores with) keeps the published definitions."""
    if reading == "reader" and instruction_id in READER_CHECKERS:
        reader = READER_CHECKERS[instruction_id]
        # a reader's reading may depend on how the prompt words the instruction
        wants_prompt = "prompt" in inspect.signature(reader).parameters
        return reader(**kwargs, prompt=prompt) if wants_prompt else reader(**kwargs)
    if instruction_id.startswith("fr:"):
        return FR_CHECKERS[instruction_id](**kwargs)
    if not instruction_id.startswith("en:"):
        return NEUTRAL_CHECKERS[instruction_id](**kwargs)
    instruction = english_checkers()[instruction_id.removeprefix("en:")](instruction_id)
    # lm-eval draws a value with the global `random` where a kwarg is missing or unfit (a random letter
    # for letter "!" in item 1129): seeded here, and the caller's random state kept, so that a verdict
    # never changes from run to run
    state = random.getstate()
    random.seed(ENGLISH_DRAW_SEED)
    try:
        # lm-eval's own calling convention: the set kwargs, then the prompt for the checkers that take it
        instruction.build_description(**{k: v for k, v in kwargs.items() if v is not None})
        arguments = instruction.get_instruction_args()
        if arguments and "prompt" in arguments:
            instruction.build_description(prompt=prompt)
    finally:
        random.setstate(state)
    return instruction.check_following


def loose_versions(response: str) -> list[str]:
    """IFEval's loose versions of a response: as written, without its first line, its last line or
    both, and each of those without any `*`."""
    lines = response.split("\n")
    trimmed = [
        response,
        "\n".join(lines[1:]).strip(),
        "\n".join(lines[:-1]).strip(),
        "\n".join(lines[1:-1]).strip(),
    ]
    return trimmed + [version.replace("*", "") for version in trimmed]
