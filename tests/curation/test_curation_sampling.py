"""Per-row sampling: every row of one generate call gets its own temperature and top-p."""
import torch

from buckle.core.engine.hf_sample import PerRowSampling, sample
from buckle.core.engine.hf_lm import prompt_ids


def _nucleus_size(probs: torch.Tensor, top_p: float) -> int:
    # smallest prefix of the sorted distribution whose mass reaches top_p (computed independently)
    total, n = 0.0, 0
    for p in sorted(probs.tolist(), reverse=True):
        n += 1
        total += p
        if total >= top_p:
            break
    return n


def test_each_row_gets_its_own_temperature():
    torch.manual_seed(0)
    logits = torch.randn(3, 50).repeat(1, 1)
    logits[1:] = logits[0]  # same logits in every row: only the settings differ
    out = PerRowSampling([0.5, 1.0, 2.0], [1.0, 1.0, 1.0])(None, logits.clone())
    for row, temp in enumerate([0.5, 1.0, 2.0]):
        want = torch.softmax(logits[row] / temp, dim=-1)
        assert torch.allclose(torch.softmax(out[row], dim=-1), want, atol=1e-6)
    assert not torch.allclose(out[0], out[2])


def test_each_row_gets_its_own_nucleus():
    torch.manual_seed(1)
    logits = torch.randn(1, 200).repeat(4, 1)
    top_ps = [0.1, 0.5, 0.9, 1.0]
    out = PerRowSampling([1.0] * 4, top_ps)(None, logits.clone())
    kept = torch.isfinite(out).sum(dim=1).tolist()
    probs = torch.softmax(logits[0], dim=-1)
    assert kept == [_nucleus_size(probs, p) for p in top_ps]
    assert kept[0] < kept[1] < kept[2] < kept[3] == 200
    # kept tokens are the most likely ones, renormalised only by the mask
    top = probs.argsort(descending=True)[:kept[1]]
    assert torch.isfinite(out[1, top]).all()


def test_temperature_applies_before_the_nucleus():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]] * 2)
    out = PerRowSampling([0.25, 4.0], [0.8, 0.8])(None, logits.clone())
    # sharp row: the top token alone holds > 0.8; flat row needs three tokens
    assert torch.isfinite(out).sum(dim=1).tolist() == [1, 3]


def test_rows_of_one_generate_call_sample_differently(tiny_lm, monkeypatch):
    model, tok = tiny_lm
    prompt = prompt_ids(tok, "How do I boil an egg?")
    calls = []
    real = model.generate

    def spy(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(model, "generate", spy)
    greedy = real(input_ids=torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                  do_sample=False, max_new_tokens=12, min_new_tokens=12,
                  pad_token_id=tok.pad_token_id)[0, len(prompt):].tolist()
    # rows 0-2: a nucleus so small only the top token survives (= greedy); rows 3-5: hot and wide
    temps, tops = [1.0, 1.0, 1.0, 3.0, 3.0, 3.0], [1e-6, 1e-6, 1e-6, 1.0, 1.0, 1.0]
    out = sample(model, [prompt] * 6, temps, tops, [12] * 6, tok.pad_token_id, [], batch_size=8,
                 seed=0, min_new_tokens=12)
    assert calls == [6]  # one batched call for every row
    assert all(s.ids == greedy for s in out[:3])
    assert all(s.ids != greedy for s in out[3:])
    assert len({tuple(s.ids) for s in out[3:]}) == 3


def test_sample_keeps_input_order_across_batches(tiny_lm):
    model, tok = tiny_lm
    prompts = [prompt_ids(tok, "Hi"), prompt_ids(tok, "What is the capital of France, and why?"), prompt_ids(tok, "Ok")]
    out = sample(model, prompts, [1.0] * 3, [1e-6] * 3, [5, 7, 3], tok.pad_token_id, [], batch_size=2, seed=0,
                 min_new_tokens=7)
    assert [len(s.ids) for s in out] == [5, 7, 3]  # each row cut to its own budget
    assert all(not s.finished for s in out)
    for p, s in zip(prompts, out):
        single = sample(model, [p], [1.0], [1e-6], [len(s.ids)], tok.pad_token_id, [], seed=0,
                        min_new_tokens=len(s.ids))[0]
        assert single.ids == s.ids  # greedy rows: left padding does not change the continuation


def test_shared_prefill_matches_separate_prompts(tiny_lm, monkeypatch):
    import buckle.core.engine.hf_sample as gen

    model, tok = tiny_lm
    a, b = prompt_ids(tok, "How do I boil an egg?"), prompt_ids(tok, "Name a fruit, please, and say why.")
    prefills = []
    real = gen._shared_prefill
    monkeypatch.setattr(gen, "_shared_prefill", lambda *args: prefills.append(1) or real(*args))
    shared = sample(model, [a, b, a, b, a], [1.0] * 5, [1e-6] * 5, [8] * 5, tok.pad_token_id, [], seed=0,
                    min_new_tokens=8)
    assert len(prefills) == 1
    alone = {k: sample(model, [p], [1.0], [1e-6], [8], tok.pad_token_id, [], seed=0, min_new_tokens=8)[0].ids
             for k, p in (("a", a), ("b", b))}
    assert [s.ids for s in shared] == [alone[k] for k in "ababa"]
