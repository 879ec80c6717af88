"""The transformers backend on the real SmolLM2-135M-Instruct (CPU): greedy determinism, left-padded
batches, guided choice, token counts, stop strings, seeds."""

from __future__ import annotations

import copy

from frcorpus.llm.base import ChatRequest, SamplingConfig
from frcorpus.llm.transformers_backend import ChoiceTrie

GREEDY = SamplingConfig(max_tokens=12)
QUESTIONS = [
    "What is the capital of France?",
    "hi",
    "Write a short poem about the sea and the wind over the old harbour at night.",
    "Translate 'cat' to French.",
    "Name a colour.",
]


def ask(question: str, **kwargs) -> ChatRequest:
    return ChatRequest.of([{"role": "user", "content": question}], **kwargs)


def with_config(backend, **update):
    """The same loaded model under another LLMConfig (no reload)."""
    other = copy.copy(backend)
    other.config = backend.config.model_copy(update=update)
    return other


def test_greedy_is_deterministic(smollm2):
    requests = [ask(q) for q in QUESTIONS[:2]]
    first = smollm2.generate(requests, GREEDY)
    second = smollm2.generate(requests, GREEDY)
    assert [g.text for g in first] == [g.text for g in second]
    assert "Paris" in first[0].text
    assert all(g.error is None and g.cached is False for g in first)


def test_left_padded_batches_match_one_by_one(smollm2):
    requests = [ask(q) for q in QUESTIONS]
    progress: list[int] = []
    batched = smollm2.generate(requests, GREEDY, progress=progress.append)
    assert [len(done) for done in progress] == [4, 1]  # batch_size 4
    assert len({g.prompt_tokens for g in batched}) == len(QUESTIONS)  # different lengths: padding was needed
    alone = [smollm2.generate([r], GREEDY)[0] for r in requests]
    assert [(g.text, g.finish_reason, g.prompt_tokens, g.completion_tokens) for g in batched] == [
        (g.text, g.finish_reason, g.prompt_tokens, g.completion_tokens) for g in alone
    ]


def test_token_counts(smollm2):
    messages = [{"role": "user", "content": QUESTIONS[0]}]
    prompt = smollm2.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    short, long = smollm2.generate([ask(QUESTIONS[0]), ask(QUESTIONS[2])], GREEDY)
    assert short.prompt_tokens == smollm2.count_tokens(prompt)
    assert short.finish_reason == "stop"
    assert short.completion_tokens == smollm2.count_tokens(short.text) + 1  # the answer and its EOS
    assert long.finish_reason == "length"
    assert long.completion_tokens == GREEDY.max_tokens
    assert smollm2.count_tokens("Bonjour le monde") == len(smollm2.tokenizer("Bonjour le monde")["input_ids"])


def test_stop_strings(smollm2):
    (free,) = smollm2.generate([ask(QUESTIONS[0])], GREEDY)
    assert "Paris" in free.text
    (stopped,) = smollm2.generate([ask(QUESTIONS[0])], SamplingConfig(max_tokens=12, stop=["Paris"]))
    assert stopped.text == free.text[: free.text.index("Paris")]
    assert stopped.finish_reason == "stop"
    assert stopped.completion_tokens < free.completion_tokens


def test_guided_choice_returns_exactly_one_choice(smollm2):
    choices = ["Oui", "Non", "Peut-être bien"]
    question = "Le ciel est-il bleu ?"
    (free,) = with_config(smollm2, structured_output="parse").generate([ask(question, choices=choices)], GREEDY)
    assert free.text not in choices  # unconstrained, the model says something else
    requests = [
        ask(question, choices=choices),
        ask(QUESTIONS[0]),
        ask("Is water wet?", choices=["très bien", "très mal"]),
    ]
    constrained, plain, shared_prefix = smollm2.generate(requests, GREEDY)
    assert constrained.text in choices
    assert constrained.finish_reason == "stop"
    assert shared_prefix.text in ("très bien", "très mal")
    assert "Paris" in plain.text  # the unconstrained batch mate answers freely


def test_sampling_seed(smollm2):
    requests = [ask("Tell me a story.")]
    warm = SamplingConfig(max_tokens=12, temperature=1.0, seed=1)
    first, again = (smollm2.generate(requests, warm)[0].text for _ in range(2))
    assert first == again
    other_seed = smollm2.generate(requests, warm.model_copy(update={"seed": 2}))[0].text
    assert other_seed != first
    # a retry (attempt 1) samples with seed + 1, at the retry temperature (below 1.0, so 1.0 stays)
    retry = ChatRequest.of(requests[0].message_dicts(), attempt=1)
    assert smollm2.generate([retry], warm)[0].text == other_seed


def test_choice_trie():
    trie = ChoiceTrie([[5, 6, 0], [5, 7, 0], [8, 0]])
    assert trie.allowed(()) == [5, 8]
    assert trie.allowed((5,)) == [6, 7]
    assert trie.allowed((5, 7)) == [0]
    assert trie.allowed((9,)) == []


def test_a_request_limit_cuts_only_its_own_row(smollm2):
    poem, capital = ask(QUESTIONS[2]), ask(QUESTIONS[2], max_tokens=4)
    full, cut = smollm2.generate([poem, capital], GREEDY)
    assert full.completion_tokens == 12 and full.finish_reason == "length"
    assert cut.completion_tokens == 4 and cut.finish_reason == "length"
    assert full.text.startswith(cut.text) and len(cut.text) < len(full.text)
