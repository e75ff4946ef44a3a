"""Chunks committed lately go to delivery from memory, and only while every pending chunk
is held: the file's order and contents are what delivery sees either way."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.spool import Spool
from collector.spool_held import Held


def _line(i: int) -> str:
    return f"power_w,device_id=plug{i % 5},site=s,source=fritzbox value={i}.25 {1_700_000_000 + i}"


def _from_file(spool: Spool, limit: int, after: int) -> list[tuple[int, int, bytes]]:
    return [(i, n, text.encode()) for i, n, text in spool.peek_text(limit, after_id=after)]


def test_what_was_committed_is_handed_from_memory_as_the_file_has_it(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    spool.append([_line(1), _line(2)])
    spool.append_text(_line(3).encode(), 1)
    held = spool._held.peek(10, 0)
    assert held is not None
    assert held == _from_file(spool, 10, 0) == spool.peek_bodies(10)
    assert [n for _, n, _ in held] == [2, 1]
    first, second = held[0][0], held[1][0]
    assert spool.peek_bodies(10, after_id=first) == [(second, 1, _line(3).encode())]
    assert spool.peek_bodies(1) == held[:1]  # at least one chunk, even past the limit
    spool.ack(first, first)
    assert spool._held.peek(10, 0) == [(second, 1, _line(3).encode())]
    spool.close()


def test_after_a_restart_the_file_is_read_until_the_old_chunks_are_delivered(
        tmp_path: Path) -> None:  # fmt: skip
    spool = Spool(tmp_path / "spool.sqlite3")
    spool.append([_line(1)])
    spool.close()
    spool = Spool(tmp_path / "spool.sqlite3")
    spool.append([_line(2)])
    assert spool._held.peek(10, 0) is None  # the chunk from before the restart is not held
    ((old, _, _), (new, _, _)) = spool.peek_bodies(10)
    spool.ack(old, old)
    assert spool._held.peek(10, 0) == [(new, 1, _line(2).encode())]
    spool.close()


def test_a_chunk_that_does_not_fit_is_read_from_the_file(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    spool._held = Held(0, max_bytes=200)
    spool.append([_line(1)])
    spool.append([_line(i) for i in range(2, 8)])  # larger than what is held
    assert spool._held.peek(10, 0) is None
    assert spool.peek_bodies(100) == _from_file(spool, 100, 0)
    ids = [i for i, _, _ in spool.peek_bodies(100)]
    spool.ack(ids[0], ids[-1])
    assert spool.pending == 0 and spool._held.peek(10, 0) == []
    spool.close()


def test_a_transaction_that_fails_holds_nothing_of_it(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    spool.append([_line(1)])

    def failing() -> None:
        spool._insert(_line(2), 1)
        raise RuntimeError("disk trouble")

    assert isinstance(spool.run_in_transactions([failing], durable=True)[0], RuntimeError)
    assert spool.pending == 1
    assert [b for _, _, b in spool.peek_bodies(10)] == [_line(1).encode()]
    assert spool._held.peek(10, 0) == _from_file(spool, 10, 0)
    spool.close()


def test_dropping_and_retrying_make_delivery_read_the_file(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3", max_lines=3)
    spool.append([_line(1), _line(2)])
    spool.append([_line(3), _line(4)])  # the oldest line is dropped for room
    assert spool._held.peek(10, 0) is None
    kept = [b.decode() for _, _, b in spool.peek_bodies(10)]
    assert kept == [_line(2), f"{_line(3)}\n{_line(4)}"]
    assert spool.drop_pending() == 3  # lines, not chunks
    assert spool.pending == 0 and spool.status().dropped_total == 4
    assert spool.peek_bodies(10) == [] and spool._held.peek(10, 0) == []
    spool.close()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["append", "ack", "other"]),
                          st.integers(1, 4)), max_size=25))
def test_memory_and_file_agree_whatever_happens(
        tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, int]]) -> None:
    """Appends, acknowledgements and another process's appends in any order: delivery is
    handed the file's pending chunks, in order and as stored, skipping none; at most the
    other process's newest ones wait until this spool next writes."""
    path = tmp_path_factory.mktemp("held") / "spool.sqlite3"
    spool = Spool(path)
    spool._held = Held(0, max_bytes=600)  # small, so that some chunks do not fit
    other = Spool(path)
    unnoticed: set[int] = set()  # the other's chunks since this spool last wrote
    counter = 0
    for action, size in steps:
        if action == "append":
            asyncio.run(spool.append_text_async(
                "\n".join(_line(counter + i) for i in range(size)), size))
            unnoticed.clear()
        elif action == "other":
            other.append([_line(counter + i) for i in range(size)])
            unnoticed.add(other.peek_text(10**6)[-1][0])
        elif batch := spool.peek_bodies(size):
            spool.ack(batch[0][0], batch[-1][0])
            unnoticed.clear()
        counter += size
        for after in (0, *(i for i, _, _ in _from_file(spool, 10**6, 0))):
            file = _from_file(spool, 10**6, after)
            for limit in (1, 3, 10**6):
                got = spool.peek_bodies(limit, after_id=after)
                assert got == file[: len(got)]
                if len(got) < len(file) and (
                        not got or sum(n for _, n, _ in file[: len(got) + 1]) <= limit):
                    assert all(i in unnoticed for i, _, _ in file[len(got):])
    other.close()
    spool.close()


def test_a_count_gone_wrong_is_counted_anew_at_the_next_write(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    spool.append([_line(1)])
    ((chunk_id, _, _),) = spool.peek_bodies(10)
    spool._held.removed(chunk_id, chunk_id, 5)  # more lines than it held: the count is wrong
    assert spool._held.peek(10, 0) is None  # the file is read meanwhile
    assert [b for _, _, b in spool.peek_bodies(10)] == [_line(1).encode()]
    spool.append([_line(2)])  # the next transaction counts anew
    held = spool._held.peek(10, 0)
    assert held is None or held == _from_file(spool, 10, 0)
    spool.ack(chunk_id, chunk_id)
    assert spool._held.peek(10, 0) == _from_file(spool, 10, 0)
    spool.close()
