"""RemoteGenerator against a scripted OpenAI-compatible server (httpx.MockTransport): no model, no sockets."""

from __future__ import annotations

import json

import httpx
import pytest

from rag.errors import ModelError
from rag.generation_remote import RemoteGenerator
from rag.settings import Settings

URL = "http://gen.test:8080"
GRAMMAR = 'root ::= "[1] " "yes"'
MESSAGES = [{"role": "user", "content": "Is it?"}]


def sse(*chunks, done: bool = True) -> bytes:
    lines = [f"data: {json.dumps(c)}\n\n" for c in chunks]
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def chunk(content=None, finish=None, logprobs=None) -> dict:
    delta = {} if content is None else {"content": content}
    return {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}],
    }


def token_logprob(token: str, logprob: float) -> dict:
    return {"content": [{"token": token, "logprob": logprob, "bytes": None, "top_logprobs": []}]}


ANSWER = sse(
    {"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]},
    chunk("[1] ", logprobs=token_logprob("[1] ", -0.01)),
    chunk("yes", logprobs=token_logprob("yes", -0.5)),
    chunk(finish="stop"),
)


class Server:
    """A scripted server: `/v1/models` lists one model; chat completions answer from `replies` in order."""

    def __init__(self, *replies, tokenize=None):
        self.replies = list(replies)
        self.tokenize = tokenize  # (path, field) it serves, or None
        self.bodies: list[dict] = []
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/v1/models":
            return httpx.Response(200, json={"object": "list", "data": [{"id": "/models/tiny.gguf"}]})
        if path == "/v1/chat/completions":
            self.bodies.append(json.loads(request.content))
            reply = self.replies.pop(0)
            if isinstance(reply, Exception):
                raise reply
            return reply
        if self.tokenize and path == self.tokenize[0]:
            body = json.loads(request.content)
            if self.tokenize[1] not in body:
                return httpx.Response(400, json={"error": {"message": f"missing {self.tokenize[1]}"}})
            return httpx.Response(200, json={"tokens": list(range(len(body[self.tokenize[1]].split())))})
        return httpx.Response(404, json={"detail": "Not Found"})


def ok(body: bytes = ANSWER) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})


def make(server: Server, sleeps: list | None = None, **settings) -> RemoteGenerator:
    s = Settings(llm_url=URL, **settings)
    return RemoteGenerator(
        s, transport=httpx.MockTransport(server), sleep=(sleeps if sleeps is not None else []).append
    )


def test_stream_is_parsed_into_pieces_and_logprobs_kept():
    server = Server(ok())
    gen = make(server)
    assert list(gen.generate(MESSAGES, GRAMMAR, 8)) == ["[1] ", "yes"]
    assert [t["logprob"] for t in gen.last_logprobs] == [-0.01, -0.5]
    assert gen.model_name == "tiny.gguf" and gen.backend == f"remote {URL}"


def test_request_carries_messages_grammar_and_logprobs():
    server = Server(ok(), ok(), ok())
    list(make(server, temperature=0.0, seed=7).generate(MESSAGES, GRAMMAR, 8))
    body = server.bodies[0]
    assert body["messages"] == MESSAGES and body["grammar"] == GRAMMAR and body["stream"] is True
    assert body["max_tokens"] == 8 and body["temperature"] == 0.0 and body["seed"] == 7
    assert body["logprobs"] is True and body["model"] == "/models/tiny.gguf"
    list(make(server, llm_grammar_field="structured_outputs", llm_model="m").generate(MESSAGES, GRAMMAR, 8))
    assert server.bodies[1]["structured_outputs"] == {"grammar": GRAMMAR} and "grammar" not in server.bodies[1]
    assert server.bodies[1]["model"] == "m"
    list(make(server, llm_grammar_field="off").generate(MESSAGES, GRAMMAR, 8))
    assert not {"grammar", "structured_outputs", "guided_grammar"} & set(server.bodies[2])


def test_api_key_is_sent_as_bearer_and_v1_suffix_is_accepted():
    server = Server(ok())
    gen = RemoteGenerator(Settings(llm_url=URL + "/v1/", llm_api_key="s3cret"), transport=httpx.MockTransport(server))
    list(gen.generate(MESSAGES, None, 8))
    chat = [r for r in server.requests if r.url.path == "/v1/chat/completions"][0]
    assert chat.headers["authorization"] == "Bearer s3cret" and str(chat.url) == URL + "/v1/chat/completions"


def test_no_logprobs_from_the_server_is_fine():
    server = Server(ok(sse(chunk("[1] yes"), chunk(finish="stop"))))
    gen = make(server)
    assert "".join(gen.generate(MESSAGES, GRAMMAR, 8)) == "[1] yes" and gen.last_logprobs is None


def test_server_refusing_logprobs_is_asked_again_without_for_good():
    refused = httpx.Response(
        500, json={"error": {"message": "logprobs is not supported for models created with logits_all=False"}}
    )
    server = Server(refused, ok(), ok())
    sleeps: list = []
    gen = make(server, sleeps)
    assert "".join(gen.generate(MESSAGES, GRAMMAR, 8)) == "[1] yes"
    assert "logprobs" in server.bodies[0] and "logprobs" not in server.bodies[1] and sleeps == []
    list(gen.generate(MESSAGES, GRAMMAR, 8))
    assert "logprobs" not in server.bodies[2]


def test_empty_stream_is_retried_once_without_logprobs_then_an_error():
    server = Server(ok(b""), ok(b""))
    with pytest.raises(ModelError, match="ended the answer before it was finished") as exc:
        list(make(server).generate(MESSAGES, GRAMMAR, 8))
    assert "logprobs" in server.bodies[0] and "logprobs" not in server.bodies[1]
    assert "interrupt_requests" in exc.value.hint


def test_stream_cut_short_without_finish_reason_is_an_error():
    """llama-cpp-python's server ends an interrupted stream with [DONE] but no finish_reason."""
    server = Server(ok(sse(chunk("[1] "))))
    gen = make(server)
    pieces = []
    with pytest.raises(ModelError, match="before it was finished"):
        for piece in gen.generate(MESSAGES, GRAMMAR, 8):
            pieces.append(piece)
    assert pieces == ["[1] "]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retried_with_backoff(status):
    server = Server(httpx.Response(status, text="busy"), httpx.Response(status, text="busy"), ok())
    sleeps: list = []
    assert "".join(make(server, sleeps, llm_retries=2).generate(MESSAGES, GRAMMAR, 8)) == "[1] yes"
    assert sleeps == [0.5, 1.0] and len(server.bodies) == 3


def test_retry_after_is_honoured_within_the_cap():
    server = Server(
        httpx.Response(503, headers={"retry-after": "3"}), httpx.Response(503, headers={"retry-after": "600"}), ok()
    )
    sleeps: list = []
    list(make(server, sleeps).generate(MESSAGES, GRAMMAR, 8))
    assert sleeps == [3.0, 8.0]


def test_retries_are_bounded_and_the_last_error_is_reported():
    server = Server(*[httpx.Response(500, json={"error": {"message": "out of memory"}})] * 3)
    sleeps: list = []
    with pytest.raises(ModelError, match=r"failed \(500: out of memory\)") as exc:
        list(make(server, sleeps, llm_retries=2).generate(MESSAGES, GRAMMAR, 8))
    assert len(server.bodies) == 3 and sleeps == [0.5, 1.0] and exc.value.status == 503


def test_connection_errors_are_retried_then_say_the_server_is_unreachable():
    down = httpx.ConnectError("Connection refused")
    server = Server(down, down, ok())
    sleeps: list = []
    assert "".join(make(server, sleeps).generate(MESSAGES, GRAMMAR, 8)) == "[1] yes" and sleeps == [0.5, 1.0]
    server = Server(down, down, down)
    with pytest.raises(ModelError, match=f"cannot reach RAG_LLM_URL={URL}") as exc:
        list(make(server, llm_retries=2).generate(MESSAGES, GRAMMAR, 8))
    assert len(server.bodies) == 3 and "unset RAG_LLM_URL" in exc.value.hint


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_4xx_is_not_retried(status):
    server = Server(httpx.Response(status, json={"error": {"message": "bad model name"}}), ok())
    sleeps: list = []
    with pytest.raises(ModelError, match=str(status)) as exc:
        list(make(server, sleeps).generate(MESSAGES, GRAMMAR, 8))
    assert len(server.bodies) == 1 and sleeps == [] and exc.value.status == 502


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(
            400, json={"error": {"code": 400, "message": "Failed to parse grammar", "type": "invalid_request_error"}}
        ),
        httpx.Response(400, json={"error": {"message": "Unrecognized request argument supplied: grammar"}}),
        httpx.Response(
            422, json={"detail": [{"loc": ["body", "structured_outputs"], "msg": "extra fields not permitted"}]}
        ),
    ],
)
def test_grammar_rejected_says_the_server_does_not_take_gbnf(reply):
    server = Server(reply, ok())
    with pytest.raises(ModelError, match="does not accept GBNF grammars") as exc:
        list(make(server).generate(MESSAGES, GRAMMAR, 8))
    assert len(server.bodies) == 1 and "RAG_LLM_GRAMMAR_FIELD" in exc.value.hint


def test_read_timeout_is_a_clear_error_and_not_retried():
    server = Server(httpx.ReadTimeout("timed out"), ok())
    sleeps: list = []
    with pytest.raises(ModelError, match=r"did not answer within 7 s") as exc:
        list(make(server, sleeps, llm_timeout_s=7).generate(MESSAGES, GRAMMAR, 8))
    assert len(server.bodies) == 1 and sleeps == [] and exc.value.status == 504


def test_timeout_mid_stream_is_a_clear_error():
    class Stalls(httpx.SyncByteStream):
        def __iter__(self):
            yield sse(chunk("[1] "), done=False)
            raise httpx.ReadTimeout("timed out")

    server = Server(httpx.Response(200, stream=Stalls()))
    with pytest.raises(ModelError, match="did not answer within 60 s"):
        list(make(server).generate(MESSAGES, GRAMMAR, 8))


def test_error_event_in_the_stream_is_reported():
    server = Server(ok(sse({"error": {"message": "slot unavailable"}})))
    with pytest.raises(ModelError, match="failed mid-answer: slot unavailable"):
        list(make(server).generate(MESSAGES, GRAMMAR, 8))


@pytest.mark.parametrize("route", [("/extras/tokenize", "input"), ("/tokenize", "content"), ("/tokenize", "prompt")])
def test_count_tokens_uses_the_servers_tokenizer_and_caches(route):
    server = Server(tokenize=route)
    gen = make(server)
    assert gen.count_tokens("one two three four") == 4
    assert gen.count_tokens("one two three four") == 4
    calls = [r for r in server.requests if r.url.path == route[0] and route[1] in json.loads(r.content)]
    assert len(calls) == 2  # the probe, then the one real count; the repeat came from the cache


def test_count_tokens_estimates_without_a_tokenizer():
    gen = make(Server())
    assert gen.count_tokens("x" * 10) == 4 and gen.count_tokens("") == 0


def test_is_small_unless_told_otherwise():
    assert make(Server()).is_small
    assert make(Server(), llm_params=135_000_000).is_small
    assert not make(Server(), llm_params=8_000_000_000).is_small


def test_server_down_at_start_is_not_fatal_and_health_says_unreachable():
    def down(request):
        raise httpx.ConnectError("Connection refused")

    gen = RemoteGenerator(Settings(llm_url=URL), transport=httpx.MockTransport(down))
    assert gen.model_name == "remote" and gen.reachable() is False
    assert make(Server()).reachable() is True


def test_load_generator_picks_the_remote_one_when_the_url_is_set(monkeypatch):
    from rag import generation_remote
    from rag.pipeline import load_generator

    built = []
    monkeypatch.setattr(generation_remote.RemoteGenerator, "__init__", lambda self, s: built.append(s.llm_url))
    assert isinstance(load_generator(Settings(llm_url=URL)), generation_remote.RemoteGenerator) and built == [URL]


def test_eval_config_names_the_server_when_the_weights_are_remote(tmp_path):
    from types import SimpleNamespace

    from rag_eval import evaluate, report

    gen = make(Server())
    pipeline = SimpleNamespace(
        settings=Settings(),
        generator=gen,
        embedder=SimpleNamespace(id="e@1"),
        answerer=SimpleNamespace(mode="extractive"),
    )
    (tmp_path / "q.jsonl").write_text("{}\n")
    config = evaluate.run_config(pipeline, 3, tmp_path / "q.jsonl", 1)
    assert (config["model"], config["model_path"], config["model_sha256"]) == ("tiny.gguf", f"remote {URL}", None)
    assert report.model_id(config) == f"served by `remote {URL}`"
