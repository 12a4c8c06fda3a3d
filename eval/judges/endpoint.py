"""The judges' OpenAI-compatible backend: the shared client (buckle.core.openai_client).

429/5xx replies and network errors are retried with backoff (honouring
Retry-After); after the last retry an item fails with JudgeUnavailable, which
the rubric judge records as a fatal error. Other 4xx replies fail that item at
once (EndpointError). A 200 reply that is not a chat completion comes back as
its raw text, so the rubric parser records it as unparseable.
"""
from __future__ import annotations

from buckle.core.openai_client import ChatClient, EndpointError, named_api_key
from buckle.eval.judges.base import JudgeUnavailable

__all__ = ["EndpointError", "OpenAIBackend"]


class OpenAIBackend(ChatClient):
    """Chat completions from an OpenAI-compatible server, as a judge backend."""

    unavailable = JudgeUnavailable
    label = "judge endpoint"

    def __init__(self, url: str, model: str, api_key_env: str | None = None,
                 rate_limit: float | None = None, concurrency: int = 4, max_retries: int = 5,
                 backoff_s: float = 1.0, timeout_s: float = 60.0, max_tokens: int = 256,
                 max_backoff_s: float = 60.0):
        """Args: url is the base URL (".../v1") or the full ".../chat/completions" URL;
        api_key_env names the env var with the key; None sends no key (an ambient
        OPENAI_API_KEY stays home); a named key goes only over https or to a loopback host;
        rate_limit is in requests per second over all threads."""
        super().__init__(url, model, named_api_key(url, api_key_env), timeout_s=timeout_s,
                         max_retries=max_retries, backoff_s=backoff_s, max_backoff_s=max_backoff_s,
                         rate_limit=rate_limit, concurrency=concurrency, max_tokens=max_tokens)
