"""Frames between this tool's processes: a 4-byte length and a pickle. The watcher and
its workers speak in them (``watch/wire.py`` says what they say), and so do a watcher's
SQLite store and its writer process (``stores/sqlite_writer.py``).

``decode`` trusts what it reads: use it only on frames from a process of this tool that
runs none of the user's code (a worker's frames are read with ``wire.decode_from_worker``).
"""

from __future__ import annotations

import pickle
import socket
import struct
import threading
from typing import Any

_LENGTH = struct.Struct("!I")
#: A frame larger than this is a bug (results are capped), not data.
MAX_FRAME = 256 * 1024 * 1024

Message = tuple[Any, ...]


def encode(messages: Any) -> bytes:
    body = dumps(messages)
    return _LENGTH.pack(len(body)) + body


def encode_split(messages: Any) -> bytes:
    """``messages`` as frames: one, or, for a list that pickles to more than
    ``SPLIT_FRAME``, the frames of its halves (again while too big). A reader refuses a
    frame over ``MAX_FRAME``, and a worker's batch of results near their size caps
    (~200 KB each) passed it."""
    frame = encode(messages)
    if len(frame) <= SPLIT_FRAME or type(messages) is not list or len(messages) < 2:
        return frame
    half = len(messages) // 2
    return encode_split(messages[:half]) + encode_split(messages[half:])


def dumps(value: Any) -> bytes:
    """``value`` pickled as a frame's body holds it (``decode`` reads it back)."""
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def decode(body: bytes) -> Any:
    """A frame from a process that runs none of the user's code (trusted): the watcher, to
    its workers; the SQLite store's writer process, to the watcher."""
    return pickle.loads(body)


def length_of(header: bytes) -> int:
    (length,) = _LENGTH.unpack(header)
    if length > MAX_FRAME:
        raise ValueError(f"a frame of {length} bytes is more than the {MAX_FRAME} allowed")
    return int(length)


HEADER_SIZE = _LENGTH.size
#: A list of messages larger than this goes in several frames (``encode_split``).
SPLIT_FRAME = MAX_FRAME // 16


class BlockingChannel:
    """A child's end (a worker's, the store writer's): whole frames over a blocking
    socket, from any thread."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._lock = threading.Lock()

    def send(self, messages: list[Message] | Message) -> None:
        """One frame: a list of messages (a worker's; several frames if it is large), or
        one message (the SQLite store's writer process, which answers one write at a time)."""
        frame = encode_split(messages)
        with self._lock:
            self.sock.sendall(frame)

    def receive(self) -> Any:
        """The next frame's messages; ``EOFError`` when the other end closed."""
        length = length_of(self._read(HEADER_SIZE))
        return decode(self._read(length))

    def _read(self, count: int) -> bytes:
        chunks = []
        while count:
            chunk = self.sock.recv(min(count, 1 << 20))
            if not chunk:
                raise EOFError("the watcher closed the channel")
            chunks.append(chunk)
            count -= len(chunk)
        return b"".join(chunks)
