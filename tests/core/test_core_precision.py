"""`dtype: auto` picks bfloat16 only where the hardware has it, and bfloat16 stays close to float32."""
import math

import pytest

from buckle.core import precision


def test_auto_follows_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ("amx_bf16",))
    assert precision.resolve_dtype("auto", "cpu") == ("bfloat16", "auto: CPU with amx_bf16")
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ())
    name, reason = precision.resolve_dtype("auto", "cpu")
    assert name == "float32" and "without native bfloat16" in reason
    with pytest.warns(RuntimeWarning, match="emulated, about 100x slower than float32"):
        assert precision.resolve_dtype("bfloat16", "cpu") == ("bfloat16", "asked for")


def test_a_pinned_bfloat16_warns_only_where_the_cpu_lacks_it(monkeypatch, recwarn):
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ("avx512_bf16",))
    assert precision.resolve_dtype("bfloat16", "cpu") == ("bfloat16", "asked for")
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ())
    assert precision.resolve_dtype("float32", "cpu") == ("float32", "asked for")
    assert not [w for w in recwarn if "emulated" in str(w.message)]
    from buckle.train import trainer

    monkeypatch.setattr(trainer, "has_cuda", lambda: False)
    with pytest.warns(RuntimeWarning, match="without native bfloat16"):
        assert trainer.use_bf16(True) is True


def test_unknown_dtype_is_named():
    with pytest.raises(ValueError, match="dtype: unknown 'fp8'"):
        precision.resolve_dtype("fp8", "cpu")


def test_flags_are_read_from_cpuinfo():
    flags = precision.cpu_bf16_flags()
    assert set(flags) <= set(precision.BF16_CPU_FLAGS)


@pytest.fixture(scope="module")
def two_engines(tmp_path_factory):
    from buckle.core.engine.hf import HFEngine
    from tiny import build_tiny_model

    path = str(build_tiny_model(tmp_path_factory.mktemp("tiny"), layers=2, hidden=64))
    return (HFEngine.load(path, "float32", "cpu", score_batch_size=4),
            HFEngine.load(path, "bfloat16", "cpu", score_batch_size=4))


PROMPTS = ["How do I boil an egg?", "What is the capital of France?", "Give me a tip for studying."]
RESPONSES = ["Put the egg in boiling water for nine minutes.", "Paris is the capital of France.",
             "Short sessions with breaks help memory."]


def test_bfloat16_perplexity_within_two_percent_of_float32(two_engines):
    f32, b16 = two_engines
    assert b16.describe()["dtype"] == "bfloat16" and b16.describe()["dtype_reason"] == "asked for"
    for a, b in zip(f32.perplexity(PROMPTS, RESPONSES), b16.perplexity(PROMPTS, RESPONSES)):
        assert math.isfinite(b) and abs(math.log(b) - math.log(a)) < 0.02, (a, b)


def test_bfloat16_greedy_mostly_agrees_with_float32(two_engines):
    f32, b16 = two_engines
    convs = [[{"role": "user", "content": p}] for p in PROMPTS]
    a = [g.text for g in f32.greedy(convs, 12)]
    b = [g.text for g in b16.greedy(convs, 12)]
    # a random tiny model has near-tied logits, so a bf16 rounding may flip a token; most prefixes agree
    same = sum(x[:8] == y[:8] for x, y in zip(a, b))
    assert same >= 2, (a, b)
