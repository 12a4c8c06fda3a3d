"""OpenAI-compatible chat-completions backend: rate limit, retries with backoff, concurrency.

429 and 5xx replies, timeouts and refused connections are retried with
exponential backoff (honouring Retry-After); after the last retry the item
fails with JudgeUnavailable. Other 4xx replies fail that item at once. A 200
reply whose body is not a chat completion is returned as its raw text, so the
rubric parser records it as unparseable.
"""
from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from buckle.eval.judges.base import JudgeUnavailable


class EndpointError(RuntimeError):
    """A non-retryable HTTP error for one request (e.g. 400 prompt too long)."""


class OpenAIBackend:
    """Chat completions from an OpenAI-compatible server (OpenAI, vLLM, TGI, llama.cpp, ...)."""

    def __init__(self, url: str, model: str, api_key_env: str | None = None,
                 rate_limit: float | None = None, concurrency: int = 4, max_retries: int = 5,
                 backoff_s: float = 1.0, timeout_s: float = 60.0, max_tokens: int = 256,
                 max_backoff_s: float = 60.0):
        """Args: url is the base URL (".../v1") or the full ".../chat/completions" URL;
        api_key_env names the env var with the key (default OPENAI_API_KEY, if set);
        rate_limit is in requests per second over all threads."""
        url = url.rstrip("/")
        self.url = url if url.endswith("/chat/completions") else f"{url}/chat/completions"
        self.model, self.concurrency, self.max_retries = model, concurrency, max_retries
        self.backoff_s, self.max_backoff_s, self.timeout_s = backoff_s, max_backoff_s, timeout_s
        self.max_tokens = max_tokens
        self.api_key = _api_key(api_key_env)
        self.id = f"openai:{model}@{self.url}"
        self._interval = 1.0 / rate_limit if rate_limit else 0.0
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self.requests_sent = 0

    def complete_many(self, conversations: Sequence[list[dict]]) -> list[str | Exception]:
        """Reply texts in input order; an item that failed holds its exception."""
        def one(messages: list[dict]) -> str | Exception:
            try:
                return self.complete(messages)
            except (JudgeUnavailable, EndpointError) as exc:
                return exc
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(one, conversations))

    def complete(self, messages: list[dict]) -> str:
        """One chat completion (temperature 0), retried on 429/5xx/network errors."""
        body = json.dumps({"model": self.model, "messages": messages, "temperature": 0,
                           "max_tokens": self.max_tokens}).encode("utf-8")
        last, retry_after = "", None
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self._delay(attempt, retry_after))
            self._wait_for_slot()
            try:
                return _content(self._post(body))
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", "replace")[:300]
                if exc.code != 429 and exc.code < 500:
                    raise EndpointError(f"judge endpoint {self.url} answered {exc.code}: {detail}") from None
                last = f"HTTP {exc.code}"
                retry_after = exc.headers.get("Retry-After")
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                last = str(getattr(exc, "reason", exc))
                retry_after = None
        raise JudgeUnavailable(f"judge endpoint {self.url} unreachable after "
                               f"{self.max_retries + 1} attempts (last: {last})")

    def _post(self, body: bytes) -> bytes:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with self._lock:
            self.requests_sent += 1
        with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
            return resp.read()

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), self.max_backoff_s)
            except ValueError:
                pass  # an HTTP date; fall back to exponential backoff
        return min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)

    def _wait_for_slot(self) -> None:
        # evenly spaced request starts across all threads
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self._interval
        time.sleep(max(0.0, slot - now))


def _api_key(env_name: str | None) -> str | None:
    if env_name is None:
        return os.environ.get("OPENAI_API_KEY")
    key = os.environ.get(env_name)
    if not key:
        raise ValueError(f"judge_api_key_env: environment variable '{env_name}' is not set")
    return key


def _content(raw: bytes) -> str:
    # a body that is not a chat completion is returned whole: the parser marks it unparseable
    text = raw.decode("utf-8", "replace")
    try:
        content = json.loads(text)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return text
    return content if isinstance(content, str) else text
