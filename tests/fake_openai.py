"""A real local HTTP server speaking the OpenAI chat-completions and completions APIs, for tests.

It is a fake judge, honest about it: it scores by simple rules on the text it is
sent, and can be told to fail (scripted HTTP codes, or "die" after N replies).
Rules for the policy rubric: a response containing "sorry" -> 1, "here is"/"here's" -> 5,
else 3; "BROKENJSON" -> a 200 reply whose body is not JSON; "NOSCORE" -> a
well-formed completion without a score. Helpfulness rubric: 4/4/3/5, but
relevance 1 for a response containing "OFFTOPIC". A scripted 429 carries
`Retry-After: retry_after`. Shared by the eval, curation and core tests.

/v1/completions (built with `model_dir`, a checkpoint such as tests/tiny.py's)
replies with a fixed text that spells out the request's settings,
"T=<temperature> P=<top_p> S=<seed> | <the prompt's last 24 characters, special
tokens dropped>", cut
to max_tokens tokens of the model's tokenizer (finish_reason "length" if cut,
else "stop"). Prompt logprobs are real: that model's float32 forward over the
prompt, as vLLM's `prompt_logprobs` or as `echo=true` + `logprobs`; `routes`
says which it honours (an unhonoured prompt_logprobs is a 400, like a strict
server; an unhonoured echo is ignored). GET /v1/models lists the model.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@pytest.fixture
def server():
    """A started FakeOpenAI, stopped after the test (import it into a test module to use it)."""
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


class FakeOpenAI:
    """Start with `start()`; `url` is the base URL (.../v1)."""

    def __init__(self, delay_s: float = 0.0, model_dir: str | None = None):
        self.fail_codes: list[int] = []      # answered, in order, to the next requests
        self.die_after: int | None = None    # after this many good replies, answer 503 forever
        self.delay_s = delay_s
        self.retry_after = "0"               # the Retry-After header of a scripted 429
        self.script: list[str] = []          # reply texts, in order, before the rules apply
        self.good = 0
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.arrivals: list[float] = []
        self.statuses: list[int] = []
        self.inflight = self.max_inflight = 0
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.model_dir = model_dir
        self.routes = {"prompt_logprobs", "echo"}  # prompt-logprob fields /v1/completions honours
        self._lm = None
        self._lm_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> "FakeOpenAI":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                fake.handle(self)

            def do_GET(self):  # noqa: N802
                if self.path != "/v1/models":
                    return fake._send(self, 404, b'{"error": "not found"}')
                fake._send(self, 200, json.dumps({"object": "list", "data": [{"id": "fake", "object": "model"}]})
                           .encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        body = json.loads(req.rfile.read(int(req.headers["Content-Length"])))
        with self.lock:
            self.arrivals.append(time.monotonic())
            self.bodies.append(body)
            self.headers.append(dict(req.headers))
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            code = self.fail_codes.pop(0) if self.fail_codes else None
            if code is None and self.die_after is not None and self.good >= self.die_after:
                code = 503
            if code is None:
                self.good += 1
            self.statuses.append(code or 200)
        time.sleep(self.delay_s)
        with self.lock:
            self.inflight -= 1
        if req.path not in ("/v1/chat/completions", "/v1/completions"):
            return self._send(req, 404, b'{"error": "not found"}')
        if code:
            headers = {"Retry-After": self.retry_after} if code == 429 else {}
            return self._send(req, code, b'{"error": {"message": "scripted failure"}}', headers)
        if req.path == "/v1/completions":
            if "prompt_logprobs" in body and "prompt_logprobs" not in self.routes:
                return self._send(req, 400, b'{"error": {"message": "unknown field: prompt_logprobs"}}')
            return self._send(req, 200, json.dumps(self._text_completion(body)).encode())
        user = body["messages"][-1]["content"]
        if "BROKENJSON" in user:
            return self._send(req, 200, b"<html>upstream proxy error</html>")
        with self.lock:
            content = self.script.pop(0) if self.script else _reply(user)
        self._send(req, 200, json.dumps(_completion(body["model"], content)).encode())

    def _text_completion(self, body: dict) -> dict:
        import torch

        model, tok = self._model()
        prompt = body["prompt"]
        ids = list(prompt) if isinstance(prompt, list) else tok(prompt, add_special_tokens=False)["input_ids"]
        tail = tok.decode(ids, skip_special_tokens=True).strip()[-24:]
        reply = f"T={body.get('temperature')} P={body.get('top_p')} S={body.get('seed')} | {tail}"
        new = tok(reply, add_special_tokens=False)["input_ids"]
        cut = new[:body.get("max_tokens", 16)]
        choice = {"index": 0, "text": tok.decode(cut), "finish_reason": "length" if len(cut) < len(new) else "stop",
                  "logprobs": None}
        with self._lm_lock, torch.inference_mode():
            logits = model(torch.tensor([ids])).logits[0].float()
        lps = torch.log_softmax(logits, dim=-1)
        scored = [None] + [lps[t - 1, ids[t]].item() for t in range(1, len(ids))]
        if "prompt_logprobs" in body:
            choice["prompt_logprobs"] = [None] + [{str(ids[t]): {"logprob": scored[t], "rank": 1}}
                                                  for t in range(1, len(ids))]
        if body.get("echo") and "echo" in self.routes and body.get("logprobs") is not None:
            nxt = int(lps[-1].argmax())  # echo lists the prompt's tokens, then the new one
            choice["logprobs"] = {"tokens": [tok.decode([i]) for i in ids + [nxt]],
                                  "token_logprobs": scored + [lps[-1, nxt].item()], "top_logprobs": None}
        return {"id": "cmpl-fake", "object": "text_completion", "model": body["model"], "choices": [choice],
                "usage": {"prompt_tokens": len(ids), "completion_tokens": len(cut),
                          "total_tokens": len(ids) + len(cut)}}

    def _model(self):
        with self._lm_lock:
            if self._lm is None:
                from transformers import AutoModelForCausalLM, AutoTokenizer

                if self.model_dir is None:
                    raise RuntimeError("FakeOpenAI: /v1/completions needs model_dir")
                self._lm = (AutoModelForCausalLM.from_pretrained(self.model_dir, dtype="float32").eval(),
                            AutoTokenizer.from_pretrained(self.model_dir))
            return self._lm

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, code: int, payload: bytes, headers: dict | None = None) -> None:
        req.send_response(code)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            req.send_header(k, v)
        req.end_headers()
        req.wfile.write(payload)


def _reply(user: str) -> str:
    if user.startswith("Rate the AI assistant's response"):
        response = user.split("[RESPONSE]", 1)[-1].split("Answer in exactly", 1)[0]
        relevance = 1 if "OFFTOPIC" in response else 4
        return f"#reason: fine\n#relevance: {relevance}\n#clarity: 4\n#comprehensiveness: 3\n#usefulness: 5"
    response = user.split("[RESPONSE]", 1)[-1].split("Rate the response", 1)[0].lower()
    if "noscore" in response:
        return "The response looks fine to me."
    score = 1 if "sorry" in response else 5 if ("here is" in response or "here's" in response) else 3
    return f"#reason: rule-based fake judge\n#score: {score}"


def _completion(model: str, content: str) -> dict:
    return {"id": "chatcmpl-fake", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
