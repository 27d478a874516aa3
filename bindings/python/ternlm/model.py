"""Model and Context: the Python face of tern_model and tern_context."""

from __future__ import annotations

import os
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import numpy.typing as npt

from . import _ternlm
from .errors import InvalidArgumentError

_BACKENDS = {"auto": 0, "cpu": 1, "vulkan": 2}
_BACKEND_NAMES = {v: k for k, v in _BACKENDS.items()}

Logits = npt.NDArray[np.float32]


def _backend_id(backend: str) -> int:
    try:
        return _BACKENDS[backend]
    except KeyError:
        raise InvalidArgumentError(f"backend must be one of {sorted(_BACKENDS)}, not {backend!r}") from None


def _token_list(ids: Iterable[int]) -> list[int]:
    # Accepts lists, tuples and numpy integer arrays alike.
    return [int(t) for t in ids]


class Model:
    """A GGUF model, memory-mapped and validated.

    >>> with ternlm.Model("stories260K.gguf") as m:
    ...     print("".join(m.generate("Once upon a time", max_tokens=16, temperature=0)))

    ``progress`` is called with a fraction in [0, 1] while loading; returning
    ``False`` cancels the load (raising :class:`ternlm.CancelledError`).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        backend: str = "auto",
        n_threads: Optional[int] = None,
        n_gpu_layers: int = -1,
        device_index: int = -1,
        progress: Optional[Callable[[float], Optional[bool]]] = None,
    ) -> None:
        self._path = os.fspath(path)
        self._native = _ternlm.Model(
            self._path, _backend_id(backend), n_threads or 0, n_gpu_layers, device_index, progress
        )
        self._metadata: Optional[dict[str, str]] = None

    # -- lifetime ---------------------------------------------------------------
    def close(self) -> None:
        """Releases the model. Contexts made from it stay usable until closed."""
        self._native.close()

    @property
    def closed(self) -> bool:
        return self._native.closed

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return f"<ternlm.Model {self._path!r} (closed)>"
        return (f"<ternlm.Model {self._path!r} n_vocab={self.n_vocab} n_layer={self.n_layer} "
                f"backend={self.backend}>")

    # -- properties -------------------------------------------------------------
    @property
    def path(self) -> str:
        return self._path

    @property
    def n_vocab(self) -> int:
        return self._native.n_vocab

    @property
    def n_embd(self) -> int:
        return self._native.n_embd

    @property
    def n_layer(self) -> int:
        return self._native.n_layer

    @property
    def n_ctx_train(self) -> int:
        return self._native.n_ctx_train

    @property
    def backend(self) -> str:
        """The backend the weights run on: "cpu" or "vulkan"."""
        return _BACKEND_NAMES.get(self._native.backend, "unknown")

    @property
    def description(self) -> str:
        """Where and how the weights run, as the load line says it: "cpu, 2
        threads" (and what was repacked for the CPU kernels) or "vulkan: <device>"."""
        return self._native.description

    @property
    def bos(self) -> int:
        return self._native.bos

    @property
    def eos(self) -> int:
        return self._native.eos

    @property
    def metadata(self) -> dict[str, str]:
        """The GGUF key/value metadata as text (long arrays are summarised)."""
        if self._metadata is None:
            self._metadata = self._native.metadata()
        return dict(self._metadata)

    # -- tokenizer --------------------------------------------------------------
    def tokenize(self, text: str, add_bos: bool = True, parse_special: bool = True) -> list[int]:
        return self._native.tokenize(text, add_bos, parse_special)

    def detokenize(self, ids: Iterable[int]) -> str:
        return self._native.detokenize(_token_list(ids))

    def token_to_piece(self, token: int, special: bool = False) -> bytes:
        """The raw bytes of one token (may be part of a UTF-8 character)."""
        return self._native.piece(int(token), special)

    def is_eog(self, token: int) -> bool:
        """True for tokens that end generation (EOS, EOT, ...)."""
        return self._native.is_eog(int(token))

    # -- evaluation -------------------------------------------------------------
    def create_context(
        self,
        n_ctx: int = 2048,
        n_threads: Optional[int] = None,
        n_batch: int = 512,
        logits_all: bool = False,
    ) -> "Context":
        """A KV cache of ``n_ctx`` tokens over this model."""
        return Context(self, n_ctx=n_ctx, n_threads=n_threads, n_batch=n_batch, logits_all=logits_all)

    def generate(self, prompt: str | Sequence[int], max_tokens: int = 128, **kwargs: object) -> "Generation":
        """Streams the continuation of ``prompt`` piece by piece; see :class:`ternlm.Generation`."""
        from .generation import Generation

        return Generation(self, prompt, max_tokens=max_tokens, **kwargs)  # type: ignore[arg-type]


class Context:
    """A KV cache and the evaluation state over one model.

    One context serves one conversation; use one per thread (calls on a shared
    context are serialised, never interleaved).
    """

    def __init__(
        self,
        model: Model,
        n_ctx: int = 2048,
        n_threads: Optional[int] = None,
        n_batch: int = 512,
        logits_all: bool = False,
    ) -> None:
        if n_ctx < 0 or n_batch < 0:
            raise InvalidArgumentError("n_ctx and n_batch must not be negative")
        self.model = model
        self._native = _ternlm.Context(model._native, n_ctx, n_threads or 0, n_batch, logits_all)

    def close(self) -> None:
        self._native.close()

    @property
    def closed(self) -> bool:
        return self._native.closed

    def __enter__(self) -> "Context":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return "<ternlm.Context (closed)>"
        return f"<ternlm.Context n_past={self.n_past} n_ctx={self.n_ctx}>"

    @property
    def n_ctx(self) -> int:
        return self._native.n_ctx

    @property
    def n_past(self) -> int:
        """Tokens currently in the KV cache."""
        return self._native.n_past

    def prefill(self, ids: Iterable[int]) -> Logits:
        """Evaluates the tokens as one batch; returns the last position's logits (n_vocab,)."""
        return self._native.prefill(_token_list(ids))

    def decode_step(self, token: int) -> Logits:
        """Evaluates one token; returns its logits (n_vocab,)."""
        logits = self._native.decode_step(int(token), True)
        assert logits is not None
        return logits

    def step(self, token: int) -> None:
        """Evaluates one token without copying its logits out: on a GPU they
        stay on the device, and ``Sampler.sample`` reads only the best few.
        ``logits`` still gives them on request."""
        self._native.decode_step(int(token), False)

    @property
    def logits(self) -> Logits:
        """A copy of the logits of the last evaluated position."""
        return self._native.logits()

    def logits_at(self, i: int) -> Logits:
        """Logits of row ``i`` of the last prefill (needs ``logits_all=True``; -1 is the last)."""
        return self._native.logits_ith(int(i))

    def truncate(self, n: int) -> None:
        """Keeps the first ``n`` tokens of the cache (chat reuse)."""
        if n < 0:
            raise InvalidArgumentError("truncate: n must not be negative")
        self._native.truncate(n)

    def clear(self) -> None:
        self._native.clear()
