"""The one OpenAI-compatible client, against the shared honest fake server."""
import socket
import time

import pytest
from fake_openai import FakeOpenAI, server  # noqa: F401 (server: the fixture)

from buckle.core.openai_client import (ChatClient, EndpointError, EndpointUnavailable, api_key_from_env,
                                       retry_after_seconds)

HI = [{"role": "user", "content": "hi"}]


def test_reply_text_and_an_openai_shaped_request(server):
    client = ChatClient(server.url, "m", "sk-1", max_tokens=32)
    assert "#score: 3" in client.complete(HI)
    body = server.bodies[0]
    assert body == {"model": "m", "messages": HI, "temperature": 0.0, "max_tokens": 32}
    assert server.headers[0]["Authorization"] == "Bearer sk-1"
    assert client.url == server.url + "/chat/completions" and client.id == f"openai:m@{client.url}"


def test_retry_after_wins_over_backoff(server):
    server.fail_codes, server.retry_after = [429], "0.3"
    ChatClient(server.url, "m", backoff_s=0.0).complete(HI)
    assert server.arrivals[1] - server.arrivals[0] >= 0.3
    server.fail_codes, server.retry_after = [429], "0"
    start = time.monotonic()
    ChatClient(server.url, "m", backoff_s=30.0).complete(HI)  # "0": retry at once
    assert time.monotonic() - start < 5


def test_delay_doubles_and_is_capped():
    client = ChatClient("http://x/v1", "m", backoff_s=1.0, max_backoff_s=3.0)
    assert [client.delay(a) for a in (1, 2, 3)] == [1.0, 2.0, 3.0]
    assert client.delay(1, "2.5") == 2.5 and client.delay(1, "100") == 3.0
    assert client.delay(2, "soon") == 2.0  # unreadable header: backoff
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past


def test_errors_are_clear(server):
    server.fail_codes = [400]
    with pytest.raises(EndpointError, match="answered 400"):
        ChatClient(server.url, "m").complete(HI)
    server.fail_codes = [503] * 3
    with pytest.raises(EndpointUnavailable, match=r"unreachable after 3 attempts \(last: HTTP 503\)"):
        ChatClient(server.url, "m", max_retries=2, backoff_s=0.01).complete(HI)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    got = ChatClient(f"http://127.0.0.1:{port}/v1", "m", max_retries=0).complete_many([HI])
    assert isinstance(got[0], EndpointUnavailable) and f"127.0.0.1:{port}" in str(got[0])


def test_requests_in_flight_are_bounded_across_threads():
    import threading

    fake = FakeOpenAI(delay_s=0.15).start()
    try:
        client = ChatClient(fake.url, "m", concurrency=2)
        threads = [threading.Thread(target=client.complete_many, args=([HI] * 3,)) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert fake.max_inflight == 2 and client.requests_sent == 9
    finally:
        fake.stop()


def test_api_key_from_env(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert api_key_from_env(None) is None and api_key_from_env("OPENAI_API_KEY") is None
    monkeypatch.setenv("MY_KEY", "k")
    assert api_key_from_env("MY_KEY") == "k"
    with pytest.raises(ValueError, match="judge_api_key_env: environment variable 'NOPE_KEY' is not set"):
        api_key_from_env("NOPE_KEY")
