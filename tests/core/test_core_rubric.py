"""The one helpfulness rubric: curation's filter and eval's report ask and parse it alike."""
import pytest

from buckle.core.rubric import CRITERIA, helpfulness_messages, mean_helpfulness, parse_helpfulness
from buckle.curation.method import judges as curation_judges
from buckle.eval.judges import rubric as eval_rubric


def test_the_asked_format_parses():
    reply = "#reason: ok\n#relevance: 5\n#clarity: 4\n#comprehensiveness: 3\n#usefulness: 2"
    assert parse_helpfulness(reply) == {"relevance": 5, "clarity": 4, "comprehensiveness": 3, "usefulness": 2}
    assert mean_helpfulness(parse_helpfulness(reply)) == 3.5


def test_json_and_loose_lines_parse_too():
    assert parse_helpfulness('Sure: {"relevance": 4, "clarity": 5, "comprehensiveness": 3, "usefulness": 0}') == {
        "relevance": 4.0, "clarity": 5.0, "comprehensiveness": 3.0, "usefulness": 0.0}
    got = parse_helpfulness("Relevance: 3\nClarity - 4\ncomprehensiveness: 2.5\nUsefulness: 5")
    assert mean_helpfulness(got) == pytest.approx(3.625)


@pytest.mark.parametrize("reply", [
    '{"relevance": 4, "comprehensiveness": 3, "usefulness": 1}',        # one missing
    "#relevance: 4\n#clarity: 9\n#comprehensiveness: 3\n#usefulness: 1",  # off the 0-5 scale
    "It is quite helpful.",
])
def test_replies_off_the_format_do_not_parse(reply):
    assert parse_helpfulness(reply) is None


def test_curation_and_eval_share_prompt_and_parser():
    messages = helpfulness_messages("How do I boil an egg?", "Nine minutes.")
    assert [m["role"] for m in messages] == ["system", "user"]
    assert all(c in messages[1]["content"] for c in CRITERIA)
    judge = eval_rubric.RubricJudge(type("B", (), {"id": "b"})(), "helpfulness")
    assert judge.conversation({"prompt": "How do I boil an egg?", "response": "Nine minutes."}) == messages
    assert eval_rubric.parse_helpfulness is parse_helpfulness
    assert curation_judges.RUBRICS is CRITERIA and curation_judges.mean_rubric is mean_helpfulness
