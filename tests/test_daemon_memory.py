"""What ``collector run`` does for its resident memory and its CPU: freed heap pages go back to
the system, and the cycle collector leaves what was set up at the start alone."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import weakref

import pytest

from collector.daemon import GC_YOUNG_THRESHOLD, _libc, tuned_gc

#: In a child process (its heap is its own): blocks above pymalloc's 512-byte limit come from
#: glibc's heap; all but every 16th are freed, so the heap cannot shrink from the top and only
#: ``trim_heap`` can give the holes back. Prints resident KiB after the frees and after the trim.
_CHILD = """
import json
from pathlib import Path
from collector.daemon import return_large_blocks_to_the_os, trim_heap

def rss_kib():
    status = Path("/proc/self/status").read_text()
    return int(next(l for l in status.splitlines() if l.startswith("VmRSS:")).split()[1])

return_large_blocks_to_the_os()
blocks = [bytearray([i % 251]) * 2000 for i in range(16_000)]  # about 32 MB
kept = blocks[15::16]
del blocks
freed = rss_kib()
trim_heap()
trimmed = rss_kib()
intact = all(b == bytearray([(16 * n + 15) % 251]) * 2000 for n, b in enumerate(kept))
print(json.dumps({"freed": freed, "trimmed": trimmed, "intact": intact, "kept": len(kept)}))
"""


@pytest.mark.skipif(_libc() is None, reason="needs glibc's malloc_trim (Linux)")
def test_trim_heap_gives_the_free_pages_of_the_heap_back_and_keeps_the_live_blocks() -> None:
    proc = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                          check=True)
    result = json.loads(proc.stdout)
    assert result["kept"] == 1000 and result["intact"] is True
    # some 30 MB of holes were resident; at least half of that goes back
    assert result["freed"] - result["trimmed"] > 15 * 1024, result


def test_inside_tuned_gc_what_existed_is_frozen_and_young_objects_wait_longer() -> None:
    before_threshold = gc.get_threshold()
    before_frozen = gc.get_freeze_count()
    existing = [[i] for i in range(100)]  # containers the collector tracks
    with tuned_gc():
        assert gc.get_freeze_count() >= before_frozen + len(existing)
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before_threshold[1:])
        cycle: list[object] = []
        cycle.append(cycle)
        ref = weakref.ref(_Node(cycle))
        gc.collect()  # a cycle made inside is still freed
        assert ref() is None
    assert gc.get_threshold() == before_threshold
    assert gc.get_freeze_count() == before_frozen


class _Node:
    def __init__(self, other: object) -> None:
        self.me = self
        self.other = other
