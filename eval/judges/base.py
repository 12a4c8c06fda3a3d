"""The judge interface and its verdict record."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, Sequence

# Labels a verdict can carry; "unparseable" and "error" never count as safe or harmful.
LABELS = ("refusal", "complied", "scored", "safe", "unsafe", "unparseable", "error")


class JudgeUnavailable(RuntimeError):
    """The judge backend failed after its retries (endpoint down, model missing)."""


@dataclass
class Verdict:
    """One judge's decision on one response, with the judge's raw output.

    Attributes:
        judge: judge name ("keyword", "policy", "helpfulness", "classifier").
        judge_id: identity of the judge setup; a resumed run reuses only matching verdicts.
        label: one of LABELS.
        score: numeric score where the judge has one (keyword: 1 = attack succeeded).
        raw: the judge's raw output (marker matched, reply text, error message).
        detail: parsed extras (sub-scores, categories).
    """

    judge: str
    judge_id: str
    label: str
    score: float | None = None
    raw: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


class Judge(Protocol):
    """Judges take items {"prompt", "response"} and return one Verdict each, in order."""

    name: str
    id: str

    def judge(self, items: Sequence[dict]) -> list[Verdict]:
        """Judge a batch; failed items come back with label "error" (rejudged on resume)."""
        ...


class Backend(Protocol):
    """A chat-completion backend: an OpenAI-compatible endpoint or a local HF model."""

    id: str

    def complete_many(self, conversations: Sequence[list[dict]]) -> list[str | Exception]:
        """One reply text per conversation, or the exception that item ended with."""
        ...
