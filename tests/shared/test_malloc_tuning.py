"""shared.malloc_tuning: glibc's arenas are capped and free memory goes back to the system."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.malloc_tuning import ARENA_ENV_VAR, limit_arenas, release_free_memory


def _glibc() -> bool:
    try:
        os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        return False
    return True


pytestmark = pytest.mark.skipif(not _glibc(), reason="glibc's allocator only")
REPO = Path(__file__).resolve().parents[2]

# Six threads hold memory at once, then malloc_info says how many arenas there are.
_COUNT_ARENAS = """
import ctypes, sys, threading
from shared.malloc_tuning import limit_arenas
if sys.argv[1] != "default":
    print(limit_arenas(int(sys.argv[1])))
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
barrier = threading.Barrier(7)
def hold():
    libc.malloc(1000)
    barrier.wait()
    barrier.wait()
threads = [threading.Thread(target=hold) for _ in range(6)]
for t in threads:
    t.start()
barrier.wait()
handle = libc.fopen(sys.argv[2].encode(), b"w")
libc.malloc_info(0, handle)
libc.fclose(handle)
barrier.wait()
for t in threads:
    t.join()
print(open(sys.argv[2]).read().count("<heap nr="))
"""


def _arenas(tmp_path: Path, limit: str, env: dict[str, str] | None = None) -> list[str]:
    environment = {k: v for k, v in os.environ.items() if k != ARENA_ENV_VAR} | (env or {})
    done = subprocess.run(
        [sys.executable, "-c", _COUNT_ARENAS, limit, str(tmp_path / "info.xml")],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()


def test_limit_arenas_caps_the_arenas_of_new_threads(tmp_path):
    assert int(_arenas(tmp_path, "default")[-1]) > 2  # glibc's default: one per thread here
    assert _arenas(tmp_path, "2") == ["True", "2"]


def test_the_operators_malloc_arena_max_wins(tmp_path):
    assert _arenas(tmp_path, "1", {ARENA_ENV_VAR: "4"}) == ["False", "4"]


def test_limit_arenas_refuses_zero():
    with pytest.raises(ValueError, match="at least one arena"):
        limit_arenas(0)


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads VmRSS from /proc")
def test_release_free_memory_returns_freed_blocks_below_a_live_one():
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(4096) for _ in range(16_000)]  # 62 MiB of small blocks
    for block in blocks:
        ctypes.memset(block, 1, 4096)
    last = libc.malloc(4096)  # stays: the heap's top cannot shrink below it
    for block in blocks:
        libc.free(block)
    before = _rss_mib()
    assert release_free_memory()
    after = _rss_mib()
    libc.free(last)
    assert before - after > 40, (before, after)
