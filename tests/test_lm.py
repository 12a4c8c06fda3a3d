import math

import pytest

from buckle.core.engine.hf_lm import load_lm, perplexities, prompt_ids, response_ids


def _reference_ppl(model, tok, prompt, response):
    import torch

    p, r = prompt_ids(tok, prompt), response_ids(tok, response)
    ids = torch.tensor([p + r])
    labels = ids.clone()
    labels[0, :len(p)] = -100
    with torch.no_grad():
        loss = model(input_ids=ids, labels=labels).loss
    return math.exp(loss.item())


PAIRS = [
    ("How do I boil an egg?", "Put it in boiling water for nine minutes."),
    ("What is the capital of France?", "Paris."),
    ("Give me a study tip, please, with some detail about breaks.", "Short sessions with breaks help memory more than cramming, and sleep matters too."),
]


def test_perplexity_matches_model_loss(tiny_model_dir):
    model, tok = load_lm(str(tiny_model_dir), "float32")
    for prompt, response in PAIRS:
        got = perplexities(model, tok, [prompt], [response])[0]
        want = _reference_ppl(model, tok, prompt, response)
        assert got == pytest.approx(want, rel=1e-4)


def test_batched_equals_one_at_a_time(tiny_model_dir):
    model, tok = load_lm(str(tiny_model_dir), "float32")
    prompts, responses = zip(*PAIRS)
    batched = perplexities(model, tok, prompts, responses, batch_size=3)
    single = [perplexities(model, tok, [p], [r])[0] for p, r in PAIRS]
    assert batched == pytest.approx(single, rel=1e-4)
    assert len(set(round(x, 3) for x in batched)) == 3


def test_too_long_text_is_an_error(tiny_model_dir):
    model, tok = load_lm(str(tiny_model_dir), "float32")
    with pytest.raises(ValueError, match="longer than the limit 10"):
        perplexities(model, tok, ["hello there"], ["a b c d e f g h i j k"], max_length=10)


@pytest.mark.slow
def test_perplexity_matches_on_embedded_model(embedded_model_dir):
    model, tok = load_lm(str(embedded_model_dir), "float32")
    prompt, response = PAIRS[0]
    assert perplexities(model, tok, [prompt], [response])[0] == pytest.approx(
        _reference_ppl(model, tok, prompt, response), rel=1e-4)


def test_one_perplexity_for_curation_and_evaluation(tiny_model_dir):
    """Curation's and evaluation's perplexity are one function now (the hf engine's), system prompt included."""
    from buckle.core.engine.hf import HFEngine
    from buckle.eval.perplexity import perplexity, response_nll

    model, tok = load_lm(str(tiny_model_dir), "float32")
    engine = HFEngine(model, tok, score_batch_size=2)
    prompts, responses = zip(*PAIRS)
    via_eval = [perplexity(*x) for x in response_nll(model, tok, prompts, responses, batch_size=3)]
    assert engine.perplexity(prompts, responses) == pytest.approx(perplexities(model, tok, prompts, responses))
    assert via_eval == pytest.approx(perplexities(model, tok, prompts, responses), rel=1e-6)
    with_system = engine.perplexity(prompts[:1], responses[:1], system="Be brief.")
    assert with_system != pytest.approx(via_eval[:1], rel=1e-6)  # the system turn reaches the prompt


def test_boolean_and_tail_logit_selection_agree(tiny_model_dir, monkeypatch):
    """Older transformers take no boolean logits_to_keep: the int (tail) route gives the same numbers."""
    from buckle.core.engine import hf_lm

    model, tok = load_lm(str(tiny_model_dir), "float32")
    prompts, responses = zip(*PAIRS)
    first = perplexities(model, tok, prompts, responses, batch_size=3)
    monkeypatch.setitem(hf_lm._MASK_KEEP, type(model), not hf_lm._MASK_KEEP.get(type(model), True))
    assert perplexities(model, tok, prompts, responses, batch_size=3) == pytest.approx(first, rel=1e-5)
