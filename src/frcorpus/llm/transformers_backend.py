"""Generation with transformers, on CPU or one GPU: batched, left-padded, chat template of the tokenizer.

A closed set of `choices` is enforced (structured_output `auto`) with `prefix_allowed_tokens_fn` over a
token trie of the choices, each followed by EOS, so the answer is exactly one of them. A JSON schema
is not enforced here: the caller parses the text.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable

from frcorpus.llm.base import Backend, BackendError, ChatRequest, Generation, LLMConfig, SamplingConfig
from frcorpus.llm.models import LLM_HINT, local_model

logger = logging.getLogger(__name__)


class ChoiceTrie:
    """Token sequences of the allowed answers, each ending with EOS: prefix -> tokens that may follow."""

    def __init__(self, sequences: list[list[int]]):
        self.next: dict[tuple[int, ...], set[int]] = defaultdict(set)
        for seq in sequences:
            for i in range(len(seq)):
                self.next[tuple(seq[:i])].add(seq[i])

    def allowed(self, prefix: tuple[int, ...]) -> list[int]:
        return sorted(self.next.get(prefix, ()))


class TransformersBackend(Backend):
    def __init__(self, config: LLMConfig, on_status: Callable[[str], None] | None = None):
        super().__init__(config)
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as e:
            raise BackendError(f"the transformers backend needs {e.name}; install it with: {LLM_HINT}") from None
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # its "Loading weights" bar would cut through the run's own display
        self._torch = torch
        folder, self.revision = local_model(config.model, config.revision, on_status)
        self.device = "cuda" if config.device == "auto" and torch.cuda.is_available() else config.device
        if self.device == "auto":
            self.device = "cpu"
        if self.device == "cuda" and not torch.cuda.is_available():
            raise BackendError(f"device cuda asked for, but torch {torch.__version__} sees no CUDA device")
        started = time.perf_counter()
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        if self.tokenizer.chat_template is None:
            raise BackendError(
                f"model {config.model} has no chat template in its tokenizer; use an instruct/chat model "
                "(its tokenizer_config.json or chat_template.jinja defines one)"
            )
        self.tokenizer.padding_side = "left"
        self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=self._dtype(config.dtype)).to(self.device)
        self.model.eval()
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self.eos_ids: list[int] = [eos] if isinstance(eos, int) else list(eos)
        if not self.eos_ids:
            raise BackendError(f"model {config.model} defines no EOS token (generation_config or tokenizer)")
        if self.tokenizer.pad_token_id is None:
            # batched generation needs a pad token; the EOS is the usual stand-in (masked out anyway)
            self.tokenizer.pad_token_id = self.eos_ids[0]
        self.pad_id: int = self.tokenizer.pad_token_id
        self.vocab_size = self.model.get_output_embeddings().weight.shape[0]
        logger.info(
            "loaded %s (%s) on %s, %s, in %.1f s",
            config.model,
            self.revision,
            self.device,
            self.model.dtype,
            time.perf_counter() - started,
        )

    def _dtype(self, dtype: str):
        torch = self._torch
        if dtype != "auto":
            return getattr(torch, dtype)
        if self.device == "cpu":
            return torch.float32  # half precision is slow (or unsupported) on most CPUs
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _prompt_ids(self, request: ChatRequest) -> list[int]:
        text = self.tokenizer.apply_chat_template(request.message_dicts(), add_generation_prompt=True, tokenize=False)
        # the template writes BOS itself where the model wants one
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _trie(self, choices: tuple[str, ...]) -> ChoiceTrie:
        eos = self.eos_ids[0]
        return ChoiceTrie([self.tokenizer(c, add_special_tokens=False)["input_ids"] + [eos] for c in choices])

    def generate(
        self,
        requests: list[ChatRequest],
        sampling: SamplingConfig,
        progress: Callable[[list[tuple[int, Generation]]], None] | None = None,
    ) -> list[Generation]:
        prompts = [self._prompt_ids(r) for r in requests]
        results: list[Generation | None] = [None] * len(requests)
        # a retry samples differently (temperature, seed): one group per attempt, shortest prompts together
        groups: dict[int, list[int]] = defaultdict(list)
        for i, request in enumerate(requests):
            groups[request.attempt].append(i)
        for attempt, indices in sorted(groups.items()):
            indices.sort(key=lambda i: len(prompts[i]))
            effective = sampling.for_attempt(attempt)
            for start in range(0, len(indices), self.config.batch_size):
                batch = indices[start : start + self.config.batch_size]
                gens = self._generate_batch(
                    [requests[i] for i in batch], [prompts[i] for i in batch], effective, effective.seed + attempt
                )
                for i, gen in zip(batch, gens, strict=True):
                    results[i] = gen
                if progress is not None:
                    progress(list(zip(batch, gens, strict=True)))
        return results  # type: ignore[return-value]

    def _generate_batch(
        self, requests: list[ChatRequest], prompts: list[list[int]], sampling: SamplingConfig, seed: int
    ) -> list[Generation]:
        torch = self._torch
        width = max(len(p) for p in prompts)
        input_ids = torch.tensor([[self.pad_id] * (width - len(p)) + p for p in prompts], device=self.device)
        attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        kwargs: dict = {
            # rows with a tighter limit are cut to it afterwards (`_to_generation`)
            "max_new_tokens": max(r.token_limit(sampling) for r in requests),
            "pad_token_id": self.pad_id,
            "eos_token_id": self.eos_ids,
        }
        if sampling.temperature > 0:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if sampling.stop:
            kwargs.update(stop_strings=list(sampling.stop), tokenizer=self.tokenizer)
        constrained = self.config.structured_output == "auto" and any(r.choices for r in requests)
        if constrained:
            tries = [self._trie(r.choices) if r.choices else None for r in requests]
            everything = torch.arange(self.vocab_size)

            def allowed(row: int, ids) -> list[int]:
                trie = tries[row]
                if trie is None:
                    return everything
                # a finished row keeps being asked: any token will do, generate() pads it anyway
                return trie.allowed(tuple(ids[width:].tolist())) or [self.pad_id]

            kwargs["prefix_allowed_tokens_fn"] = allowed
        if self.on_tokens is not None:
            kwargs["streamer"] = _StepCounter(self.on_tokens)
        torch.manual_seed(seed)
        with torch.inference_mode():
            out = self.model.generate(input_ids=input_ids, attention_mask=attention, **kwargs)
        return [
            self._to_generation(
                out[row, width:].tolist(), len(prompts[row]), sampling, requests[row].token_limit(sampling)
            )
            for row in range(len(prompts))
        ]

    def _to_generation(
        self, tokens: list[int], prompt_tokens: int, sampling: SamplingConfig, limit: int | None = None
    ) -> Generation:
        if limit is not None and len(tokens) > limit:
            eos_at = next((k for k, t in enumerate(tokens[: limit + 1]) if t in self.eos_ids), None)
            tokens = tokens[: limit + 1] if eos_at is not None else tokens[:limit]
        eos_at = next((k for k, t in enumerate(tokens) if t in self.eos_ids), None)
        if eos_at is not None:
            kept, used, finish = tokens[:eos_at], eos_at + 1, "stop"
        else:
            used = len(tokens)
            while used and tokens[used - 1] == self.pad_id:  # a row that a stop string ended early
                used -= 1
            kept, finish = tokens[:used], "length"
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        if sampling.stop:
            cut = min((k for k in (text.find(s) for s in sampling.stop) if k >= 0), default=-1)
            if cut >= 0:
                text, finish = text[:cut], "stop"
        return Generation(text=text, finish_reason=finish, prompt_tokens=prompt_tokens, completion_tokens=used)

    def close(self) -> None:
        self.model = None
        if self.device == "cuda":
            self._torch.cuda.empty_cache()


class _StepCounter:
    """A `generate` streamer that only counts: each step's new tokens, one per row of the batch (finished
    rows included, which the final count corrects)."""

    def __init__(self, on_tokens: Callable[[int], None]):
        self.on_tokens = on_tokens
        self.prompt_seen = False

    def put(self, value) -> None:
        if not self.prompt_seen:  # the first call carries the prompts
            self.prompt_seen = True
            return
        self.on_tokens(int(value.shape[0]) if value.dim() else 1)

    def end(self) -> None:
        pass
