"""engine openai against the honest fake server: per-row settings on the wire, perplexity from its prompt
logprobs checked against an independent HF computation, a clear error where a server has none, the key rules,
and the lifecycle of a served vLLM (a stand-in python serving /v1/models; the real one: test_core_engine_vllm)."""
import math
import os
import stat
import sys

import pytest
from fake_openai import FakeOpenAI

from buckle.core.engine import select
from buckle.core.engine.served import OpenAIEngine, UnsupportedByServer
from buckle.core.openai_client import api_key_for, key_transport_safe

PAIRS = [("How do I boil an egg?", "Put the egg in boiling water for nine minutes."),
         ("What is the capital of France?", "Paris is the capital of France."),
         ("Give me a tip for studying.", "Short sessions with breaks help memory.")]


@pytest.fixture
def fake(tiny_model_dir):
    server = FakeOpenAI(model_dir=str(tiny_model_dir)).start()
    yield server
    server.stop()


@pytest.fixture
def engine(fake, tiny_model_dir):
    return OpenAIEngine(str(tiny_model_dir), fake.url, served_model="tiny", concurrency=4)


def test_sample_sends_each_rows_settings_and_the_chat_text(engine, fake):
    prompts = [engine.prompt_ids("How do I boil an egg?"), engine.prompt_ids("What is the capital of France?")] * 2
    temps, top_ps, budgets = [0.2, 0.5, 0.8, 1.1], [0.9, 1.0, 0.7, 0.95], [4, 64, 64, 64]
    out = engine.sample(prompts, temps, top_ps, budgets, seed=7, min_new_tokens=2)
    bodies = sorted(fake.bodies, key=lambda b: b["seed"])
    assert [(b["temperature"], b["top_p"], b["max_tokens"], b["seed"]) for b in bodies] == \
        list(zip(temps, top_ps, budgets, [7, 8, 9, 10]))
    assert all(b["model"] == "tiny" and b["min_tokens"] == 2 for b in bodies)
    chat = engine.tok.apply_chat_template([{"role": "user", "content": "How do I boil an egg?"}],
                                          add_generation_prompt=True, tokenize=False)
    assert bodies[0]["prompt"] == chat
    assert len(out[0].ids) == 4 and not out[0].finished  # cut by its budget: finish_reason "length"
    texts = [engine.tok.decode(s.ids) for s in out]
    assert texts[1].startswith("T=0.5 P=1.0 S=8 |") and texts[1].endswith("France?\nassistant") and out[1].finished
    assert texts[2].startswith("T=0.8 P=0.7 S=9 |") and "egg?" in texts[2]


def test_generate_is_greedy_and_unseeded_at_temperature_zero(engine, fake):
    gens = engine.greedy([[{"role": "user", "content": q}] for q, _ in PAIRS], 48)
    assert [g.text.split(" |")[0] for g in gens] == ["T=0.0 P=1.0 S=None"] * 3
    assert all("seed" not in b and "ignore_eos" not in b for b in fake.bodies)
    assert gens[1].text.endswith("France?\nassistant") and gens[1].tokens == len(gens[1].ids) > 0
    engine.generate([[{"role": "user", "content": "hi"}]], 8, exact_tokens=True)
    assert fake.bodies[-1]["ignore_eos"] is True and fake.bodies[-1]["min_tokens"] == 8


def _hf_nll(model_dir, prompt, response):
    """Summed response NLL by a plain HF forward with prompt labels masked (independent of the engine)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    head = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False)
    p_ids = tok(head, add_special_tokens=False)["input_ids"]
    r_ids = tok(response, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    ids = torch.tensor([p_ids + r_ids])
    labels = ids.clone()
    labels[0, :len(p_ids)] = -100
    with torch.inference_mode():
        loss = model(input_ids=ids, labels=labels).loss.item()
    return loss * len(r_ids), len(r_ids)


@pytest.mark.parametrize("routes, route", [({"prompt_logprobs", "echo"}, "prompt_logprobs"), ({"echo"}, "echo")])
def test_perplexity_matches_an_independent_hf_forward(engine, fake, tiny_model_dir, routes, route):
    fake.routes = routes
    got = engine.response_nll([p for p, _ in PAIRS], [r for _, r in PAIRS])
    want = [_hf_nll(str(tiny_model_dir), p, r) for p, r in PAIRS]
    assert [n for _, n in got] == [n for _, n in want]
    assert all(math.isclose(a, b, rel_tol=1e-4) for (a, _), (b, _) in zip(got, want))
    assert engine.scorer == route and engine.describe()["scorer"] == route
    assert len(engine.perplexity(["q"], ["a"])) == 1 and all(route_key(b) == route for b in fake.bodies[-1:])


def route_key(body):
    return "prompt_logprobs" if "prompt_logprobs" in body else "echo"


def test_a_server_without_prompt_logprobs_is_a_clear_error(engine, fake):
    fake.routes = set()
    with pytest.raises(UnsupportedByServer, match=r"server http://127\.0\.0\.1:\d+/v1 gives no prompt logprobs"
                                                  r".*prompt_logprobs.*echo=true"):
        engine.perplexity(["q"], ["a"])


def test_api_key_travels_only_over_https_or_loopback(monkeypatch, fake, tiny_model_dir):
    monkeypatch.setenv("MY_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-ambient")
    assert key_transport_safe("https://api.example.com/v1") and key_transport_safe("http://localhost:8000/v1")
    assert key_transport_safe("http://127.0.0.2/v1") and key_transport_safe("http://[::1]:9/v1")
    assert not key_transport_safe("http://gpu-box.example:8000/v1")
    assert api_key_for("https://api.example.com/v1", "MY_KEY") == "sk-test"
    with pytest.raises(ValueError, match="api_key_env: refusing to send the key in 'MY_KEY' over plain http "
                                         "to gpu-box.example"):
        api_key_for("http://gpu-box.example:8000/v1", "MY_KEY")
    assert api_key_for("http://gpu-box.example:8000/v1", None) is None  # the ambient key stays home
    engine = OpenAIEngine(str(tiny_model_dir), fake.url, api_key_env="MY_KEY")
    engine.greedy([[{"role": "user", "content": "hi"}]], 4)
    assert fake.headers[-1]["Authorization"] == "Bearer sk-test"


def test_choice_config_and_load(fake, tiny_model_dir):
    from buckle.core.engine.options import EngineOptions

    with pytest.raises(ValueError, match="base_url: engine openai needs"):
        select.choose("openai", "cpu")
    assert select.choose("server", "cpu", fake.url) == ("openai", f"asked for: server {fake.url}")
    with pytest.raises(ValueError, match="base_url: engine server needs"):
        EngineOptions(engine="server")
    with pytest.raises(ValueError, match="base_url: 'localhost:8000' is not an http"):
        EngineOptions(engine="openai", base_url="localhost:8000")
    cfg = EngineOptions(engine="openai", base_url=fake.url, served_model="tiny")
    kwargs = select.config_kwargs(cfg)
    assert kwargs == {"backend": "openai", "tensor_parallel_size": 1, "pipeline_parallel_size": 1,
                      "kv_cache_gib": 4, "base_url": fake.url, "served_model": "tiny"}
    assert select.choice_record(cfg)["picked"] == "openai"
    engine = select.load_engine(str(tiny_model_dir), gen_batch_size=3, **kwargs)
    record = select.engine_record(engine)
    assert record["backend"] == "openai" and record["base_url"] == fake.url and record["served_model"] == "tiny"
    assert engine.client.concurrency == 3


def test_vllm_picks_in_process_then_the_vllm_environment(monkeypatch, tmp_path):
    monkeypatch.setattr(select, "vllm_installed", lambda: False)
    monkeypatch.setattr(select, "vllm_env", lambda: None)
    with pytest.raises(ValueError, match="vllm is not installed.*make setup builds .venv-vllm"):
        select.choose("vllm", "cpu")
    assert select.choose("auto", "cuda")[0] == "hf"
    monkeypatch.setattr(select, "vllm_env", lambda: "/opt/vllm-env/bin/python")
    assert select.choose("vllm", "cpu") == ("vllm-served", "asked for: served from the vLLM environment "
                                                           "/opt/vllm-env/bin/python")
    assert select.choose("auto", "cuda")[0] == "vllm-served" and select.choose("auto", "cpu")[0] == "hf"
    monkeypatch.setattr(select, "vllm_installed", lambda: True)
    assert select.choose("vllm", "cpu")[0] == "vllm" and select.choose("auto", "cuda")[0] == "vllm"


def test_vllm_python_from_the_environment_variable(monkeypatch, tmp_path):
    from buckle.core.engine.vllm_server import vllm_python

    monkeypatch.setenv("BUCKLE_VLLM_PYTHON", str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="BUCKLE_VLLM_PYTHON: .* is not an executable python"):
        vllm_python()
    monkeypatch.setenv("BUCKLE_VLLM_PYTHON", sys.executable)
    assert vllm_python() == sys.executable


def _stand_in_python(tmp_path, body):
    """An executable that takes vLLM's command line and runs `body` with $PORT set (not vLLM)."""
    script = tmp_path / "python"
    script.write_text("#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = --port ] && PORT=$2; shift; done\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_server_lifecycle_start_wait_stop(tmp_path):
    from buckle.core.engine.vllm_server import VLLMServer

    (tmp_path / "www" / "v1").mkdir(parents=True)
    (tmp_path / "www" / "v1" / "models").write_text('{"data": []}')
    python = _stand_in_python(tmp_path, f"cd {tmp_path / 'www'} && sleep 1 && "
                                        f"exec {sys.executable} -m http.server $PORT --bind 127.0.0.1\n")
    server = VLLMServer(python, "m", "bfloat16", kv_cache_gib=2).start()
    pid = server.proc.pid
    assert server.startup_s >= 1 and server.env["VLLM_CPU_KVCACHE_SPACE"] == "2"
    assert "--enforce-eager" in server.args and server.args[server.args.index("--dtype") + 1] == "bfloat16"
    server.stop()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # the whole group is gone
    server.stop()  # twice is fine


def test_a_server_that_dies_while_starting_says_why(tmp_path):
    from buckle.core.engine.vllm_server import VLLMServer

    python = _stand_in_python(tmp_path, "echo 'ValueError: no such model' >&2; exit 3\n")
    with pytest.raises(RuntimeError, match=r"exited with code 3 while starting[\s\S]*no such model"):
        VLLMServer(python, "m", "float32").start()
