"""Errors raise ternlm.TernError subclasses with the status and the message."""

import pytest

import ternlm
from conftest import STORIES


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(ternlm.TernIOError) as e:
        ternlm.Model(tmp_path / "none.gguf")
    assert isinstance(e.value, OSError) and isinstance(e.value, ternlm.TernError)
    assert e.value.status == 2 and e.value.status_name == "TERN_ERR_IO"
    assert "none.gguf" in str(e.value)


def test_corrupt_file_is_a_format_error(tmp_path):
    data = STORIES.read_bytes()
    bad = tmp_path / "cut.gguf"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(ternlm.FormatError) as e:
        ternlm.Model(bad)
    assert "offset" in str(e.value)
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"GGUF" + b"\xff" * 64)
    with pytest.raises(ternlm.FormatError):
        ternlm.Model(garbage)


def test_bad_arguments(stories):
    with pytest.raises(ternlm.InvalidArgumentError):
        ternlm.Model(STORIES, backend="tpu")
    with stories.create_context(n_ctx=16) as ctx:
        with pytest.raises(ValueError):
            ctx.decode_step(stories.n_vocab)
        with pytest.raises(ValueError):
            ctx.prefill([])
        with pytest.raises(ternlm.InvalidArgumentError):
            ctx.logits  # nothing evaluated yet
        with pytest.raises(ternlm.InvalidArgumentError):
            ctx.truncate(5)  # more than n_past
        with pytest.raises(ternlm.InvalidArgumentError):
            ctx.logits_at(0)  # logits_all is off
    with pytest.raises(ternlm.InvalidArgumentError):
        stories.generate([], max_tokens=4)


def test_closed_handles_raise(stories):
    ctx = stories.create_context(n_ctx=16)
    ctx.close()
    assert ctx.closed
    with pytest.raises(ternlm.InvalidArgumentError, match="closed"):
        ctx.decode_step(1)


def test_context_outlives_a_closed_model():
    m = ternlm.Model(STORIES, backend="cpu")
    ctx = m.create_context(n_ctx=16)
    m.close()
    with pytest.raises(ternlm.InvalidArgumentError, match="closed"):
        m.tokenize("x")
    assert ctx.prefill([1, 403]).shape == (512,)  # weights are still there
    ctx.close()


def test_progress_can_cancel_and_its_exceptions_propagate():
    seen = []
    ternlm.Model(STORIES, progress=seen.append).close()
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)
    with pytest.raises(ternlm.CancelledError):
        ternlm.Model(STORIES, progress=lambda f: False)

    def boom(f):
        raise KeyError("from the callback")

    with pytest.raises(KeyError):
        ternlm.Model(STORIES, progress=boom)


def test_vulkan_request_is_reported_clearly():
    try:
        m = ternlm.Model(STORIES, backend="vulkan")
    except (ternlm.UnsupportedError, ternlm.BackendError) as e:
        assert "Vulkan" in str(e)
    else:
        assert m.backend == "vulkan"
        m.close()
