"""Helpfulness judges: the 4-rubric score (relevance, clarity, comprehensiveness, usefulness, each 0-5).

`EndpointJudge` asks any OpenAI-compatible chat-completions server (stdlib
urllib, retries with backoff, a few requests in flight). `OfflineJudge` scores
the same rubrics from text statistics on CPU: no model, no network, fully
deterministic; it is a proxy, so use an endpoint judge for real studies.
A judge's helpfulness is the mean of the four rubric scores.
"""
from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, Sequence

from buckle.curation.method.scorers import readability, words

RUBRICS = ("relevance", "clarity", "comprehensiveness", "usefulness")
JUDGE_PROMPT = """You are grading how helpful a response is to an instruction.
Score each rubric from 0 (worst) to 5 (best):
- relevance: does the response address the instruction?
- clarity: is it clear, well organised and easy to read?
- comprehensiveness: does it cover what the instruction needs?
- usefulness: would it actually help the person who asked?

Instruction:
{instruction}

Response:
{response}

Reply with only a JSON object, for example:
{{"relevance": 4, "clarity": 5, "comprehensiveness": 3, "usefulness": 4}}"""


class HelpfulnessJudge(Protocol):
    """Scores responses to one instruction; higher is more helpful (0-5)."""

    name: str

    def score(self, instruction: str, responses: Sequence[str]) -> list[float]:
        """Helpfulness of each response, in order."""


def mean_rubric(scores: dict[str, float]) -> float:
    """The mean of the four rubric scores."""
    return sum(scores[r] for r in RUBRICS) / len(RUBRICS)


def parse_rubrics(text: str) -> dict[str, float]:
    """Rubric scores from a judge's reply: a JSON object, or `name: number` lines.

    Raises:
        ValueError: when any rubric is missing.
    """
    found: dict[str, float] = {}
    match = re.search(r"\{.*?\}", text, re.DOTALL)
    if match:
        try:
            obj = json.loads(match.group(0))
            found = {k.lower(): float(v) for k, v in obj.items() if k.lower() in RUBRICS}
        except (ValueError, TypeError, AttributeError):
            found = {}
    for name in RUBRICS:
        if name not in found:
            m = re.search(rf"{name}\W{{0,4}}(\d+(?:\.\d+)?)", text, re.IGNORECASE)
            if m:
                found[name] = float(m.group(1))
    missing = [r for r in RUBRICS if r not in found]
    if missing:
        raise ValueError(f"judge reply lacks {', '.join(missing)}: {text[:200]!r}")
    return {r: min(5.0, max(0.0, found[r])) for r in RUBRICS}


class EndpointJudge:
    """The 4-rubric prompt sent to an OpenAI-compatible `/chat/completions` endpoint."""

    name = "openai"

    def __init__(self, url: str, model: str, api_key: str | None = None, timeout: float = 60.0,
                 retries: int = 3, workers: int = 4, backoff: float = 1.0):
        """Args:
            url: base URL, e.g. http://host:8000/v1 (`/chat/completions` is appended).
            model: the model name the server expects.
            api_key: sent as a Bearer token when given.
            timeout: seconds per request.
            retries: extra attempts after a failed request or unreadable reply.
            workers: requests in flight at once.
            backoff: seconds before the first retry; doubles each time.
        """
        base = url.rstrip("/")
        self.endpoint = base if base.endswith("/chat/completions") else base + "/chat/completions"
        self.model, self.api_key, self.timeout = model, api_key, timeout
        self.retries, self.workers, self.backoff = retries, workers, backoff
        self._cache: dict[tuple[str, str], float] = {}

    def rubrics(self, instruction: str, response: str) -> dict[str, float]:
        """Ask the endpoint for one response's rubric scores, retrying on failure."""
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                return parse_rubrics(self._ask(JUDGE_PROMPT.format(instruction=instruction, response=response)))
            except urllib.error.HTTPError as exc:
                last = exc
                if exc.code < 500 and exc.code != 429:
                    break  # a client error will not go away by asking again
            except (urllib.error.URLError, TimeoutError, ConnectionError, ValueError, KeyError) as exc:
                last = exc
        raise RuntimeError(f"helpfulness judge at {self.endpoint} failed: {last}")

    def score(self, instruction: str, responses: Sequence[str]) -> list[float]:
        """Helpfulness of each response (cached per text)."""
        todo = [r for r in dict.fromkeys(responses) if (instruction, r) not in self._cache]
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(todo) or 1))) as pool:
            for resp, scores in zip(todo, pool.map(lambda r: self.rubrics(instruction, r), todo)):
                self._cache[(instruction, resp)] = mean_rubric(scores)
        return [self._cache[(instruction, r)] for r in responses]

    def _ask(self, prompt: str) -> str:
        body = json.dumps({"model": self.model, "temperature": 0.0, "max_tokens": 100,
                           "messages": [{"role": "user", "content": prompt}]}).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.endpoint, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            reply = json.loads(resp.read().decode("utf-8"))
        return reply["choices"][0]["message"]["content"]


_STOP = set("""a an the and or but if then so of to in on at by for with from as is are was were be been
being it its this that these those i you he she we they me my your our their do does did how what
why when where which who can could should would will may might not no yes also than too very just
about into over under more most some any all each such there here have has had get got make""".split())
_REFUSAL = re.compile(r"\b(i can(no|')t|i'm sorry|i am sorry|as an ai|i won't|i will not|unable to help)\b", re.I)


def _stems(text: str) -> set[str]:
    # crude stemming by prefix: "boiling" and "boiled" both become "boil"
    return {w.lower()[:4] for w in words(text)
            if len(w) > 2 and w.lower() not in _STOP}


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
               api_key_env: str = "OPENAI_API_KEY", **kwargs) -> HelpfulnessJudge:
    """Build the judge a config names ("offline" or "openai").

    Raises:
        ValueError: an "openai" judge without url or model.
    """
    if kind == "offline":
        return OfflineJudge()
    if kind == "openai":
        if not url:
            raise ValueError("judge_url: required for judge 'openai' (e.g. http://localhost:8000/v1)")
        if not model:
            raise ValueError("judge_model: required for judge 'openai'")
        return EndpointJudge(url, model, api_key=os.environ.get(api_key_env), **kwargs)
    raise ValueError(f"judge: unknown kind '{kind}' (offline, openai)")
