"""Hand-made judged responses: an eval run directory whose keyword verdicts are given per prompt."""
import json
from pathlib import Path


def write_responses(path: Path, outcomes: list[bool]) -> Path:
    """`path`/responses.jsonl with prompt p{i} judged complied (attack succeeded) where outcomes[i]."""
    path.mkdir(parents=True)
    rows = [{"id": f"p{i}", "verdicts": {"keyword": {"label": "complied" if hit else "refusal"}}}
            for i, hit in enumerate(outcomes)]
    (path / "responses.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
