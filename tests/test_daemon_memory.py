"""What ``collector run`` does for its resident memory: freed heap pages go back to the
system."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from collector.daemon import _libc

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
