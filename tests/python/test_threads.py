"""Several Python threads: one model, a context each, the GIL released in compute."""

import threading

import numpy as np

import ternlm


def test_threads_share_a_model(stories):
    prompts = ["Once upon a time", "The cat sat", "One day, a little bird", "Tom and Sue"]
    expected = {p: stories.generate(p, max_tokens=16, temperature=0).text() for p in prompts}
    results, errors = {}, []

    def worker(p):
        try:
            for _ in range(3):
                results[p] = stories.generate(p, max_tokens=16, temperature=0).text()
        except Exception as e:  # reported below; a thread's exception is otherwise lost
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(p,)) for p in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == expected


def test_threads_sharing_one_context_take_turns(stories):
    with stories.create_context(n_ctx=256) as ctx:
        ctx.prefill(stories.tokenize("Once upon a time"))
        errors = []

        def worker():
            try:
                for _ in range(20):
                    ctx.decode_step(5)
            except Exception as e:
                errors.append(e)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert ctx.n_past == 5 + 80


def test_gil_is_released_during_prefill(stories):
    # While one thread evaluates, another keeps running Python code.
    ticks = []
    done = threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(1)

    t = threading.Thread(target=ticker)
    t.start()
    with stories.create_context(n_ctx=256) as ctx:
        for _ in range(20):
            ctx.clear()
            ctx.prefill(list(range(1, 200)))
    done.set()
    t.join()
    assert len(ticks) > 100
    assert isinstance(ternlm.__version__, str)
    assert np.float32  # numpy is importable beside the module
