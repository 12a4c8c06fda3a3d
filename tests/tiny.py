"""A tiny Llama-style chat model and tokenizer built offline from a config (no hub)."""
from __future__ import annotations

from pathlib import Path

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_TEXT = [
    "How do I boil an egg? Put the egg in boiling water for nine minutes, then cool it.",
    "What is the capital of France? Paris is the capital of France.",
    "Explain why the sky is blue. Sunlight scatters off air molecules, blue light the most.",
    "Give me a tip for studying. Short sessions with breaks help memory more than cramming.",
    "I cannot help with that request. I'm sorry, but I won't assist with harmful activities.",
    "Water the plants in the morning so the leaves dry during the day.",
] * 20


def build_tiny_model(out: str | Path, seed: int = 0, layers: int = 2, hidden: int = 32) -> Path:
    """Write a tiny random LlamaForCausalLM + byte-level BPE tokenizer to `out`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(_TEXT, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|im_start|>",
                                  eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                  unk_token="<|endoftext|>", model_max_length=1024)
    tok.chat_template = CHATML
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=1024, tie_word_embeddings=True,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    model = LlamaForCausalLM(cfg)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def widen_context(model_dir: str | Path, out: str | Path, tokens: int = 2048) -> Path:
    """Copy a model dir with a `tokens`-long context: room for curation's revision prompts
    (the byte-level tokenizer makes long prompts)."""
    import json
    import shutil

    out = Path(out)
    shutil.copytree(model_dir, out, dirs_exist_ok=True)
    for name, key in (("config.json", "max_position_embeddings"), ("tokenizer_config.json", "model_max_length")):
        data = json.loads((out / name).read_text())
        data[key] = tokens
        (out / name).write_text(json.dumps(data))
    return out
