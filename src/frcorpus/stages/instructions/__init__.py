"""Verifiable instructions: the `verify_instructions` stage and the checkers it shares with the recipe's
IFEval tasks (`ifeval_fr`, `ifeval_en`).

- `text`: what a checker measures beyond a regex (Punkt sentences offline, word counts, the language of
  an answer through the `langid` stage);
- `checkers`: frcorpus's own checkers, one per M-IFEval `fr:` id, and the language-neutral ones of the
  bare ids found in prompts without ids;
- `checks`: one instruction (an `fr:`, `en:` or bare id and its kwargs) turned into a check of an
  answer, and IFEval's loose versions of an answer;
- `detect`: the constraints a French or English prompt states without ids;
- `stage`: the stage, which finds each user turn's instructions and checks the answer that follows.
"""
