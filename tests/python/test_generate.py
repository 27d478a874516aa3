"""Generation, streaming, stop strings, sampling and the KV cache from Python."""

import numpy as np
import pytest

import ternlm
from conftest import GOLDEN


def test_greedy_generation_is_llama_cpps(stories):
    import json

    meta = json.loads((GOLDEN / "stories260K" / "p0.json").read_text())
    g = stories.generate(meta["prompt"], max_tokens=32, temperature=0)
    pieces = list(g)
    assert all(isinstance(p, str) and p for p in pieces)
    assert g.tokens == meta["greedy_tokens"]
    assert "".join(pieces) == stories.detokenize(g.tokens)
    assert g.finish_reason == "length"


def test_seeded_sampling_repeats(stories):
    a = stories.generate("Once upon a time", max_tokens=24, temperature=1.0, seed=7).text()
    b = stories.generate("Once upon a time", max_tokens=24, temperature=1.0, seed=7).text()
    assert a == b
    others = {stories.generate("Once upon a time", max_tokens=24, temperature=1.0, seed=s).text() for s in range(8)}
    assert len(others) > 1


def test_stop_string_ends_generation_and_is_not_yielded(stories):
    full = stories.generate("Once upon a time", max_tokens=32, temperature=0).text()
    stop = full[10:16]
    g = stories.generate("Once upon a time", max_tokens=32, temperature=0, stop=[stop])
    text = g.text()
    assert g.finish_reason == "stop"
    assert text == full[: full.index(stop)]


def test_streaming_never_splits_utf8(stories):
    # Byte-fallback tokens: each character below is several tokens of one byte.
    text = "héllo ✓ 日本"
    ids = stories.tokenize(text, add_bos=False)
    assert len(ids) > len(text)
    from ternlm import _ternlm

    detok = _ternlm.Detokenizer(stories._native)
    pieces = [detok.push(t) for t in ids] + [detok.flush()]
    assert "".join(pieces).lstrip() == text
    for p in pieces:
        p.encode("utf-8")  # a split character would have become U+FFFD or fail
        assert "\ufffd" not in p


def test_context_full_and_kv_edits(stories):
    ids = stories.tokenize("Once upon a time")
    with stories.create_context(n_ctx=8) as ctx:
        first = ctx.prefill(ids)
        assert ctx.n_past == len(ids)
        with pytest.raises(ternlm.ContextFullError):
            ctx.prefill(ids)
        assert ctx.n_past == len(ids)  # nothing evaluated
        ctx.truncate(2)
        assert ctx.n_past == 2
        ctx.clear()
        assert ctx.n_past == 0
        np.testing.assert_array_equal(ctx.prefill(ids), first)


def test_generation_stops_when_the_context_is_full(stories):
    g = stories.generate("Once upon a time", max_tokens=100, temperature=0, n_ctx=12)
    g.text()
    assert g.finish_reason == "context"
    assert len(g.tokens) <= 12


def test_sampler_over_a_context(stories):
    with stories.create_context(n_ctx=32) as ctx:
        logits = ctx.prefill(stories.tokenize("Once upon a time"))
        greedy = ternlm.Sampler(temperature=0)
        assert greedy.sample(ctx) == int(np.argmax(logits))
        s = ternlm.Sampler(seed=3)
        assert s.seed == 3 and 0 <= s.sample(ctx) < stories.n_vocab


def test_vulkan_backend_generates_the_same_greedy_text(stories):
    # CI has lavapipe; a build without Vulkan raises UnsupportedError instead.
    try:
        gpu = ternlm.Model(stories.path, backend="vulkan")
    except ternlm.UnsupportedError:
        pytest.skip("this build has no Vulkan backend")
    with gpu:
        assert gpu.backend == "vulkan"
        want = stories.generate("Once upon a time", max_tokens=24, temperature=0).text()
        assert gpu.generate("Once upon a time", max_tokens=24, temperature=0).text() == want


def test_description_names_the_backend(stories):
    assert stories.description.startswith("cpu, ")
