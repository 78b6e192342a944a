"""How the machine's cores are shared when several cameras run in one process.

Each camera decodes and encodes on threads of its own, and the shared detector runs its graphs on
TensorFlow's thread pool. With several cameras those pools would each ask for every core, and
the cores are already busy with the other cameras' work: frame threads and spinning pool workers
then cost more CPU than they save (on two cores, four recorded 720p cameras got 16 full scans per
second with FFmpeg's and TensorFlow's default pools, 24 with one encoder thread per camera and
one TensorFlow thread; `benchmarks/cameras.py`). So when the cameras outnumber the cores, each
pool gets one thread; with as many cores as cameras the defaults stay (two cameras on two cores
scanned less with one thread each: the cores were not all busy).
"""

from __future__ import annotations

import contextlib
import os


def available_cores() -> int:
    """Cores this process may run on."""
    with contextlib.suppress(AttributeError, OSError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def threads_each(workers: int, cores: int | None = None) -> int | None:
    """Threads for each of `workers` pools sharing the cores: one each when they outnumber the
    cores; None (the libraries' defaults) otherwise, where idle cores are still there to use."""
    if workers <= (cores or available_cores()):
        return None
    return 1


def share_detector_cores(cameras: int) -> None:
    """Give TensorFlow's op pool its share of the cores before its first op (a no-op for one
    camera, or when TensorFlow already runs: its pools are fixed once started)."""
    threads = threads_each(cameras)
    if threads is None:
        return
    import tensorflow as tf

    with contextlib.suppress(RuntimeError):
        tf.config.threading.set_intra_op_parallelism_threads(threads)
