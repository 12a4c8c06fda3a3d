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


def _kept(sampler: PerRowSampling, logits: torch.Tensor) -> list[set[int]]:
    # each row's nucleus as a set of token ids
    kept: list[set[int]] = [set()] * logits.shape[0]
    for rows, _, ids, size in sampler.nuclei(logits):
        for r, row_ids, n in zip(rows.tolist(), ids, size.tolist()):
            kept[r] = set(row_ids[:n].tolist())
    return kept


def test_each_row_gets_its_own_temperature():
    torch.manual_seed(0)
    logits = torch.randn(3, 50).repeat(1, 1)
    logits[1:] = logits[0]  # same logits in every row: only the settings differ
    sampler = PerRowSampling([0.5, 1.0, 2.0], [1.0, 1.0, 1.0])
    for rows, cum, ids, _ in sampler.nuclei(logits.clone()):
        for r, row_cum, row_ids in zip(rows.tolist(), cum, ids):
            want = torch.softmax(logits[r] / [0.5, 1.0, 2.0][r], dim=-1)[row_ids]
            got = row_cum.diff(prepend=torch.zeros(1))
            assert torch.allclose(got, want, atol=1e-6)
    torch.manual_seed(1)
    draws = torch.stack([sampler.draw(logits) for _ in range(2000)])
    # a colder row concentrates on its top token
    top = int(logits[0].argmax())
    share = (draws == top).float().mean(dim=0).tolist()
    assert share[0] > share[1] > share[2]


def test_each_row_gets_its_own_nucleus():
    torch.manual_seed(1)
    logits = torch.randn(1, 200).repeat(4, 1)
    top_ps = [0.1, 0.5, 0.9, 1.0]
    probs = torch.softmax(logits[0], dim=-1)
    for candidates in (256, 16):  # 16: the wider nuclei go past the candidates and sort the vocabulary
        kept = _kept(PerRowSampling([1.0] * 4, top_ps, candidates=candidates), logits.clone())
        sizes = [len(k) for k in kept]
        assert sizes == [_nucleus_size(probs, p) for p in top_ps]
        assert sizes[0] < sizes[1] < sizes[2] < sizes[3] == 200
        # kept tokens are the most likely ones
        assert kept[1] == set(probs.argsort(descending=True)[:sizes[1]].tolist())


def test_temperature_applies_before_the_nucleus():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]] * 2)
    kept = _kept(PerRowSampling([0.25, 4.0], [0.8, 0.8]), logits.clone())
    # sharp row: the top token alone holds > 0.8; flat row needs three tokens
    assert kept == [{0}, {0, 1, 2}]


def test_draws_follow_the_renormalised_nucleus():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]] * 2)
    sampler = PerRowSampling([1.0, 1.0], [0.8, 1.0])
    torch.manual_seed(0)
    draws = torch.stack([sampler.draw(logits) for _ in range(20000)])
    probs = torch.softmax(logits[0], dim=-1)
    freq = torch.stack([(draws == t).float().mean(dim=0) for t in range(4)], dim=1)
    assert torch.allclose(freq[0], torch.cat([probs[:2] / probs[:2].sum(), torch.zeros(2)]), atol=0.015)
    assert torch.allclose(freq[1], probs, atol=0.015)


def test_rows_of_one_generate_call_sample_differently(tiny_lm, monkeypatch):
    model, tok = tiny_lm
    prompt = prompt_ids(tok, "How do I boil an egg?")
    calls = []
    real = model.forward

    def spy(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return real(*args, **kwargs)

    greedy = model.generate(input_ids=torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                  do_sample=False, max_new_tokens=12, min_new_tokens=12,
                  pad_token_id=tok.pad_token_id)[0, len(prompt):].tolist()
    # rows 0-2: a nucleus so small only the top token survives (= greedy); rows 3-5: hot and wide
    temps, tops = [1.0, 1.0, 1.0, 3.0, 3.0, 3.0], [1e-6, 1e-6, 1e-6, 1.0, 1.0, 1.0]
    monkeypatch.setattr(model, "forward", spy)
    out = sample(model, [prompt] * 6, temps, tops, [12] * 6, tok.pad_token_id, [], batch_size=8,
                 seed=0, min_new_tokens=12)
    assert calls == [1] + [6] * 11  # one prefill of the shared prompt, then every row in each step
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


def test_temperature_zero_rows_take_the_argmax_beside_sampled_rows():
    import torch

    from buckle.core.engine.hf_sample import PerRowSampling

    torch.manual_seed(0)
    logits = torch.randn(4, 50)
    sampler = PerRowSampling([0.0, 1.0, 0.0, 1.0], [1.0, 0.5, 0.9, 1.0])
    picks = [sampler.draw(logits) for _ in range(20)]
    argmax = logits.argmax(dim=-1)
    assert all(p[0] == argmax[0] and p[2] == argmax[2] for p in picks)
    assert len({int(p[3]) for p in picks}) > 1  # the full-vocabulary row still samples
    assert torch.equal(PerRowSampling([0.0] * 4, [1.0] * 4).draw(logits), argmax)


def test_a_common_opening_is_prefilled_once_and_changes_no_continuation(tiny_lm, monkeypatch):
    """Prompts that open alike (one system turn) prefill that opening once; each row then holds
    [opening][padding][rest], and its logits and greedy tokens are those of the prompt run alone."""
    import buckle.core.engine.hf_sample as gen

    model, tok = tiny_lm
    system = "You are a careful assistant who answers household questions briefly and safely."
    users = ["Hi", "How do I boil an egg without cracking the shell?", "Name a fruit.", "Why is the sky blue today?"]
    prompts = [prompt_ids(tok, u, system) for u in users]
    opening = gen._common_prefix([tuple(p) for p in prompts])
    assert opening >= gen.MIN_SHARED_PREFIX and len({len(p) for p in prompts}) == 4
    width = max(map(len, prompts))
    shapes = []
    real = model.forward
    monkeypatch.setattr(model, "forward", lambda *a, **k: shapes.append(tuple(k["input_ids"].shape)) or real(*a, **k))
    with torch.inference_mode():
        logits, _, mask = gen._shared_prefill(model, prompts, width + 10, tok.pad_token_id)
    assert shapes == [(1, opening), (4, width - opening)]
    assert mask[:, :width].sum(dim=-1).tolist() == [len(p) for p in prompts]
    monkeypatch.setattr(gen, "MIN_SHARED_PREFIX", 10 ** 6)
    with torch.inference_mode():
        plain, _, _ = gen._shared_prefill(model, prompts, width + 10, tok.pad_token_id)
    assert torch.allclose(logits, plain, atol=1e-4)
    monkeypatch.setattr(gen, "MIN_SHARED_PREFIX", 8)
    out = sample(model, prompts, [0.0] * 4, [1.0] * 4, [10] * 4, tok.pad_token_id, [], batch_size=4,
                 min_new_tokens=10)
    for p, s in zip(prompts, out):
        alone = model.generate(input_ids=torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long),
                               do_sample=False, max_new_tokens=10, min_new_tokens=10, pad_token_id=tok.pad_token_id)
        assert s.ids == alone[0, len(p):].tolist()
