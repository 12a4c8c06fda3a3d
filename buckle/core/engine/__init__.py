"""One engine layer for curation and evaluation: `hf` (transformers), `vllm` and `openai` (a server) backends.

    engine = load_engine(path, backend="auto")   # see select.choose
    engine.sample(prompt_ids, temperatures, top_ps, budgets)   # curation's grid
    engine.greedy(conversations, max_new_tokens)               # evaluation
    engine.perplexity(prompts, responses)                      # masked to the response

Heavy libraries (torch, transformers, vllm) load inside the backends; where vllm does not
import, the `vllm` backend serves it from its own environment (vllm_server).
"""
from buckle.core.engine.base import Engine, Generation, Sample
from buckle.core.engine.select import choose, engine_record, load_engine, vllm_installed

__all__ = ["Engine", "Generation", "Sample", "choose", "engine_record", "load_engine", "vllm_installed"]
