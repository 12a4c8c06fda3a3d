"""Helpfulness judges: the endpoint judge against a real local HTTP server, and the offline judge."""
import time

import pytest
from fake_openai import FakeOpenAI, server  # noqa: F401 (server: the fixture)

from buckle.core.rubric import CRITERIA, PROMPT
from buckle.curation.method.judges import RUBRICS, EndpointJudge, OfflineJudge, make_judge


def test_endpoint_judge_sends_the_shared_rubric_prompt_and_averages(server):
    judge = EndpointJudge(server.url, "judge-model", api_key="sk-test", backoff=0.01)
    scores = judge.score("How do I boil an egg?", ["Boil the egg for nine minutes.", "OFFTOPIC: Paris."])
    assert scores == [pytest.approx((4 + 4 + 3 + 5) / 4), pytest.approx((1 + 4 + 3 + 5) / 4)]
    body = server.bodies[0]
    assert body["model"] == "judge-model" and body["temperature"] == 0.0
    assert server.headers[0]["Authorization"] == "Bearer sk-test"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    prompt = body["messages"][-1]["content"]
    assert RUBRICS == CRITERIA and prompt.startswith(PROMPT.split("{", 1)[0])  # the one eval uses too
    assert "How do I boil an egg?" in prompt
    # cached: asking again sends nothing
    judge.score("How do I boil an egg?", ["Boil the egg for nine minutes."])
    assert len(server.bodies) == 2


def test_endpoint_judge_retries_server_errors_and_bad_replies(server):
    server.fail_codes = [500, 429]
    server.script = ["I think it is fine."]
    judge = EndpointJudge(server.url, "m", retries=3, backoff=0.01)
    assert judge.score("Q about egg", ["egg answer"]) == [pytest.approx(4.0)]
    assert server.statuses == [500, 429, 200, 200]


def test_endpoint_judge_honours_retry_after(server):
    server.fail_codes, server.retry_after = [429], "0.4"
    judge = EndpointJudge(server.url, "m", retries=2, backoff=0.01)
    start = time.monotonic()
    assert judge.score("Q", ["A"]) == [pytest.approx(4.0)]
    assert time.monotonic() - start >= 0.4  # waited what the server asked, not the 0.01 s backoff
    assert server.arrivals[1] - server.arrivals[0] >= 0.4


def test_endpoint_judge_gives_up_with_a_clear_error(server):
    server.fail_codes = [400]
    judge = EndpointJudge(server.url, "m", retries=3, backoff=0.01)
    with pytest.raises(RuntimeError, match="judge at .* failed.*answered 400"):
        judge.score("Q", ["A"])
    assert len(server.bodies) == 1  # a client error is not retried
    server.fail_codes = [500] * 3
    with pytest.raises(RuntimeError, match=r"unreachable after 3 attempts \(last: HTTP 500\)"):
        EndpointJudge(server.url, "m", retries=2, backoff=0.01).score("Q", ["B"])
    with pytest.raises(RuntimeError, match="failed: reply lacks the four 0-5 scores"):
        EndpointJudge(server.url, "m", retries=1, backoff=0.01).score("Q", ["BROKENJSON"])


def test_endpoint_judge_unreachable_server_errors():
    judge = EndpointJudge("http://127.0.0.1:9/v1", "m", retries=1, backoff=0.01, timeout=2)
    with pytest.raises(RuntimeError, match="failed"):
        judge.score("Q", ["A"])


def test_endpoint_judge_bounds_requests_in_flight():
    fake = FakeOpenAI(delay_s=0.2).start()
    try:
        EndpointJudge(fake.url, "m", workers=2).score("Q", [f"answer {i}" for i in range(6)])
        assert fake.max_inflight == 2
    finally:
        fake.stop()


def test_offline_judge_prefers_relevant_clear_complete_answers():
    judge = OfflineJudge()
    q = "How do I boil an egg?"
    good = "Put the egg in boiling water for nine minutes. Then cool it in cold water so it peels easily."
    off_topic = "Paris is the capital of France. It has many museums and a famous tower."
    refusal = "I'm sorry, but I cannot help with boiling an egg."
    repeated = "egg egg egg egg egg egg egg egg egg egg."
    s_good, s_off, s_ref, s_rep = judge.score(q, [good, off_topic, refusal, repeated])
    assert s_good > s_off and s_good > s_ref and s_good > s_rep
    assert judge.rubrics(q, good)["relevance"] == 5.0 and judge.rubrics(q, off_topic)["relevance"] == 0.0
    assert judge.rubrics(q, refusal)["usefulness"] == 0.0
    assert judge.score(q, [good]) == judge.score(q, [good])  # deterministic


def test_make_judge_names_missing_settings():
    assert isinstance(make_judge("offline"), OfflineJudge)
    with pytest.raises(ValueError, match="judge_url"):
        make_judge("openai", model="m")
    with pytest.raises(ValueError, match="judge_model"):
        make_judge("openai", url="http://x/v1")
    with pytest.raises(ValueError, match="judge_api_key_env: environment variable 'BUCKLE_UNSET_KEY_X'"):
        make_judge("openai", url="http://x/v1", model="m", api_key_env="BUCKLE_UNSET_KEY_X")


def test_the_judge_key_goes_only_where_the_config_names_it(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-ambient")
    assert make_judge("openai", url="http://10.0.0.5:8000/v1", model="m").client.api_key is None
    named = make_judge("openai", url="http://127.0.0.1:8000/v1", model="m", api_key_env="OPENAI_API_KEY")
    assert named.client.api_key == "sk-ambient"
    with pytest.raises(ValueError, match="refusing to send the key in 'OPENAI_API_KEY' over plain http to 10.0.0.5"):
        make_judge("openai", url="http://10.0.0.5:8000/v1", model="m", api_key_env="OPENAI_API_KEY")
