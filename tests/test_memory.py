"""Arrays in memory maps of their own (gseio._memory): the arena that concatenates a build's pieces."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gseio import _memory


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(0, 300_000), max_size=8), seed=st.integers(0, 2**16))
def test_arena_equals_concatenation(sizes, seed):
    rng = np.random.default_rng(seed)
    parts = [rng.integers(0, 2**31 - 1, size=n, dtype=np.int32) for n in sizes]
    arena = _memory.Arena(np.int32)
    for part in parts:
        arena.append(part)
    assert arena.size == sum(sizes)
    out = arena.take()
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, np.concatenate(parts) if parts else np.empty(0, np.int32))
    assert arena.size == 0


def test_arena_widens_without_losing_values():
    arena = _memory.Arena(np.float32)
    first = np.arange(400_000, dtype=np.float32)
    arena.append(first)
    arena.widen(np.float64)
    arena.append(np.array([0.1, 2.0**60]))
    out = arena.take()
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out[: first.size], first)
    assert out[-2] == 0.1
    assert out[-1] == 2.0**60


def test_arena_result_is_an_ordinary_writable_array():
    arena = _memory.Arena(np.int32)
    arena.append(np.ones(1 << 20, dtype=np.int32))  # large: stays in the arena's map
    out = arena.take()
    out[0] = 5
    assert out.flags.writeable
    assert out.sum() == (1 << 20) + 4
    assert np.add.reduce(out[1:]) == (1 << 20) - 1


def test_empty_is_large_or_small():
    small, large = _memory.empty(10, np.float32), _memory.empty(1 << 20, np.int64)
    assert small.shape == (10,)
    assert large.shape == (1 << 20,)
    large[:] = 3
    assert int(large.sum()) == 3 << 20


def test_consumed_arrays_give_their_memory_back_and_arrive_whole():
    source = _memory.empty(5 << 20, np.int32)  # 20 MB: several copy blocks
    source[:] = np.arange(source.size, dtype=np.int32)
    view = _memory.empty(3 << 20, np.int32)[1:]  # a view is never consumed: others may hold the map
    view[:] = 7
    arena = _memory.Arena(np.int32)
    arena.append(source, consume=True)
    arena.append(view, consume=True)
    out = arena.take()
    np.testing.assert_array_equal(out[: 5 << 20], np.arange(5 << 20, dtype=np.int32))
    assert (out[5 << 20 :] == 7).all()
    assert not source.any()  # its pages were returned: they read as zeros now
    assert (view == 7).all()
