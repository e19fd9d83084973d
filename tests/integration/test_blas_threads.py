"""Loading Whisper leaves numpy's OpenBLAS single-threaded (its threaded GEMM can hang when two
speakers' decodes enter it at once). Real model, in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys

from translation.blas_threads import blas_threads

SCRIPT = """
from translation.blas_threads import blas_threads
from translation.whisper_models import assemble_packaged, load_whisper_model
before = blas_threads()
load_whisper_model(assemble_packaged())
after = blas_threads()
print(max(before.values()), max(after.values()), len(after))
"""


def test_loading_whisper_makes_blas_single_threaded() -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=180, env=env
    )
    assert out.returncode == 0, out.stderr[-2000:]
    before, after, libraries = map(int, out.stdout.split())
    assert libraries >= 1  # numpy's OpenBLAS is seen
    assert after == 1, (before, after)
    assert before > 1 or (os.cpu_count() or 1) == 1, before  # OpenBLAS's default: a thread a core


def test_blas_threads_lists_numpys_blas() -> None:
    assert any("blas" in name for name in blas_threads())
