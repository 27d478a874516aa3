"""Sampling and streaming generation."""

from __future__ import annotations

import secrets
from typing import Iterator, Optional, Sequence

from . import _ternlm
from .errors import InvalidArgumentError
from .model import Context, Model


class Sampler:
    """Picks the next token from a context's logits.

    ``temperature <= 0`` is greedy. The same ``seed`` and logits always give
    the same tokens; ``seed=None`` draws a fresh one.
    """

    def __init__(
        self,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        repeat_last_n: int = 64,
        seed: Optional[int] = None,
    ) -> None:
        if seed is None:
            seed = secrets.randbits(64)
        if not 0 <= seed < 2**64:
            raise InvalidArgumentError("seed must be in [0, 2**64)")
        self.seed = seed
        self._native = _ternlm.Sampler(temperature, top_k, top_p, min_p, repeat_penalty, repeat_last_n, seed)

    def sample(self, ctx: Context) -> int:
        return self._native.sample(ctx._native)

    def accept(self, token: int) -> None:
        """Records a token (e.g. of the prompt) for the repetition penalty."""
        self._native.accept(int(token))

    def reset(self) -> None:
        self._native.reset()


class Generation:
    """An iterator over the text pieces of a continuation.

    Each item is a ``str`` that never splits a UTF-8 character. Generation ends
    at an end-of-generation token, after ``max_tokens`` tokens, when the text
    reaches one of the ``stop`` strings (which is not yielded), or when the
    context is full. Afterwards ``finish_reason`` is "eog", "length", "stop" or
    "context", and ``tokens`` holds the generated ids.
    """

    def __init__(
        self,
        model: Model,
        prompt: str | Sequence[int],
        max_tokens: int = 128,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        seed: Optional[int] = None,
        stop: Optional[Sequence[str]] = None,
        n_ctx: Optional[int] = None,
        context: Optional[Context] = None,
    ) -> None:
        if max_tokens < 0:
            raise InvalidArgumentError("max_tokens must not be negative")
        self.model = model
        ids = model.tokenize(prompt) if isinstance(prompt, str) else [int(t) for t in prompt]
        if not ids:
            raise InvalidArgumentError("the prompt has no tokens")
        self.prompt_tokens = ids
        self.tokens: list[int] = []
        self.finish_reason: Optional[str] = None
        self._stop = [s for s in (stop or []) if s]
        self._max_tokens = max_tokens
        if context is None:
            n_ctx = n_ctx or min(len(ids) + max_tokens, model.n_ctx_train or 2048)
            context = model.create_context(n_ctx=max(n_ctx, len(ids)))
            self._owns_context = True
        else:
            self._owns_context = False
        self.context = context
        self._sampler = Sampler(temperature, top_k, top_p, min_p, repeat_penalty, seed=seed)
        self._detok = _ternlm.Detokenizer(model._native)
        self._pending = ""  # text held back because it may start a stop string
        self._started = False

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        while self.finish_reason is None:
            piece = self._step()
            if piece:
                return piece
        if self._pending:
            piece, self._pending = self._pending, ""
            return piece
        self.close()
        raise StopIteration

    def text(self) -> str:
        """Runs to the end and returns the whole continuation."""
        return "".join(self)

    def close(self) -> None:
        if self._owns_context:
            self.context.close()

    # One token: returns the text it makes safe to emit ("" if none).
    def _step(self) -> str:
        if not self._started:
            self._started = True
            for t in self.prompt_tokens:
                self._sampler.accept(t)
            if self.context.n_past + len(self.prompt_tokens) > self.context.n_ctx:
                return self._finish("context")
            self.context.prefill(self.prompt_tokens)
        if len(self.tokens) >= self._max_tokens:
            return self._finish("length")
        token = self._sampler.sample(self.context)
        if self.model.is_eog(token):
            return self._finish("eog")
        self.tokens.append(token)
        out = self._emit(self._detok.push(token))
        if self.finish_reason is None:
            if self.context.n_past >= self.context.n_ctx:
                return out + self._finish("context")
            if len(self.tokens) < self._max_tokens:
                self.context.step(token)
        return out

    def _finish(self, reason: str) -> str:
        self.finish_reason = reason
        return self._emit(self._detok.flush())

    # Appends text; returns what can be emitted without cutting a stop string.
    def _emit(self, text: str) -> str:
        if self.finish_reason == "stop":
            return ""
        buf = self._pending + text
        for s in self._stop:
            i = buf.find(s)
            if i >= 0:
                self.finish_reason = "stop"
                self._pending = ""
                return buf[:i]
        hold = max((k for s in self._stop for k in range(1, len(s)) if buf.endswith(s[:k])), default=0)
        self._pending = buf[len(buf) - hold:] if hold else ""
        return buf[: len(buf) - hold]
