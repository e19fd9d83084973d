"""One BLAS thread per caller: numpy's OpenBLAS runs no thread pool of its own here.

Recognition calls numpy from several threads at once (each speaker's Whisper decodes start with
a mel-filter matrix product in faster-whisper's feature extractor). OpenBLAS's threaded GEMM
entered from two threads at once can hang for good: one caller spinning in ``inner_thread``, the
other waiting on its lock (seen here: two Whisper warm-ups in one test process, 16 CPU-minutes
until the test's timeout; numpy/numpy#17752, OpenMathLib/OpenBLAS#937). The parallelism that
counts is per speaker already, and these products are small, so BLAS gets one thread.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_limiter: Any = None


def limit_blas_threads() -> None:
    """Make every BLAS library loaded in this process single-threaded (once; idempotent)."""
    global _limiter
    with _lock:
        if _limiter is None:
            import numpy  # noqa: F401  (loads numpy's OpenBLAS, so that the limit reaches it)
            from threadpoolctl import ThreadpoolController

            _limiter = ThreadpoolController().limit(limits=1, user_api="blas")


def blas_threads() -> dict[str, int]:
    """Threads of each BLAS library numpy loads, by file name (what `limit_blas_threads` set)."""
    import numpy  # noqa: F401
    from threadpoolctl import threadpool_info

    return {
        info["filepath"].rsplit("/", 1)[-1]: info["num_threads"]
        for info in threadpool_info()
        if info["user_api"] == "blas"
    }
