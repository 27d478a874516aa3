"""ternlm: run GGUF language models (CPU, Vulkan) from Python.

    import ternlm
    with ternlm.Model("model.gguf") as m:
        for piece in m.generate("Once upon a time", max_tokens=64, temperature=0):
            print(piece, end="", flush=True)

Errors raise subclasses of :class:`ternlm.TernError`; logits are numpy arrays.
"""

from . import _ternlm
from .errors import (
    BackendError,
    CancelledError,
    ContextFullError,
    FormatError,
    InvalidArgumentError,
    OutOfMemoryError,
    TernError,
    TernIOError,
    UnsupportedError,
)
from .generation import Generation, Sampler
from .model import Context, Model

__version__: str = _ternlm.version()
ABI_VERSION: int = _ternlm.abi_version()

__all__ = [
    "Model",
    "Context",
    "Sampler",
    "Generation",
    "TernError",
    "InvalidArgumentError",
    "TernIOError",
    "FormatError",
    "UnsupportedError",
    "OutOfMemoryError",
    "BackendError",
    "ContextFullError",
    "CancelledError",
    "__version__",
]
