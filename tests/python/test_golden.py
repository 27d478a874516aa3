"""Logits and greedy tokens through Python against llama.cpp's goldens."""

import json

import numpy as np
import pytest

import ternlm
from conftest import GOLDEN, MODELS

# (model, max err over rows as in golden/README.md, whether greedy must match)
CASES = [
    ("stories260K", 1e-2, True),
    ("tiny256-llama-f32", 1e-2, True),
    ("tiny256-llama-f16", 1e-2, True),
    ("tiny256-llama-q4_k", 0.1, False),
    ("tiny256-llama-q8_0", 0.1, False),
    ("tiny256-bitnet-tq2_0", 0.1, False),
]


def golden_prompts(name):
    for path in sorted((GOLDEN / name).glob("p*.json")):
        meta = json.loads(path.read_text())
        logits = np.fromfile(path.with_name(meta["logits_file"]), dtype="<f4")
        yield meta, logits.reshape(len(meta["prompt_tokens"]), -1)


@pytest.mark.parametrize("name,tol,greedy", CASES)
def test_logits_match_llama_cpp(name, tol, greedy):
    with ternlm.Model(MODELS / f"{name}.gguf", backend="cpu", n_threads=2) as m:
        n = 0
        for meta, want in golden_prompts(name):
            ids = meta["prompt_tokens"]
            assert m.tokenize(meta["prompt"], add_bos=meta["add_bos"]) == ids
            with m.create_context(n_ctx=256, logits_all=True) as ctx:
                last = ctx.prefill(ids)
                assert isinstance(last, np.ndarray) and last.dtype == np.float32 and last.shape == (m.n_vocab,)
                got = np.stack([ctx.logits_at(i) for i in range(len(ids))])
                np.testing.assert_array_equal(got[-1], last)
            err = np.max(np.abs(got - want), axis=1) / np.std(want, axis=1)
            assert err.max() <= tol, f"{name} {meta['prompt']!r}: max err {err.max():.3g}"
            if greedy:
                g = m.generate(ids, max_tokens=len(meta["greedy_tokens"]), temperature=0, n_ctx=256)
                g.text()
                assert g.tokens == meta["greedy_tokens"][: len(g.tokens)]
                assert g.finish_reason in ("length", "eog")
            n += 1
        assert n == 3


def test_prefill_equals_decode_steps(stories):
    ids = stories.tokenize("One day, a little bird")
    with stories.create_context(n_ctx=64) as a, stories.create_context(n_ctx=64) as b:
        batch = a.prefill(ids)
        for t in ids:
            step = b.decode_step(t)
        assert a.n_past == b.n_past == len(ids)
        np.testing.assert_allclose(batch, step, atol=1e-3 * float(np.std(batch)))


def test_step_leaves_logits_until_asked(stories):
    ids = stories.tokenize("One day, a little bird")
    with stories.create_context(n_ctx=64) as a, stories.create_context(n_ctx=64) as b:
        for t in ids:
            want = a.decode_step(t)
            assert b.step(t) is None
        np.testing.assert_array_equal(b.logits, want)
