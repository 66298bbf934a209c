"""The OpenAI request and response shapes both servers speak (``/v1/completions``,
``/v1/chat/completions``, streaming as server-sent events), and their errors.

Requests are validated by pydantic; unknown fields are kept (clients send many), the ones that
matter are typed. Prompt length in tokens: a prompt of token ids (``[1, 2, 3]``, what ``vllm
bench serve --dataset-name random`` and driftsched's own clients send) counts exactly; text is
counted as **UTF-8 bytes / 4** (rounded up) — a simulated engine has no tokenizer, and this
rule of thumb is within ~20% of BPE tokenizers on English — and a chat adds 4 tokens per
message for its template. The count used is returned in ``usage``.

Output: a simulated engine generates exactly ``max_tokens`` tokens (default 16, as OpenAI's
completions), the text ``" x"`` per token, ``finish_reason`` ``"length"``.
"""

from __future__ import annotations

import json
import math
import time
import uuid

from pydantic import BaseModel, ConfigDict, Field, ValidationError

#: the text of one generated token
TOKEN_TEXT = " x"
#: tokens a chat template adds per message
CHAT_TOKENS_PER_MESSAGE = 4
DEFAULT_MAX_TOKENS = 16


class APIError(Exception):
    """An error answered as OpenAI does: ``{"error": {"message", "type", "code"}}`` with an
    HTTP status (400 bad input, 401 key, 413 too large, 429 limit, 503 rejected or down)."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", **headers):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind
        self.headers = {k.replace("_", "-"): str(v) for k, v in headers.items()}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "code": self.status}}


def text_tokens(text: str) -> int:
    """Tokens of ``text`` by the bytes/4 rule (module docstring); 0 for empty text."""
    return math.ceil(len(text.encode("utf-8")) / 4)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class _Request(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    ignore_eos: bool = False
    n: int = Field(1, ge=1, le=1, description="one completion per request")
    user: str | None = None

    @property
    def output_tokens(self) -> int:
        return self.max_tokens or DEFAULT_MAX_TOKENS

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class CompletionRequest(_Request):
    prompt: str | list[int] | list[str] | list[list[int]]

    @property
    def prompt_tokens(self) -> int:
        p = self.prompt
        if isinstance(p, list) and p and not isinstance(p[0], int):
            if len(p) != 1:
                raise APIError(400, "one prompt per request (got a batch of prompts)")
            p = p[0]
        return text_tokens(p) if isinstance(p, str) else len(p)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict] | None = None

    def text(self) -> str:
        c = self.content
        if c is None or isinstance(c, str):
            return c or ""
        return "".join(str(part.get("text", "")) for part in c if isinstance(part, dict))


class ChatRequest(_Request):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)

    @property
    def output_tokens(self) -> int:
        return self.max_completion_tokens or self.max_tokens or DEFAULT_MAX_TOKENS

    @property
    def prompt_tokens(self) -> int:
        return sum(text_tokens(m.text()) + CHAT_TOKENS_PER_MESSAGE for m in self.messages)


def parse(kind: type[_Request], raw: bytes) -> tuple[_Request, dict]:
    """The request in ``raw`` (a JSON body) and the decoded body itself (what a gateway
    forwards), or :class:`APIError` 400 naming what is wrong."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise APIError(400, f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise APIError(400, "the body must be a JSON object")
    try:
        return kind.model_validate(data), data
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise APIError(400, f"{where}: {first['msg']}") from None


class Reply:
    """Builds one request's response objects, streamed or whole (``chat``: the chat shapes)."""

    def __init__(self, model: str, chat: bool, prompt_tokens: int):
        self.model, self.chat, self.prompt_tokens = model, chat, prompt_tokens
        self.id = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        self.created = int(time.time())
        self.object = "chat.completion" if chat else "text_completion"

    def usage(self, tokens: int) -> dict:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": tokens,
            "total_tokens": self.prompt_tokens + tokens,
        }

    def _head(self, chunk: bool) -> dict:
        obj = self.object + (".chunk" if chunk and self.chat else "")
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model}

    def whole(self, tokens: int, finish_reason: str) -> dict:
        text = TOKEN_TEXT * tokens
        if self.chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text}}
        else:
            choice = {"index": 0, "text": text, "logprobs": None}
        choice["finish_reason"] = finish_reason
        return {**self._head(False), "choices": [choice], "usage": self.usage(tokens)}

    def chunk(self, new_tokens: int, finish_reason: str | None = None, first=False) -> dict:
        text = TOKEN_TEXT * new_tokens
        if self.chat:
            delta = {"role": "assistant", "content": text} if first else {"content": text}
            choice = {"index": 0, "delta": delta}
        else:
            choice = {"index": 0, "text": text, "logprobs": None}
        choice["finish_reason"] = finish_reason
        return {**self._head(True), "choices": [choice]}

    def usage_chunk(self, tokens: int) -> dict:
        return {**self._head(True), "choices": [], "usage": self.usage(tokens)}


def sse(obj: dict | str) -> bytes:
    """One server-sent event: ``data: <json>`` (or a literal such as ``[DONE]``)."""
    data = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


DONE = sse("[DONE]")
