"""How the spool stores a chunk: its lines' UTF-8 text, LZ4-compressed with a checksum
(plain text from earlier versions is read as it is), and the error for one that cannot be
read back."""

from __future__ import annotations

import sqlite3

import lz4.frame  # type: ignore[import-untyped]


class DamagedChunk(sqlite3.DatabaseError):
    """A chunk of the spool file that cannot be read back (the file was damaged)."""


def pack(text: str | bytes) -> bytes:
    """A chunk as stored: its lines' UTF-8 text (given as text or as its UTF-8 bytes),
    LZ4-compressed with a checksum."""
    body = text.encode("utf-8") if isinstance(text, str) else text
    return bytes(lz4.frame.compress(body, content_checksum=True))


def unpack(chunk_id: int, stored: bytes | str) -> bytes:
    """The UTF-8 text of a stored chunk (plain text from earlier versions as it is)."""
    if isinstance(stored, str):
        return stored.encode("utf-8")
    try:
        return bytes(lz4.frame.decompress(stored))
    except RuntimeError as err:
        raise DamagedChunk(f"spool chunk {chunk_id} cannot be read: {err}") from err


def unpack_text(chunk_id: int, stored: bytes | str) -> str:
    if isinstance(stored, str):
        return stored
    try:
        return unpack(chunk_id, stored).decode("utf-8")
    except UnicodeDecodeError as err:
        raise DamagedChunk(f"spool chunk {chunk_id} cannot be read: {err}") from err
