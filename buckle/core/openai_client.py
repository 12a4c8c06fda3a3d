"""One client for OpenAI-compatible servers (OpenAI, vLLM, TGI, llama.cpp, ...): chat and completions.

Stdlib only. 429 and 5xx replies, timeouts and refused connections are retried
with exponential backoff, honouring the server's Retry-After; after the last
retry a request fails with EndpointUnavailable. Other 4xx replies fail at once
with EndpointError. A rate limit spaces request starts, and a semaphore bounds
the requests in flight however many threads call. A 200 reply whose body is
not a chat completion is returned as its raw text, so the caller's parser can
mark it unparseable. `CompletionsClient` posts /completions bodies (the
served engine's generation and prompt logprobs) and returns the parsed reply.
"""
from __future__ import annotations

import email.utils
import json
import os
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence
from urllib.parse import urlparse

from buckle.core.urls import is_loopback


class EndpointError(RuntimeError):
    """A non-retryable HTTP error for one request (e.g. 400 prompt too long)."""


class EndpointUnavailable(RuntimeError):
    """The endpoint kept failing (429/5xx/network) through every retry."""


class Endpoint:
    """Retried, rate-limited, bounded POSTs of JSON bodies to one URL; thread-safe."""

    # raised after the last retry; a caller may put its own type here (eval: JudgeUnavailable)
    unavailable: type[Exception] = EndpointUnavailable
    label = "endpoint"  # how errors name it, e.g. "judge endpoint"

    def __init__(self, url: str, api_key: str | None = None, *, timeout_s: float = 60.0,
                 max_retries: int = 5, backoff_s: float = 1.0, max_backoff_s: float = 60.0,
                 rate_limit: float | None = None, concurrency: int = 4):
        """Args:
            url: the full URL requests go to.
            api_key: sent as a Bearer token when given (see `api_key_from_env`).
            timeout_s: seconds per request.
            max_retries: extra attempts after a 429/5xx reply or a network error.
            backoff_s: seconds before the first retry; doubles each time.
            max_backoff_s: cap on one wait, Retry-After included.
            rate_limit: request starts per second over all threads; None: no limit.
            concurrency: requests in flight at once.
        """
        self.url, self.api_key, self.timeout_s = url, api_key, timeout_s
        self.max_retries, self.backoff_s, self.max_backoff_s = max_retries, backoff_s, max_backoff_s
        self.concurrency = concurrency
        self.requests_sent = 0
        self._interval = 1.0 / rate_limit if rate_limit else 0.0
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self._inflight = threading.BoundedSemaphore(max(1, concurrency))

    def post(self, payload: dict) -> bytes:
        """The body of a 200 reply to `payload`, retried on 429/5xx/network errors.

        Raises:
            EndpointError: a 4xx reply other than 429 (asking again will not help).
            EndpointUnavailable: (or `self.unavailable`) every attempt failed.
        """
        body = json.dumps(payload).encode("utf-8")
        last, retry_after = "", None
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.delay(attempt, retry_after))
            self._wait_for_slot()
            try:
                return self._post(body)
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", "replace")[:300]
                if exc.code != 429 and exc.code < 500:
                    raise EndpointError(f"{self.label} {self.url} answered {exc.code}: {detail}") from None
                last = f"HTTP {exc.code}"
                retry_after = exc.headers.get("Retry-After")
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                last = str(getattr(exc, "reason", exc))
                retry_after = None
        raise self.unavailable(f"{self.label} {self.url} unreachable after "
                               f"{self.max_retries + 1} attempts (last: {last})")

    def map(self, fn: Any, items: Sequence[Any]) -> list[Any]:
        """fn over items on up to `concurrency` threads, in input order; an item that failed with
        EndpointError or `unavailable` holds its exception."""
        def one(item: Any) -> Any:
            try:
                return fn(item)
            except (self.unavailable, EndpointError) as exc:
                return exc
        if not items:
            return []
        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(items)))) as pool:
            return list(pool.map(one, items))

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before retry `attempt` (1, 2, ...): Retry-After if given, else backoff."""
        wait = retry_after_seconds(retry_after) if retry_after else None
        if wait is None:
            wait = self.backoff_s * 2 ** (attempt - 1)
        return min(wait, self.max_backoff_s)

    def _post(self, body: bytes) -> bytes:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with self._inflight:
            with self._lock:
                self.requests_sent += 1
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return resp.read()

    def _wait_for_slot(self) -> None:
        # evenly spaced request starts across all threads
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self._interval
        time.sleep(max(0.0, slot - now))


class ChatClient(Endpoint):
    """Chat completions from one OpenAI-compatible endpoint; thread-safe."""

    def __init__(self, url: str, model: str, api_key: str | None = None, *,
                 timeout_s: float = 60.0, max_retries: int = 5, backoff_s: float = 1.0,
                 max_backoff_s: float = 60.0, rate_limit: float | None = None,
                 concurrency: int = 4, max_tokens: int = 256, temperature: float = 0.0):
        """Args:
            url: base URL (".../v1") or the full ".../chat/completions" URL.
            model: the model name the server expects.
            max_tokens: reply length cap sent with each request.
            temperature: sampling temperature (0: greedy, what judges want).
            Others: see Endpoint.
        """
        url = url.rstrip("/")
        super().__init__(url if url.endswith("/chat/completions") else f"{url}/chat/completions", api_key,
                         timeout_s=timeout_s, max_retries=max_retries, backoff_s=backoff_s,
                         max_backoff_s=max_backoff_s, rate_limit=rate_limit, concurrency=concurrency)
        self.model, self.max_tokens, self.temperature = model, max_tokens, temperature
        self.id = f"openai:{model}@{self.url}"

    def complete(self, messages: list[dict]) -> str:
        """One chat completion's reply text, retried on 429/5xx/network errors.

        Raises:
            EndpointError: a 4xx reply other than 429 (asking again will not help).
            EndpointUnavailable: (or `self.unavailable`) every attempt failed.
        """
        return _content(self.post({"model": self.model, "messages": messages, "temperature": self.temperature,
                                   "max_tokens": self.max_tokens}))

    def complete_many(self, conversations: Sequence[list[dict]]) -> list[str | Exception]:
        """Reply texts in input order; an item that failed holds its exception."""
        return self.map(self.complete, conversations)


class CompletionsClient(Endpoint):
    """Text completions (POST /completions) from one OpenAI-compatible endpoint; thread-safe."""

    def __init__(self, url: str, model: str, api_key: str | None = None, **kwargs: Any):
        """Args:
            url: base URL (".../v1") or the full ".../completions" URL.
            model: the model name the server expects (sent in every body).
            kwargs: see Endpoint.
        """
        url = url.rstrip("/")
        super().__init__(url if url.endswith("/completions") else f"{url}/completions", api_key, **kwargs)
        self.model = model

    def create(self, body: dict) -> dict:
        """The parsed reply to one completions request (`model` is added to the body).

        Raises:
            EndpointError: a 4xx reply, or a 200 reply that is not a completion.
            EndpointUnavailable: every attempt failed.
        """
        raw = self.post({"model": self.model, **body})
        try:
            reply = json.loads(raw)
            reply["choices"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            raise EndpointError(f"{self.label} {self.url} answered 200 with no completion: "
                                f"{raw[:200].decode('utf-8', 'replace')}") from None
        return reply

    def create_many(self, bodies: Sequence[dict]) -> list[dict | Exception]:
        """Replies in input order; an item that failed holds its exception."""
        return self.map(self.create, bodies)


def retry_after_seconds(value: str) -> float | None:
    """Seconds a Retry-After header asks for (a number or an HTTP date); None if unreadable."""
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def api_key_from_env(env_name: str | None, setting: str = "judge_api_key_env") -> str | None:
    """The API key from the environment.

    OPENAI_API_KEY (the default, also for None) is optional, since local servers
    need no key; any other variable a config names must be set.

    Raises:
        ValueError: a named variable other than OPENAI_API_KEY is not set (names `setting`).
    """
    if env_name is None or env_name == "OPENAI_API_KEY":
        return os.environ.get("OPENAI_API_KEY") or None
    key = os.environ.get(env_name)
    if not key:
        raise ValueError(f"{setting}: environment variable '{env_name}' is not set")
    return key


def api_key_for(url: str, env_name: str | None, setting: str = "api_key_env") -> str | None:
    """The API key to send to `url`: only over https or to a loopback host.

    A key named explicitly (`env_name` other than OPENAI_API_KEY) for plain http
    to another host is an error; the optional OPENAI_API_KEY is then not sent.

    Raises:
        ValueError: the named variable is unset, or it would travel unencrypted (names `setting`).
    """
    key = api_key_from_env(env_name, setting)
    if key is None or key_transport_safe(url):
        return key
    if env_name is None or env_name == "OPENAI_API_KEY":
        return None  # the ambient key is for OpenAI's https API, not this server
    raise ValueError(f"{setting}: refusing to send the key in '{env_name}' over plain http to "
                     f"{urlparse(url).hostname}; use an https base_url or a loopback host")


def named_api_key(url: str, env_name: str | None, setting: str = "judge_api_key_env") -> str | None:
    """The key for `url` from the variable a config names, and none when it names none.

    Unlike `api_key_for`, nothing ambient is sent: a judge gets OPENAI_API_KEY only
    when its config says `judge_api_key_env: OPENAI_API_KEY`, and a named key goes
    only over https or to a loopback host.

    Raises:
        ValueError: the named variable is unset (any but OPENAI_API_KEY, which may be
            empty for a local server), or the key would travel over plain http to another host.
    """
    if env_name is None:
        return None
    key = api_key_from_env(env_name, setting)
    if key is None or key_transport_safe(url):
        return key
    raise ValueError(f"{setting}: refusing to send the key in '{env_name}' over plain http to "
                     f"{urlparse(url).hostname}; use an https URL or a loopback host")


def key_transport_safe(url: str) -> bool:
    """Whether a secret may travel to `url`: https, or http to a loopback host."""
    return urlparse(url).scheme == "https" or is_loopback(url)


def _content(raw: bytes) -> str:
    # a body that is not a chat completion is returned whole: the parser marks it unparseable
    text = raw.decode("utf-8", "replace")
    try:
        content = json.loads(text)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return text
    return content if isinstance(content, str) else text
