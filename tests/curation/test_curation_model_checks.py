"""First-token probabilities (hf engine) and the model-scored checks, against unbatched forwards of the tiny
model."""
import pytest

from buckle.core.engine.base import Engine
from buckle.core.engine.hf import HFEngine
from buckle.curation.method.model_checks import FAITHFUL, OPTIONS, SAFETY, SYSTEM, ModelChecks

USERS = ["Is water wet?", "Answer yes or no: is the capital of France Paris, the city on the Seine?",
         "Explain why the sky is blue, then say yes or no: is it blue because of scattering of sunlight?"]


@pytest.fixture(scope="module")
def engine(tiny_lm):
    model, tok = tiny_lm
    return HFEngine(model, tok, score_batch_size=2)  # 3 prompts: a padded batch of 2, then 1


def _reference(model, tok, user, options, system=None):
    """One unbatched forward over the chat-formatted prompt; each option's spellings summed."""
    import torch

    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
    with torch.inference_mode():
        probs = torch.softmax(model(input_ids=ids).logits[0, -1].float(), dim=-1)
    out = []
    for option in options:
        firsts = {tok(form, add_special_tokens=False)["input_ids"][0]
                  for form in (option, option.capitalize(), " " + option, " " + option.capitalize(), option.upper())}
        out.append(sum(probs[i].item() for i in firsts))
    return out


def test_first_token_probs_match_unbatched_forwards(engine, tiny_lm):
    model, tok = tiny_lm
    assert len({len(engine.prompt_ids(u)) for u in USERS}) == 3  # rows of different lengths: padding is exercised
    got = engine.first_token_probs(USERS, ["yes", "no"], system="Be brief.")
    want = [_reference(model, tok, u, ["yes", "no"], "Be brief.") for u in USERS]
    assert got == [pytest.approx(w, rel=1e-4, abs=1e-7) for w in want]
    assert all(0.0 < p < 1.0 for row in got for p in row)
    assert engine.first_token_probs([], ["yes"]) == []


def test_variants_are_summed_and_bad_inputs_named(engine, tiny_lm):
    from buckle.core.engine.hf_choice import option_ids

    _, tok = tiny_lm
    ids = option_ids(tok, "yes")
    assert len(ids) == len(set(ids)) >= 2 and tok("yes", add_special_tokens=False)["input_ids"][0] in ids
    with pytest.raises(ValueError, match="users\\[0\\]: prompt is .* tokens"):
        HFEngine(*tiny_lm, max_length=16).first_token_probs(["a long question " * 10], ["yes"])


def test_other_backends_say_they_lack_it():
    class Bare(Engine):
        name = "bare"

        def sample(self, *a, **k):
            return []

        def generate(self, *a, **k):
            return []

        def response_nll(self, *a, **k):
            return []

    with pytest.raises(NotImplementedError, match="engine 'bare'"):
        Bare().first_token_probs(["q"], ["yes"])


def test_model_checks_ask_the_question_and_read_p_yes(engine, tiny_lm):
    model, tok = tiny_lm
    checks = ModelChecks(engine)
    prompts = ["How do I boil an egg?", "What is the capital of France?"]
    responses = ["Boil it for nine minutes; be careful with the hot water.", "Paris."]
    yes, no = zip(*[_reference(model, tok, SAFETY.format(prompt=p, response=r), OPTIONS, SYSTEM)
                    for p, r in zip(prompts, responses)])
    assert checks.safety(prompts, responses) == pytest.approx([y / (y + n) for y, n in zip(yes, no)], rel=1e-4)
    original, rewrite = "Water the plants in the morning.", "Water the plants in the morning, and wear gloves."
    y, n = _reference(model, tok, FAITHFUL.format(original=original, rewrite=rewrite), OPTIONS, SYSTEM)
    assert checks.faithfulness([original], [rewrite]) == pytest.approx([y / (y + n)], rel=1e-4)
    assert "does this response carry safety advice that fits the question?" in SAFETY.lower()
    assert "keep every fact of the original and add nothing false?" in FAITHFUL
    assert checks.safety([], []) == []
    with pytest.raises(ValueError, match="originals and rewrites: 1 vs 2"):
        checks.faithfulness([original], [rewrite, rewrite])
