"""Generation on another process or machine: any OpenAI-compatible server, chosen by RAG_LLM_URL.

Why: one llama.cpp context answers one question at a time, and every `rag serve` process loads its own.
With the model behind one generation server (llama-server with parallel slots, llama-cpp-python's
server, vLLM), several `rag serve` replicas share it and the replicas only retrieve and check.

What stays the same: the pipeline builds the same messages and the same GBNF grammar; they are sent
to `/v1/chat/completions` (streamed) with the grammar in the field the server understands
(RAG_LLM_GRAMMAR_FIELD). A server that ignores the grammar can write anything, but the pipeline's
span parser and citation check refuse output that is not a span of a retrieved passage, so nothing
ungrounded passes — such a server only refuses more often.

Decisions:
- Retries (RAG_LLM_RETRIES, backoff 0.5 s doubling to 8 s, or the server's Retry-After) only before
  the first byte of an answer and only for connection errors and 5xx: a 4xx will fail the same way
  again, and text already streamed to the user cannot be taken back.
- An answer must end with a `finish_reason`: llama-cpp-python's server (default
  `--interrupt_requests true`) ends a stream early with `[DONE]` when another request arrives, and
  that cut-off must be an error rather than a silently shorter span.
- Token log-probabilities are asked for (`logprobs`, `top_logprobs=1`) and kept in `last_logprobs`
  when the server sends them; a server that refuses them is asked again without, once for good.
- `count_tokens` asks the server's tokenizer (`/extras/tokenize` on llama-cpp-python's server,
  `/tokenize` with `content` on llama-server, with `prompt` on vLLM — the last not tried here), so
  prompts are trimmed exactly as in-process (the slow test checks the counts are equal); servers
  without one get a conservative estimate of one token per three characters (English runs at about
  four per token, so prompts stay within the budget). Counts are cached: the system prompt and
  examples are counted for every question. One count took 1.4-1.8 ms against a local server.
- `is_small` comes from RAG_LLM_PARAMS; unknown counts as small, so RAG_MODE=auto answers
  extractively — the safe mode, where the model can only copy a span.

Measured (2-core machine shared with other jobs, load average about 8, so only rough): the same 12
extractive generations (3 questions x 4, interleaved), SmolLM2-135M, one thread each side —
in-process median 3.2 s (fastest 0.90 s) against llama-cpp-python's server median 2.4 s (fastest
1.26 s). The HTTP hop is lost in that noise; what the server does cost is its default
`--logits_all true` (needed for logprobs: logits over the whole vocabulary for every prompt token):
with `--logits_all false` the fastest was 0.54 s against 0.69 s in-process, and the generator then
goes on without logprobs.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import httpx

from rag.errors import ModelError
from rag.generation import SMALL_MODEL_PARAMS

if TYPE_CHECKING:
    from rag.settings import GenerationSettings

log = logging.getLogger(__name__)

BACKOFF_S = 0.5
BACKOFF_MAX_S = 8.0
CONNECT_TIMEOUT_S = 5.0
PROBE_TIMEOUT_S = 2.0
CHARS_PER_TOKEN = 3  # the estimate when the server has no tokenizer endpoint
# (path, text field) of the tokenizer endpoints: llama-cpp-python's server, llama-server, vLLM
TOKENIZE_ROUTES = (("/extras/tokenize", "input"), ("/tokenize", "content"), ("/tokenize", "prompt"))
_TOKEN_CACHE_SIZE = 512


def base_url(url: str) -> str:
    """`http://host:8080`, `http://host:8080/` and `http://host:8080/v1` all mean the same server."""
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _detail(response: httpx.Response) -> str:
    """The server's own error message: OpenAI `{"error": {"message"}}`, FastAPI `{"detail"}`, or the text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body))
        if isinstance(error, dict):
            error = error.get("message", error)
        return str(error)[:300]
    return str(body)[:300]


class _Retry(Exception):
    """A failure worth another attempt; `error` is what the user gets when attempts run out."""

    def __init__(self, error: ModelError, wait_s: float | None = None):
        self.error = error
        self.wait_s = wait_s


class _WithoutLogprobs(Exception):
    """The server refused the request because of `logprobs`: they are optional, so ask again without."""


class RemoteGenerator:
    """The `Generator` protocol over HTTP. Thread-safe: every call is its own request (the server queues).
    `settings`: the generation settings; `transport` and `sleep` are for tests."""

    def __init__(
        self,
        settings: GenerationSettings,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not settings.llm_url:
            raise ModelError("RemoteGenerator needs RAG_LLM_URL")
        self.url = base_url(settings.llm_url)
        self.backend = f"remote {self.url}"
        self.temperature = settings.temperature
        self.seed = settings.seed
        self.retries = settings.llm_retries
        self.timeout_s = settings.llm_timeout_s
        self.params = settings.llm_params
        self.grammar_field = settings.llm_grammar_field
        self.sleep = sleep
        headers = {"Authorization": f"Bearer {settings.llm_api_key}"} if settings.llm_api_key else {}
        self.client = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(self.timeout_s, connect=min(CONNECT_TIMEOUT_S, self.timeout_s)),
            transport=transport,
        )
        self.last_logprobs: list[dict] | None = None  # per generated token, from the last `generate` call
        self.ask_logprobs = True
        self.tokenize_route: tuple[str, str] | None = None
        self.tokenize_probed = False
        self.token_cache: dict[str, int] = {}
        self.served_model = settings.llm_model
        if self.served_model is None:
            self.served_model = self._first_model()

    # --- identity ------------------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        if self.served_model is None:  # the server was down at start: try again, cheaply
            self.served_model = self._first_model()
        if self.served_model is None:
            return "remote"
        return PurePosixPath(self.served_model).name  # llama-cpp-python names models by their file path

    @property
    def is_small(self) -> bool:
        return self.params is None or self.params < SMALL_MODEL_PARAMS

    def _first_model(self) -> str | None:
        try:
            r = self.client.get("/v1/models", timeout=PROBE_TIMEOUT_S)
            r.raise_for_status()
            data = r.json().get("data") or []
            return str(data[0]["id"]) if data else None
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("could not list the models of RAG_LLM_URL=%s: %s", self.url, exc)
            return None

    def reachable(self) -> bool:
        """For /health: does the server answer `/v1/models` within 2 s?"""
        try:
            return self.client.get("/v1/models", timeout=PROBE_TIMEOUT_S).status_code < 500
        except httpx.HTTPError:
            return False

    # --- tokens ------------------------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        cached = self.token_cache.get(text)
        if cached is not None:
            return cached
        count = self._server_count(text)
        if count is None:
            count = math.ceil(len(text) / CHARS_PER_TOKEN)
        if len(self.token_cache) >= _TOKEN_CACHE_SIZE:
            self.token_cache.clear()
        self.token_cache[text] = count
        return count

    def _tokenize(self, route: tuple[str, str], text: str) -> int | None:
        path, field = route
        try:
            r = self.client.post(path, json={field: text}, timeout=min(self.timeout_s, 10.0))
        except httpx.HTTPError:
            return None
        if r.status_code != 200:
            return None
        try:
            tokens = r.json()["tokens"]
        except (ValueError, KeyError, TypeError):
            return None
        return len(tokens) if isinstance(tokens, list) else None

    def _server_count(self, text: str) -> int | None:
        if not self.tokenize_probed:
            self.tokenize_probed = True
            for route in TOKENIZE_ROUTES:
                if self._tokenize(route, "hello world"):  # a route that ignores the field would count 0
                    self.tokenize_route = route
                    break
            else:
                log.info(
                    "RAG_LLM_URL=%s has no tokenizer endpoint: estimating %d characters per token",
                    self.url,
                    CHARS_PER_TOKEN,
                )
        return self._tokenize(self.tokenize_route, text) if self.tokenize_route else None

    # --- generation -----------------------------------------------------------------------------------
    def request_body(self, messages: list[dict], grammar: str | None, max_tokens: int) -> dict:
        body: dict = {
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": self.temperature,
            "seed": self.seed,
            "stream": True,
        }
        if self.served_model is not None:
            body["model"] = self.served_model
        if self.ask_logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = 1
        if grammar is not None and self.grammar_field != "off":
            if self.grammar_field == "structured_outputs":
                body["structured_outputs"] = {"grammar": grammar}
            else:
                body[self.grammar_field] = grammar
        return body

    def generate(self, messages: list[dict], grammar: str | None, max_tokens: int) -> Iterator[str]:
        self.last_logprobs = None
        while True:
            body = self.request_body(messages, grammar, max_tokens)
            logprobs: list[dict] = []
            received = False
            finished = False
            try:
                response = self._open(body)
            except _WithoutLogprobs as exc:
                log.warning("%s; asking without", exc)
                self.ask_logprobs = False
                continue
            with closing(response):  # however the stream ends, including a consumer that stops early
                try:
                    for line in response.iter_lines():
                        if not line.startswith("data:"):
                            continue
                        data = line[5:].strip()
                        if data == "[DONE]":
                            break
                        received = True
                        choice = self._choice(data)
                        if choice is None:
                            continue
                        content = (choice.get("logprobs") or {}).get("content")
                        if content:
                            logprobs.extend(content)
                        if choice.get("finish_reason"):
                            finished = True
                        piece = (choice.get("delta") or {}).get("content")
                        if piece:
                            yield piece
                except httpx.TimeoutException as exc:
                    raise self._timeout() from exc
                except httpx.TransportError as exc:
                    raise ModelError(f"the connection to RAG_LLM_URL={self.url} broke mid-answer: {exc}") from exc
            if not received and "logprobs" in body:
                # llama-cpp-python's server started with --logits_all false fails inside the stream when asked
                # for log-probabilities, sending nothing; nothing was yielded yet, so ask once more without.
                log.warning("RAG_LLM_URL=%s sent an empty answer stream; asking again without logprobs", self.url)
                self.ask_logprobs = False
                continue
            break
        if not finished:
            raise ModelError(
                f"RAG_LLM_URL={self.url} ended the answer before it was finished (no finish_reason)",
                hint="llama-cpp-python's server cuts a stream short when another request arrives: start it with "
                "--interrupt_requests false; an empty stream can also be a grammar it failed on (see its log)",
            )
        self.last_logprobs = logprobs or None

    def _choice(self, data: str) -> dict | None:
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise ModelError(f"RAG_LLM_URL={self.url} sent a stream line that is not JSON: {data[:200]!r}") from exc
        if isinstance(chunk, dict) and chunk.get("error"):
            error = chunk["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise ModelError(f"RAG_LLM_URL={self.url} failed mid-answer: {message}")
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        return choices[0] if choices else None

    def _open(self, body: dict) -> httpx.Response:
        """An open 2xx streaming response, after up to `retries` more attempts with backoff."""
        attempt = 0
        while True:
            try:
                return self._send(body)
            except _Retry as retry:
                if attempt >= self.retries:
                    raise retry.error from None
                wait = min(BACKOFF_MAX_S, retry.wait_s if retry.wait_s is not None else BACKOFF_S * 2**attempt)
                attempt += 1
                log.warning("%s; retry %d/%d in %.1f s", retry.error.message, attempt, self.retries, wait)
                self.sleep(wait)

    def _send(self, body: dict) -> httpx.Response:
        request = self.client.build_request("POST", "/v1/chat/completions", json=body)
        try:
            response = self.client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
            raise _Retry(self._unreachable(exc)) from exc
        except httpx.TimeoutException as exc:
            raise self._timeout() from exc
        except httpx.TransportError as exc:
            raise _Retry(self._unreachable(exc)) from exc
        if response.status_code < 400:
            return response
        try:
            response.read()
        except httpx.HTTPError:
            pass
        finally:
            response.close()
        raise self._http_error(response, body)

    def _http_error(self, response: httpx.Response, body: dict) -> Exception:
        """Retry (5xx) or ModelError (4xx, and anything mentioning the grammar: sending it again cannot help)."""
        status, detail = response.status_code, _detail(response)
        where = f"RAG_LLM_URL={self.url}"
        lowered = detail.lower()
        if any(key in lowered for key in ("grammar", "structured_outputs")) and self._sent_grammar(body):
            return ModelError(
                f"the server at {where} does not accept GBNF grammars ({status}: {detail})",
                hint="use llama-server or llama-cpp-python's server, set RAG_LLM_GRAMMAR_FIELD=structured_outputs "
                "for vLLM, or RAG_LLM_GRAMMAR_FIELD=off to rely on the span check alone",
                status=502,
            )
        if "logprobs" in lowered and "logprobs" in body:
            return _WithoutLogprobs(f"{where} does not return logprobs ({status}: {detail})")
        if status >= 500:
            retry_after = response.headers.get("retry-after")
            wait = float(retry_after) if retry_after and retry_after.isdigit() else None
            return _Retry(ModelError(f"{where} failed ({status}: {detail})"), wait_s=wait)
        if status in (401, 403):
            return ModelError(
                f"{where} refused the request ({status}: {detail})",
                hint="set RAG_LLM_API_KEY to the server's API key",
                status=502,
            )
        if status == 404:
            return ModelError(
                f"{where} has no /v1/chat/completions (404: {detail})",
                hint="RAG_LLM_URL must be an OpenAI-compatible server's base URL",
                status=502,
            )
        return ModelError(f"{where} rejected the request ({status}: {detail})", status=502)

    def _sent_grammar(self, body: dict) -> bool:
        return any(key in body for key in ("grammar", "guided_grammar", "structured_outputs"))

    def _unreachable(self, exc: Exception) -> ModelError:
        return ModelError(
            f"cannot reach RAG_LLM_URL={self.url}: {exc or type(exc).__name__}",
            hint="start the generation server, or unset RAG_LLM_URL to run the model in-process",
        )

    def _timeout(self) -> ModelError:
        return ModelError(
            f"RAG_LLM_URL={self.url} did not answer within {self.timeout_s:g} s",
            hint="the server may be overloaded; raise RAG_LLM_TIMEOUT_S or add generation capacity",
            status=504,
        )

    def close(self) -> None:
        self.client.close()
