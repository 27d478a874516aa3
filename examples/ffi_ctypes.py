#!/usr/bin/env python3
"""Greedy generation through the C ABI with ctypes only: no compiled glue.

This is how any FFI language (Rust, Go, C#, Julia, ...) uses ternlm: open
libternlm.so.1, declare the few functions it calls, pass structs that begin
with their own size.

    python3 examples/ffi_ctypes.py [LIBTERNLM.so] MODEL.gguf "prompt" [n_tokens]

Without a library path, "libternlm.so.1" is found the usual way (LD_LIBRARY_PATH,
ldconfig).
"""

import ctypes as C
import sys

TERN_OK = 0
tern_token = C.c_int32


class SamplerParams(C.Structure):
    # Mirrors tern_sampler_params in ternlm.h (v1); `size` lets newer
    # libraries accept this older, shorter struct.
    _fields_ = [
        ("size", C.c_uint32),
        ("temperature", C.c_float),
        ("top_k", C.c_int32),
        ("top_p", C.c_float),
        ("min_p", C.c_float),
        ("repeat_penalty", C.c_float),
        ("repeat_last_n", C.c_int32),
        ("seed", C.c_uint64),
    ]


def load(path: str) -> C.CDLL:
    lib = C.CDLL(path)
    P = C.c_void_p
    sigs = {
        "tern_abi_version": (C.c_uint32, []),
        "tern_last_error": (C.c_char_p, []),
        "tern_model_load": (C.c_int, [C.c_char_p, P, C.POINTER(P)]),
        "tern_model_free": (None, [P]),
        "tern_context_create": (C.c_int, [P, P, C.POINTER(P)]),
        "tern_context_free": (None, [P]),
        "tern_tokenize": (C.c_int, [P, C.c_char_p, C.c_size_t, C.c_bool, C.c_bool,
                                    C.POINTER(tern_token), C.c_size_t, C.POINTER(C.c_size_t)]),
        "tern_prefill": (C.c_int, [P, C.POINTER(tern_token), C.c_size_t]),
        "tern_decode_step": (C.c_int, [P, tern_token]),
        "tern_sampler_default_params": (SamplerParams, []),
        "tern_sampler_create": (C.c_int, [C.POINTER(SamplerParams), C.POINTER(P)]),
        "tern_sampler_sample": (C.c_int, [P, P, C.POINTER(tern_token)]),
        "tern_sampler_free": (None, [P]),
        "tern_token_is_eog": (C.c_bool, [P, tern_token]),
        "tern_detokenizer_create": (C.c_int, [P, C.POINTER(P)]),
        "tern_detokenizer_push": (C.c_int, [P, tern_token, C.c_char_p, C.c_size_t, C.POINTER(C.c_size_t)]),
        "tern_detokenizer_flush": (C.c_int, [P, C.c_char_p, C.c_size_t, C.POINTER(C.c_size_t)]),
        "tern_detokenizer_free": (None, [P]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


def main() -> int:
    args = sys.argv[1:]
    lib_path = args.pop(0) if args and ".so" in args[0] else "libternlm.so.1"
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    model_path, prompt = args[0], args[1]
    n_predict = int(args[2]) if len(args) > 2 else 32
    lib = load(lib_path)
    if lib.tern_abi_version() != 1:
        print("this script speaks ABI v1", file=sys.stderr)
        return 1

    def check(status: int, what: str) -> None:
        if status != TERN_OK:
            raise RuntimeError(f"{what}: {lib.tern_last_error().decode()}")

    model, ctx, smp, detok = C.c_void_p(), C.c_void_p(), C.c_void_p(), C.c_void_p()
    try:
        check(lib.tern_model_load(model_path.encode(), None, C.byref(model)), "load")
        check(lib.tern_context_create(model, None, C.byref(ctx)), "context")
        sp = lib.tern_sampler_default_params()
        sp.temperature = 0.0
        check(lib.tern_sampler_create(C.byref(sp), C.byref(smp)), "sampler")
        check(lib.tern_detokenizer_create(model, C.byref(detok)), "detokenizer")

        text = prompt.encode()
        ids = (tern_token * (len(text) + 2))()
        n = C.c_size_t()
        check(lib.tern_tokenize(model, text, len(text), True, True, ids, len(ids), C.byref(n)), "tokenize")
        check(lib.tern_prefill(ctx, ids, n.value), "prefill")

        out = bytearray(prompt.encode())
        buf = C.create_string_buffer(256)
        tok = tern_token()
        for _ in range(n_predict):
            check(lib.tern_sampler_sample(smp, ctx, C.byref(tok)), "sample")
            if lib.tern_token_is_eog(model, tok):
                break
            check(lib.tern_detokenizer_push(detok, tok, buf, len(buf), C.byref(n)), "detokenize")
            out += buf.raw[: n.value]
            check(lib.tern_decode_step(ctx, tok), "decode")
        check(lib.tern_detokenizer_flush(detok, buf, len(buf), C.byref(n)), "detokenize")
        out += buf.raw[: n.value]
        print(out.decode())
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        lib.tern_detokenizer_free(detok)
        lib.tern_sampler_free(smp)
        lib.tern_context_free(ctx)
        lib.tern_model_free(model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
