"""The `openai` backend: generation and perplexity through any OpenAI-compatible completions server.

The chat template is applied here with the model's own tokenizer and the text
goes to POST /completions as `prompt`, so a prompt is the same sequence
whichever backend decodes it. Each row is one request with its own
temperature, top-p, token budget and seed; the server batches the requests in
flight (`concurrency`). Perplexity reads the logprobs of the response tokens
from vLLM's `prompt_logprobs` (with `max_tokens=1`) or, where a server lacks
that, from `echo=true, logprobs=0`; the route that worked is kept.
"""
from __future__ import annotations

from typing import Any, Sequence

from buckle.core.engine.base import Engine, Generation, Messages, Sample
from buckle.core.openai_client import CompletionsClient, EndpointError, api_key_for

ROUTES = ("prompt_logprobs", "echo")


class UnsupportedByServer(RuntimeError):
    """The server does not offer what a call needs (e.g. prompt logprobs for perplexity)."""


class OpenAIEngine(Engine):
    """A model behind an OpenAI-compatible completions server, as an Engine.

    Args:
        path: the model's local directory or hub id (its tokenizer and config are read here).
        base_url: the server's base URL (".../v1").
        served_model: the model's name on the server; default `path`.
        api_key_env: the environment variable holding the key (default OPENAI_API_KEY, if set);
            sent only over https or to a loopback host.
        max_length: token cap per sequence; default the model's context.
        concurrency: requests in flight at once (the server batches them).
        timeout_s: seconds per request.
        scorer: "prompt_logprobs", "echo", or None to find the one the server offers on first use.
    """

    name = "openai"

    def __init__(self, path: str, base_url: str, served_model: str | None = None, api_key_env: str | None = None,
                 max_length: int | None = None, concurrency: int = 64, timeout_s: float = 600.0,
                 scorer: str | None = None):
        from transformers import AutoConfig, AutoTokenizer

        from buckle.core.engine.hf_lm import context_length, load_generation_config, stop_ids

        if not base_url:
            raise ValueError("base_url: engine openai needs the server's base URL (e.g. http://127.0.0.1:8000/v1)")
        if scorer is not None and scorer not in ROUTES:
            raise ValueError(f"scorer: unknown {scorer!r}; known: {', '.join(ROUTES)}")
        self.path, self.base_url, self.model = path, base_url.rstrip("/"), served_model or path
        self.tok = AutoTokenizer.from_pretrained(path)
        config = AutoConfig.from_pretrained(path)
        self.max_length = context_length(config, self.tok, max_length)
        self.eos_ids = stop_ids(load_generation_config(path, config), self.tok)
        self.client = CompletionsClient(self.base_url, self.model, api_key_for(self.base_url, api_key_env),
                                        timeout_s=timeout_s, max_retries=3, concurrency=concurrency)
        self.client.label = "completions server"
        self.scorer = scorer

    def sample(self, prompts: Sequence[Sequence[int]], temperatures: Sequence[float], top_ps: Sequence[float],
               max_new_tokens: Sequence[int], seed: int | None = None, min_new_tokens: int = 0) -> list[Sample]:
        """See Engine.sample: one request per row; row k is seeded `seed + k` when a seed is given."""
        if not (len(prompts) == len(temperatures) == len(top_ps) == len(max_new_tokens)):
            raise ValueError("prompts, temperatures, top_ps and max_new_tokens differ in length")
        bodies = []
        for k, (ids, t, p, n) in enumerate(zip(prompts, temperatures, top_ps, max_new_tokens)):
            body: dict[str, Any] = {"prompt": self._text(ids), "temperature": t, "top_p": p, "max_tokens": n}
            if seed is not None:
                body["seed"] = seed + k
            if min_new_tokens:  # vLLM's extra parameter: sent only when asked for
                body["min_tokens"] = min(min_new_tokens, n)
            bodies.append(body)
        return [self._sample(r, n) for r, n in zip(self._create_all(bodies), max_new_tokens)]

    def generate(self, conversations: Sequence[Messages], max_new_tokens: int, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int = 0, exact_tokens: bool = False,
                 progress: Any = False) -> list[Generation]:
        """See Engine.generate: temperature 0 is the server's greedy decoding."""
        from buckle.core.engine.hf_lm import encode

        bodies = []
        for k, messages in enumerate(conversations):
            body: dict[str, Any] = {"prompt": self._text(encode(self.tok, messages)), "max_tokens": max_new_tokens,
                                    "temperature": temperature, "top_p": top_p if temperature > 0 else 1.0}
            if temperature > 0:
                body["seed"] = seed + k
            if exact_tokens:  # vLLM's extra parameters (benchmarks)
                body.update(ignore_eos=True, min_tokens=max_new_tokens)
            bodies.append(body)
        gens = []
        for reply in self._create_all(bodies):
            text = reply["choices"][0].get("text") or ""
            ids = self._ids(reply["choices"][0], text)[:max_new_tokens]
            gens.append(Generation(text.strip(), len(ids), ids))
        if hasattr(progress, "update"):
            progress.update(len(gens))
        return gens

    def response_nll(self, prompts: Sequence[str], responses: Sequence[str],
                     system: str | None = None) -> list[tuple[float, int]]:
        """See Engine.response_nll: the logprobs the server gives the response tokens of the whole text."""
        from buckle.core.engine.hf_lm import pair_ids

        if not prompts:
            return []
        seqs = [pair_ids(self.tok, p, r, self.max_length, system) for p, r in zip(prompts, responses)]
        texts = [self._text(seq) for seq, _ in seqs]
        first = self._find_scorer(texts[0], seqs[0]) if self.scorer is None else None
        rest = self._create_all([self._score_body(t) for t in texts[1 if first else 0:]])
        replies = ([first] if first else []) + rest
        return [self._nll(reply, seq, n_prompt, text) for reply, (seq, n_prompt), text in zip(replies, seqs, texts)]

    def describe(self) -> dict[str, Any]:
        """Backend, server, the model's name there and the perplexity route."""
        return {**super().describe(), "base_url": self.base_url, "served_model": self.model,
                "scorer": self.scorer or "not yet used"}

    def _text(self, ids: Sequence[int]) -> str:
        # special tokens stay: the server's tokenizer reads the chat template's markers back as themselves
        return self.tok.decode(list(ids), skip_special_tokens=False)

    def _ids(self, choice: dict, text: str) -> list[int]:
        ids = choice.get("token_ids")  # vLLM returns them when asked (return_token_ids); else re-tokenize
        return list(ids) if ids else list(self.tok(text, add_special_tokens=False)["input_ids"])

    def _sample(self, reply: dict, limit: int) -> Sample:
        choice = reply["choices"][0]
        ids = self._ids(choice, choice.get("text") or "")
        for pos, tok in enumerate(ids[:limit]):
            if tok in self.eos_ids:
                return Sample(ids[:pos], True)
        return Sample(ids[:limit], choice.get("finish_reason") == "stop")

    def _create_all(self, bodies: list[dict]) -> list[dict]:
        replies = self.client.create_many(bodies)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies  # type: ignore[return-value]

    def _score_body(self, text: str, route: str | None = None) -> dict:
        body: dict[str, Any] = {"prompt": text, "max_tokens": 1, "temperature": 0.0}
        if (route or self.scorer) == "prompt_logprobs":
            body["prompt_logprobs"] = 0
        else:
            body.update(echo=True, logprobs=0)
        return body

    def _find_scorer(self, text: str, pair: tuple[list[int], int]) -> dict:
        """The first text's reply by the first route the server honours; remembers that route."""
        tried = []
        for route in ROUTES:
            try:
                reply = self.client.create(self._score_body(text, route))
            except EndpointError as exc:  # e.g. 400 for an unknown field
                tried.append(f"{route}: {str(exc)[:160]}")
                continue
            if _prompt_logprobs(reply, route) is not None:
                self.scorer = route
                return reply
            tried.append(f"{route}: the reply has no {_FIELDS[route]}")
        raise UnsupportedByServer(
            f"engine openai: server {self.base_url} gives no prompt logprobs, which perplexity needs "
            f"(tried {_FIELDS['prompt_logprobs']} and {_FIELDS['echo']}): " + "; ".join(tried))

    def _nll(self, reply: dict, seq: list[int], n_prompt: int, text: str) -> tuple[float, int]:
        lps = _prompt_logprobs(reply, self.scorer)
        if lps is None:
            raise UnsupportedByServer(f"engine openai: server {self.base_url} returned no {_FIELDS[self.scorer]}")
        want = seq[n_prompt:]
        if len(lps) <= len(want):
            raise UnsupportedByServer(f"engine openai: server {self.base_url} scored {len(lps)} prompt tokens, "
                                      f"fewer than the {len(want)} response tokens of a {len(seq)}-token text")
        # the response is the text's tail: a BOS the server may prepend shifts only the head
        tail = lps[len(lps) - len(want):]
        total = 0.0
        for pos, (tok, got) in enumerate(zip(want, tail)):
            lp = got.get(tok) if isinstance(got, dict) else got
            if lp is None:
                raise UnsupportedByServer(f"engine openai: server {self.base_url} tokenized the text differently "
                                          f"from the local tokenizer (response token {pos} is not {tok})")
            total -= lp
        return total, len(want)


_FIELDS = {"prompt_logprobs": "choices[0].prompt_logprobs (vLLM's prompt_logprobs=0)",
           "echo": "choices[0].logprobs.token_logprobs (echo=true, logprobs=0)"}


def _prompt_logprobs(reply: dict, route: str) -> list | None:
    """Per prompt position, {token id: logprob} (prompt_logprobs) or the logprob itself (echo); None if absent."""
    choice = reply["choices"][0]
    if route == "prompt_logprobs":
        raw = choice.get("prompt_logprobs")
        if not isinstance(raw, list):
            return None
        return [{int(k): v["logprob"] if isinstance(v, dict) else v for k, v in (d or {}).items()} for d in raw]
    logprobs = choice.get("logprobs") or {}
    values = logprobs.get("token_logprobs")
    if not isinstance(values, list):
        return None
    n_prompt = (reply.get("usage") or {}).get("prompt_tokens")  # echo lists the prompt's tokens, then the new one
    return values[:n_prompt] if n_prompt else values[:-1]
