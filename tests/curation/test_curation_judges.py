"""Helpfulness judges: the endpoint judge against a real local HTTP server, and the offline judge."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from buckle.curation.method.judges import RUBRICS, EndpointJudge, OfflineJudge, make_judge, mean_rubric, parse_rubrics


class _ChatServer:
    """A local server speaking the OpenAI chat-completions API.

    It grades with a rule it states openly: relevance 5 if the response
    mentions "egg", else 1; clarity 4, comprehensiveness 3, usefulness 2.
    `plan` holds forced statuses/replies for the next requests.
    """

    def __init__(self):
        self.requests, self.plan = [], []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "body": body,
                                        "auth": self.headers.get("Authorization")})
                status, content = server.plan.pop(0) if server.plan else (200, None)
                if content is None:
                    prompt = body["messages"][-1]["content"]
                    response = prompt.split("Response:\n", 1)[1]
                    rel = 5 if "egg" in response else 1
                    content = json.dumps({"relevance": rel, "clarity": 4, "comprehensiveness": 3, "usefulness": 2})
                reply = json.dumps({"id": "x", "object": "chat.completion", "model": body["model"],
                                    "choices": [{"index": 0, "finish_reason": "stop",
                                                 "message": {"role": "assistant", "content": content}}]})
                data = reply.encode() if status == 200 else b'{"error": "planned"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chat_server():
    server = _ChatServer()
    yield server
    server.close()


def test_endpoint_judge_sends_the_rubric_prompt_and_averages(chat_server):
    judge = EndpointJudge(chat_server.url, "judge-model", api_key="sk-test", backoff=0.01)
    scores = judge.score("How do I boil an egg?", ["Boil the egg for nine minutes.", "Paris is in France."])
    assert scores == [pytest.approx((5 + 4 + 3 + 2) / 4), pytest.approx((1 + 4 + 3 + 2) / 4)]
    req = chat_server.requests[0]
    assert req["path"] == "/v1/chat/completions"
    assert req["body"]["model"] == "judge-model" and req["body"]["temperature"] == 0.0
    assert req["auth"] == "Bearer sk-test"
    prompt = req["body"]["messages"][0]["content"]
    assert all(r in prompt for r in RUBRICS) and "How do I boil an egg?" in prompt
    # cached: asking again sends nothing
    judge.score("How do I boil an egg?", ["Boil the egg for nine minutes."])
    assert len(chat_server.requests) == 2


def test_endpoint_judge_retries_server_errors_and_bad_replies(chat_server):
    chat_server.plan = [(500, None), (429, None), (200, "I think it is fine.")]
    judge = EndpointJudge(chat_server.url, "m", retries=3, backoff=0.01)
    assert judge.score("Q about egg", ["egg answer"]) == [pytest.approx(3.5)]
    assert len(chat_server.requests) == 4


def test_endpoint_judge_gives_up_with_a_clear_error(chat_server):
    chat_server.plan = [(400, None)]
    judge = EndpointJudge(chat_server.url, "m", retries=3, backoff=0.01)
    with pytest.raises(RuntimeError, match="judge at .* failed.*400"):
        judge.score("Q", ["A"])
    assert len(chat_server.requests) == 1  # a client error is not retried
    chat_server.plan = [(500, None)] * 3
    with pytest.raises(RuntimeError, match="500"):
        EndpointJudge(chat_server.url, "m", retries=2, backoff=0.01).score("Q", ["B"])


def test_endpoint_judge_unreachable_server_errors():
    judge = EndpointJudge("http://127.0.0.1:9/v1", "m", retries=1, backoff=0.01, timeout=2)
    with pytest.raises(RuntimeError, match="failed"):
        judge.score("Q", ["A"])


def test_parse_rubrics_accepts_json_or_lines_and_clips():
    assert parse_rubrics('Sure: {"relevance": 4, "clarity": 9, "comprehensiveness": 3, "usefulness": 0}') == {
        "relevance": 4.0, "clarity": 5.0, "comprehensiveness": 3.0, "usefulness": 0.0}
    got = parse_rubrics("Relevance: 3\nClarity - 4\ncomprehensiveness: 2.5\nUsefulness: 5")
    assert mean_rubric(got) == pytest.approx(3.625)
    with pytest.raises(ValueError, match="lacks clarity"):
        parse_rubrics('{"relevance": 4, "comprehensiveness": 3, "usefulness": 1}')


def test_offline_judge_prefers_relevant_clear_complete_answers():
    judge = OfflineJudge()
    q = "How do I boil an egg?"
    good = "Put the egg in boiling water for nine minutes. Then cool it in cold water so it peels easily."
    off_topic = "Paris is the capital of France. It has many museums and a famous tower."
    refusal = "I'm sorry, but I cannot help with boiling an egg."
    repeated = "egg egg egg egg egg egg egg egg egg egg."
    s_good, s_off, s_ref, s_rep = judge.score(q, [good, off_topic, refusal, repeated])
    assert s_good > s_off and s_good > s_ref and s_good > s_rep
    assert judge.rubrics(q, good)["relevance"] == 5.0 and judge.rubrics(q, off_topic)["relevance"] == 0.0
    assert judge.rubrics(q, refusal)["usefulness"] == 0.0
    assert judge.score(q, [good]) == judge.score(q, [good])  # deterministic


def test_make_judge_names_missing_settings():
    assert isinstance(make_judge("offline"), OfflineJudge)
    with pytest.raises(ValueError, match="judge_url"):
        make_judge("openai", model="m")
    with pytest.raises(ValueError, match="judge_model"):
        make_judge("openai", url="http://x/v1")
