"""Generation with vLLM's offline engine (`LLM.chat`), on one or more NVIDIA GPUs.

vLLM is an optional extra (`frcorpus[gpu]`) that cannot be installed beside the CPU stack, so it is
imported lazily. Its tests here run against a fake `vllm` module that records the calls; the real
engine runs only on GPU machines. Constraints use `StructuredOutputsParams` (vLLM >= 0.10.2), or
`GuidedDecodingParams` on older releases.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from frcorpus.llm.base import Backend, BackendError, ChatRequest, Generation, LLMConfig, SamplingConfig
from frcorpus.llm.models import local_model

logger = logging.getLogger(__name__)

GPU_HINT = "pip install 'frcorpus[gpu]' (on a machine with an NVIDIA GPU and CUDA)"


class VLLMBackend(Backend):
    supports_json_schema = True  # response_format json_schema / structured outputs

    def __init__(self, config: LLMConfig, on_status: Callable[[str], None] | None = None):
        super().__init__(config)
        try:
            import vllm
        except ImportError as e:
            raise BackendError(f"the vllm backend needs vllm ({e}); install it with: {GPU_HINT}") from None
        self._vllm = vllm
        self._constraint = _constraint_api()
        # a GGUF becomes a safetensors folder, a Hub id its snapshot: vLLM loads a plain local folder
        folder, self.revision = local_model(config.model, config.revision, on_status)
        started = time.perf_counter()
        self.llm = vllm.LLM(
            model=str(folder),
            tensor_parallel_size=config.tensor_parallel_size,
            dtype=config.dtype,
            gpu_memory_utilization=config.gpu_memory_utilization,
            max_model_len=config.max_model_len,
            seed=0,
        )
        logger.info("vLLM loaded %s (%s) in %.1f s", config.model, self.revision, time.perf_counter() - started)

    def sampling_params(self, request: ChatRequest, sampling: SamplingConfig):
        kwargs = request.sampling_args(sampling)
        if self.config.structured_output == "auto" and (request.choices or request.json_schema is not None):
            field, params = self._constraint
            if request.choices:
                kwargs[field] = params(choice=list(request.choices))
            else:
                kwargs[field] = params(json=request.schema())
        return self._vllm.SamplingParams(**kwargs)

    def generate(
        self,
        requests: list[ChatRequest],
        sampling: SamplingConfig,
        progress: Callable[[list[tuple[int, Generation]]], None] | None = None,
    ) -> list[Generation]:
        results: list[Generation] = []
        # vLLM schedules a whole batch itself; batch_size only sets how often progress is reported
        for start in range(0, len(requests), self.config.batch_size):
            batch = requests[start : start + self.config.batch_size]
            outputs = self.llm.chat(
                [r.message_dicts() for r in batch],
                sampling_params=[self.sampling_params(r, sampling) for r in batch],
                use_tqdm=False,
            )
            gens = [_to_generation(out) for out in outputs]
            results.extend(gens)
            if progress is not None:
                progress(list(enumerate(gens, start)))
        return results

    def count_tokens(self, text: str) -> int:
        return len(self.llm.get_tokenizer().encode(text, add_special_tokens=False))

    def close(self) -> None:
        self.llm = None


def _constraint_api() -> tuple[str, type]:
    """(SamplingParams field, params class) of this vLLM's structured outputs."""
    try:
        from vllm.sampling_params import StructuredOutputsParams

        return "structured_outputs", StructuredOutputsParams
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams  # vLLM < 0.10.2 (removed in 0.12)

        return "guided_decoding", GuidedDecodingParams


def _to_generation(output) -> Generation:
    completion = output.outputs[0]
    finish = completion.finish_reason or "stop"
    if finish == "abort":  # the engine dropped the request: a failure, not an empty answer
        return Generation(text="", finish_reason="error", error="vLLM aborted the request")
    return Generation(
        text=completion.text,
        finish_reason=finish,
        prompt_tokens=len(output.prompt_token_ids or ()),
        completion_tokens=len(completion.token_ids or ()),
    )
