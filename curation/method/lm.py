"""The target model's HF layer, now in buckle.core.engine.hf_lm (shared with evaluation); names kept here."""
from buckle.core.engine.hf_lm import (  # noqa: F401
    context_length, load_lm, perplexities, pick_device, prompt_ids, response_ids, response_nll,
)
