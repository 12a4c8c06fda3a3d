"""Helpfulness judges: the 4-rubric score (relevance, clarity, comprehensiveness, usefulness, each 0-5).

`EndpointJudge` asks any OpenAI-compatible chat-completions server through the
shared client (retries with backoff, Retry-After, a rate limit, a few requests
in flight) with the shared rubric prompt, the one the evaluation report uses.
`OfflineJudge` scores the same rubrics from text statistics on CPU: no model,
no network, fully deterministic; it is a proxy, so use an endpoint judge for
real studies. A judge's helpfulness is the mean of the four rubric scores.
"""
from __future__ import annotations

import re
import time
from typing import Protocol, Sequence

from buckle.core.openai_client import ChatClient, named_api_key
from buckle.core.rubric import CRITERIA as RUBRICS
from buckle.core.rubric import helpfulness_messages, parse_helpfulness
from buckle.core.rubric import mean_helpfulness as mean_rubric
from buckle.curation.method.scorers import readability, stem, words

__all__ = ["RUBRICS", "EndpointJudge", "HelpfulnessJudge", "OfflineJudge", "make_judge", "mean_rubric"]


class HelpfulnessJudge(Protocol):
    """Scores responses to one instruction; higher is more helpful (0-5)."""

    name: str

    def score(self, instruction: str, responses: Sequence[str]) -> list[float]:
        """Helpfulness of each response, in order."""


class EndpointJudge:
    """The shared rubric prompt sent to an OpenAI-compatible `/chat/completions` endpoint."""

    name = "openai"

    def __init__(self, url: str, model: str, api_key: str | None = None, timeout: float = 60.0,
                 retries: int = 3, workers: int = 4, backoff: float = 1.0, rate_limit: float | None = None):
        """Args:
            url: base URL, e.g. http://host:8000/v1 (`/chat/completions` is appended).
            model: the model name the server expects.
            api_key: sent as a Bearer token when given.
            timeout: seconds per request.
            retries: extra attempts after a failed request, and again after an unreadable reply.
            workers: requests in flight at once.
            backoff: seconds before the first retry; doubles each time (a Retry-After wins).
            rate_limit: requests per second; None: no limit.
        """
        self.client = ChatClient(url, model, api_key, timeout_s=timeout, max_retries=retries,
                                 backoff_s=backoff, rate_limit=rate_limit, concurrency=workers)
        self.endpoint, self.retries = self.client.url, retries
        self._cache: dict[tuple[str, str], float] = {}

    def rubrics(self, instruction: str, response: str) -> dict[str, float]:
        """Ask the endpoint for one response's rubric scores."""
        return self._rubrics_many(instruction, [response])[response]

    def score(self, instruction: str, responses: Sequence[str]) -> list[float]:
        """Helpfulness of each response (cached per text).

        Raises:
            RuntimeError: the endpoint failed, or kept giving replies without the four scores.
        """
        todo = [r for r in dict.fromkeys(responses) if (instruction, r) not in self._cache]
        for resp, scores in self._rubrics_many(instruction, todo).items():
            self._cache[(instruction, resp)] = mean_rubric(scores)
        return [self._cache[(instruction, r)] for r in responses]

    def _rubrics_many(self, instruction: str, responses: list[str]) -> dict[str, dict[str, float]]:
        # the client retries transport failures; an unreadable reply is asked again here
        done: dict[str, dict[str, float]] = {}
        pending, last = list(responses), ""
        for attempt in range(self.retries + 1):
            if not pending:
                break
            if attempt:
                time.sleep(self.client.delay(attempt))
            replies = self.client.complete_many([helpfulness_messages(instruction, r) for r in pending])
            retry = []
            for resp, reply in zip(pending, replies):
                if isinstance(reply, Exception):
                    raise RuntimeError(f"helpfulness judge at {self.endpoint} failed: {reply}") from None
                scores = parse_helpfulness(reply)
                if scores is None:
                    retry.append(resp)
                    last = f"reply lacks the four 0-5 scores: {reply[:200]!r}"
                else:
                    done[resp] = scores
            pending = retry
        if pending:
            raise RuntimeError(f"helpfulness judge at {self.endpoint} failed: {last}")
        return done


_STOP = set("""a an the and or but if then so of to in on at by for with from as is are was were be been
being it its this that these those i you he she we they me my your our their do does did how what
why when where which who can could should would will may might not no yes also than too very just
about into over under more most some any all each such there here have has had get got make""".split())
_REFUSAL = re.compile(r"\b(i can(no|')t|i'm sorry|i am sorry|as an ai|i won't|i will not|unable to help)\b", re.I)


def _stems(text: str) -> set[str]:
    # "boiling" and "boiled" both become "boil"
    return {stem(w) for w in words(text) if len(w) > 2 and w.lower() not in _STOP}


class OfflineJudge:
    """Rubric scores from text statistics (deterministic, CPU only).

    relevance: share of the instruction's content words the response picks up;
    clarity: readability, less repeated word pairs;
    comprehensiveness: content words, saturating at 30;
    usefulness: share of complete sentences, zero for a refusal.
    """

    name = "offline"

    def rubrics(self, instruction: str, response: str) -> dict[str, float]:
        """The four rubric scores (0-5) of one response."""
        ask, got = _stems(instruction), _stems(response)
        relevance = 5.0 * min(1.0, len(ask & got) / max(1, min(3, len(ask))))
        ws = [w.lower() for w in words(response)]
        pairs = list(zip(ws, ws[1:]))
        repeat = 1.0 - len(set(pairs)) / len(pairs) if pairs else 0.0
        clarity = 5.0 * readability(response) / 100.0 * (1.0 - repeat)
        content = [w for w in ws if len(w) > 2 and w not in _STOP]
        comprehensive = 5.0 * min(1.0, len(content) / 30.0)
        sents = [s for s in re.split(r"(?<=[.!?])\s+", response.strip()) if s]
        complete = sum(1 for s in sents if len(words(s)) >= 4 and s.rstrip()[-1:] in ".!?")
        useful = 0.0 if _REFUSAL.search(response) else 5.0 * complete / max(1, len(sents))
        return {"relevance": relevance, "clarity": clarity, "comprehensiveness": comprehensive,
                "usefulness": useful}

    def score(self, instruction: str, responses: Sequence[str]) -> list[float]:
        """Helpfulness of each response."""
        return [mean_rubric(self.rubrics(instruction, r)) for r in responses]


def make_judge(kind: str, url: str | None = None, model: str | None = None,
               api_key_env: str | None = None, **kwargs) -> HelpfulnessJudge:
    """Build the judge a config names ("offline" or "openai").

    A key is sent only when `api_key_env` names its variable, and then only over https or to a
    loopback host (buckle.core.openai_client.named_api_key).

    Raises:
        ValueError: an "openai" judge without url or model, its key variable unset, or the key
            bound for plain http to another host.
    """
    if kind == "offline":
        return OfflineJudge()
    if kind == "openai":
        if not url:
            raise ValueError("judge_url: required for judge 'openai' (e.g. http://localhost:8000/v1)")
        if not model:
            raise ValueError("judge_model: required for judge 'openai'")
        return EndpointJudge(url, model, api_key=named_api_key(url, api_key_env), **kwargs)
    raise ValueError(f"judge: unknown kind '{kind}' (offline, openai)")
