"""A task's large temporaries stay on the heap under a fixed malloc threshold (glibc).

dask.distributed's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which
turns glibc's dynamic mmap threshold off: every temporary above 128 KiB is then mapped
and faulted in afresh. ``task_heap`` must keep them on the heap for a run's tasks, and
``release_heap`` (at the run's end, or once the worker is idle) restore the
environment's thresholds and give the memory back to the OS.
"""
import os
import subprocess
import sys
import textwrap

import pytest

from zounds_xr.documents.heap import _glibc, fixed_thresholds

_PROBE = textwrap.dedent("""
    import ctypes, json
    import numpy as np
    from zounds_xr.documents.heap import release_heap, release_heap_later, task_heap

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = Mallinfo2

    def mapped():
        # bytes of an 8 MiB temporary (a stack of clips' spectra) served by mmap
        before = libc.mallinfo2().hblkhd
        a = np.ones(1 << 20)
        try:
            return libc.mallinfo2().hblkhd - before
        finally:
            del a

    out = {"outside": mapped()}
    with task_heap():
        out["inside"] = mapped()
        with task_heap():  # a concurrent task of the same process
            out["released while a task runs"] = release_heap()
        out["after inner"] = mapped()
        big = [np.ones(1 << 20) for _ in range(3)]  # 24 MiB on the heap, then freed
        del big
    out["next task"] = mapped()  # the heap is kept for the run's next task ...
    out["heap held"] = libc.mallinfo2().arena
    out["released"] = release_heap()  # ... until the run ends
    out["heap after"] = libc.mallinfo2().arena
    out["after"] = mapped()
    out["released again"] = release_heap()
    # a loop of runs: the release scheduled at a run's end waits; the next run's first
    # task cancels it, and keeps the heap
    with task_heap():
        big = [np.ones(1 << 20) for _ in range(3)]
        del big
    pending = release_heap_later(3600)
    with task_heap():
        pass
    if pending is not None:  # None: nothing to release (glibc's own thresholds)
        pending.join(timeout=60)
    out["later, a task came"] = mapped()
    held = libc.mallinfo2().arena
    pending = release_heap_later(0.01)
    if pending is not None:  # idle: it happens
        pending.join(timeout=60)
    out["later, idle"] = mapped()
    out["later, heap freed"] = held - libc.mallinfo2().arena
    out["later, nothing to release"] = release_heap_later() is None
    print(json.dumps(out))
""")


def _probe(environ):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    env.update(environ)
    done = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                          text=True, check=True, timeout=120)
    import json

    return json.loads(done.stdout)


def test_fixed_thresholds_read_like_glibc():
    assert fixed_thresholds({}) == {}
    assert fixed_thresholds({"MALLOC_TRIM_THRESHOLD_": "65536"}) == {
        "trim_threshold": 65536}
    assert fixed_thresholds({"MALLOC_MMAP_THRESHOLD_": "0x20000", "MALLOC_TOP_PAD_": "0",
                             "MALLOC_ARENA_MAX": "2"}) == {"mmap_threshold": 131072,
                                                          "top_pad": 0}
    # a tunable wins over the variable of the same setting; other tunables are not ours
    assert fixed_thresholds({
        "MALLOC_TRIM_THRESHOLD_": "65536",
        "GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1024:glibc.malloc.mmap_max=7:"
                          "glibc.elision.enable=1:glibc.malloc.bad=x"}) == {
        "trim_threshold": 1024, "mmap_max": 7}
    assert fixed_thresholds({"MALLOC_TRIM_THRESHOLD_": "lots"}) == {}


@pytest.mark.skipif(not hasattr(_glibc(), "mallinfo2"), reason="glibc >= 2.33 only")
def test_a_task_reuses_its_heap_under_a_distributed_workers_threshold():
    out = _probe({"MALLOC_TRIM_THRESHOLD_": "65536"})  # what distributed's nanny sets
    # outside a task: an 8 MiB temporary is a fresh mapping (faulted in, zeroed, unmapped)
    assert out["outside"] >= 8 << 20
    assert out["after"] >= 8 << 20  # the environment's threshold is back after the run
    # inside: on the heap, reused by the next one
    assert out["inside"] == 0 and out["after inner"] == 0
    assert not out["released while a task runs"]
    assert out["next task"] == 0
    # the heap the tasks grew goes back to the OS when the run ends (the nanny's intent)
    assert out["released"] and not out["released again"]
    assert out["heap held"] - out["heap after"] >= 16 << 20
    # ... or, scheduled at its end, once no task has begun for a while
    assert out["later, a task came"] == 0
    assert out["later, idle"] >= 8 << 20 and out["later, heap freed"] >= 16 << 20
    assert out["later, nothing to release"]


@pytest.mark.skipif(not hasattr(_glibc(), "mallinfo2"), reason="glibc >= 2.33 only")
def test_glibcs_own_thresholds_are_left_alone():
    # dynamic thresholds: after the first free, glibc serves such blocks from the heap
    out = _probe({})
    assert out["outside"] >= 8 << 20  # the first one, before glibc adjusts
    assert out["after"] == 0  # the adjustment is still on after a task
    assert not out["released"]
    assert out["later, idle"] == 0 and out["later, nothing to release"]
