"""Judges: keyword refusal (ASR), policy and helpfulness rubrics, Llama-Guard-style classifier."""
from buckle.eval.judges.base import Judge, JudgeUnavailable, Verdict

__all__ = ["Judge", "JudgeUnavailable", "Verdict"]
