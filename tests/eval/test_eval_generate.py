"""Batched left-padded generation and reference perplexity on the tiny offline model."""
import math

import pytest

from buckle.core.engine.hf_generate import _decode, generate
from buckle.core.engine.hf_lm import chat, encode
from buckle.core.engine.hf_lm import load_lm as load_model
from buckle.eval.perplexity import perplexity, response_nll

PROMPTS = ["How do I boil an egg?", "What is the capital of France? Tell me more, please, in detail.",
           "Hi", "Give me a tip for studying with short sessions and breaks."]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(str(tiny_model_dir))


def test_batched_equals_one_at_a_time(tiny):
    model, tok = tiny
    convs = [chat(p) for p in PROMPTS]
    batched = generate(model, tok, convs, max_new_tokens=10, batch_size=4)
    single = [generate(model, tok, [c], max_new_tokens=10, batch_size=1)[0] for c in convs]
    assert [g.ids for g in batched] == [g.ids for g in single]
    assert tok.padding_side == "left"


def test_matches_unpadded_hf_generate(tiny):
    import torch

    model, tok = tiny
    ours = generate(model, tok, [chat(p) for p in PROMPTS], max_new_tokens=8, batch_size=4, exact_tokens=True)
    for prompt, gen in zip(PROMPTS, ours):
        ids = torch.tensor([encode(tok, chat(prompt))])
        ref = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=8,
                             min_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
        assert gen.ids == ref[0, ids.shape[1]:].tolist()
        assert gen.tokens == 8


def test_sampling_is_seed_deterministic(tiny):
    model, tok = tiny
    convs = [chat(p) for p in PROMPTS]
    run = lambda seed: [g.ids for g in generate(model, tok, convs, 12, 2, temperature=1.0, seed=seed)]  # noqa: E731
    assert run(7) == run(7)
    assert run(7) != run(8)


def test_output_is_cut_at_first_stop_token(tiny):
    _, tok = tiny
    hello = tok("hello world", add_special_tokens=False)["input_ids"]
    eos = tok.eos_token_id
    gen = _decode(tok, hello + [eos, eos, eos], {eos})  # pad == eos fills finished rows
    assert gen.text == "hello world" and gen.tokens == len(hello) and gen.ids == hello


def test_system_prompt_reaches_the_template(tiny):
    _, tok = tiny
    assert "Be safe." in tok.decode(encode(tok, chat("hi", system="Be safe.")))


def test_reference_perplexity_matches_model_loss(tiny):
    import torch

    model, tok = tiny
    pairs = [("How do I boil an egg?", "Put it in boiling water for nine minutes."),
             ("What is the capital of France?", "Paris."),
             ("A longer question about study tips with breaks?", "Short sessions with breaks help memory.")]
    got = response_nll(model, tok, [p for p, _ in pairs], [r for _, r in pairs], batch_size=3)
    for (prompt, response), (nll, n) in zip(pairs, got):
        p = encode(tok, chat(prompt))
        r = tok(response, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        ids = torch.tensor([p + r])
        labels = ids.clone()
        labels[0, :len(p)] = -100
        with torch.no_grad():
            loss = model(input_ids=ids, labels=labels).loss.item()
        assert n == len(r)
        assert perplexity(nll, n) == pytest.approx(math.exp(loss), rel=1e-4)


def test_engine_greedy_is_the_eval_generation(tiny):
    """The engine interface evaluation runs through gives the same greedy tokens as the batched loop."""
    from buckle.core.engine.hf import HFEngine

    model, tok = tiny
    convs = [chat(p) for p in PROMPTS]
    engine = HFEngine(model, tok, gen_batch_size=2)
    assert [g.ids for g in engine.greedy(convs, 8)] == [g.ids for g in generate(model, tok, convs, 8, 2)]
    nll = engine.response_nll(PROMPTS[:2], ["Boil it.", "Paris."])
    assert [n for _, n in nll] == [n for _, n in response_nll(model, tok, PROMPTS[:2], ["Boil it.", "Paris."])]


def test_greedy_decode_loop_equals_transformers_generate(tiny):
    """Greedy batches run through the project's decode loop; transformers' generate gives the same tokens,
    whether rows stop early or run to the budget with their stops suppressed (exact_tokens)."""
    model, tok = tiny
    convs = [chat(p) for p in PROMPTS]
    free = generate(model, tok, convs, 24, batch_size=3, exact_tokens=True)
    cfg, eos = model.generation_config, model.generation_config.eos_token_id
    cfg.eos_token_id = [tok.eos_token_id, free[0].ids[5]]  # a token the tiny model emits: row 0 now stops early
    try:
        for exact in (False, True):
            ours = generate(model, tok, convs, 24, batch_size=3, exact_tokens=exact)
            ref = generate(model, tok, convs, 24, batch_size=3, exact_tokens=exact, via_generate=True)
            assert [g.ids for g in ours] == [g.ids for g in ref]
            assert [g.text for g in ours] == [g.text for g in ref]
            if exact:
                assert {g.tokens for g in ours} == {24}
            else:
                assert ours[0].tokens <= 5
    finally:
        cfg.eos_token_id = eos
