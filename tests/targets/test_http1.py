"""The HTTP/1.1 response parser under the ``http`` fixture, fed answers as RFC 9112 frames them.

Each answer is fed whole, byte by byte, and split at every position: the parser must
read the same head and body whichever way the bytes arrive.
"""

from __future__ import annotations

import pytest

from fraiseql_checks.targets.http1 import MAX_HEAD_BYTES, Parser, ProtocolError


def parse(data: bytes, *, head_request: bool = False, close: bool = False, pieces: list[int] | None = None) -> Parser:
    parser = Parser(head_request=head_request)
    start = 0
    for end in [*(pieces or []), len(data)]:
        parser.feed(data[start:end])
        start = end
    if close:
        parser.closed()
    return parser


def read(data: bytes, **options: object) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]], bytes, bool, bool]:
    """The same answer fed whole, byte by byte and split at every position: one result."""
    results = set()
    for pieces in [None, list(range(1, len(data))), *([i] for i in range(1, len(data)))]:
        parser = parse(data, pieces=pieces, **options)  # type: ignore[arg-type]
        head = parser.head
        assert head is not None
        results.add(
            (head.status, head.reason, head.version, tuple(head.headers), parser.take(), parser.done, head.keep_alive)
        )
    (only,) = results
    status, reason, version, headers, body, done, keep_alive = only
    return status, reason, version, list(headers), body, done, keep_alive


def test_a_body_of_known_length() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Mixed-Case:  spaced value \r\n\r\nhello"
    assert read(answer) == (
        200,
        b"OK",
        b"HTTP/1.1",
        [(b"Content-Length", b"5"), (b"X-Mixed-Case", b"spaced value")],
        b"hello",
        True,
        True,
    )


def test_a_chunked_body_with_extensions_and_trailers() -> None:
    # The example of the chunked encoding on Wikipedia ("Chunked transfer encoding").
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4;name=value\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\n"
    )
    assert read(answer)[4:] == (b"Wikipedia in\r\n\r\nchunks.", True, True)


def test_a_body_until_the_server_closes() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nno length given"
    assert read(answer, close=True)[4:] == (b"no length given", True, False)
    assert parse(answer).done is False  # more may come until the connection closes


@pytest.mark.parametrize(
    ("answer", "head_request"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", True),
        (b"HTTP/1.1 204 No Content\r\n\r\n", False),
        (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", False),
    ],
)
def test_answers_without_a_body(answer: bytes, head_request: bool) -> None:
    assert read(answer, head_request=head_request)[4:] == (b"", True, True)


def test_interim_answers_are_skipped() -> None:
    answer = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
    )
    assert read(answer)[:2] == (201, b"Created")
    assert read(answer)[4] == b"ok"


@pytest.mark.parametrize(
    ("answer", "keep_alive"),
    [
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", False),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", False),
        (b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok", True),
    ],
)
def test_whether_the_connection_stays_open(answer: bytes, keep_alive: bool) -> None:
    assert read(answer)[6] is keep_alive


def test_folded_header_lines_are_joined_and_an_empty_reason_is_kept() -> None:
    answer = b"HTTP/1.1 200\r\nX-Long: one\r\n  two\r\nContent-Length: 0\r\n\r\n"
    status, reason, _, headers, *_ = read(answer)
    assert (status, reason, headers[0]) == (200, b"", (b"X-Long", b"one two"))


def test_bytes_after_the_answer_keep_the_answer_and_close_the_connection() -> None:
    parser = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA")
    assert parser.head is not None
    assert (parser.take(), parser.done, parser.head.keep_alive) == (b"ok", True, False)


@pytest.mark.parametrize(
    ("answer", "close", "message"),
    [
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", False, "not an HTTP/1 status line: b'SSH-2.0-OpenSSH_9.2'"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", False, "not an HTTP/1 status line"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", False, "not a header line: b'no colon here'"),
        (b"HTTP/1.1 200 OK\r\nName : space before colon\r\n\r\n", False, "not a header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", False, "two different Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", False, "not a Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", False, "not a chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", False, "longer than its size"),
        (b"", True, "the server closed the connection without answering"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", True, "the server closed the connection without answering"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", True, "before the end of the body"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", True, "before the end of the body"),
    ],
)
def test_broken_answers_are_protocol_errors(answer: bytes, close: bool, message: str) -> None:
    with pytest.raises(ProtocolError, match=message.replace("(", r"\(")):
        parse(answer, close=close)


def test_a_head_longer_than_the_limit_is_refused_before_it_ends() -> None:
    parser = Parser()
    parser.feed(b"HTTP/1.1 200 OK\r\n")
    with pytest.raises(ProtocolError, match=f"longer than {MAX_HEAD_BYTES} bytes"):
        for _ in range(MAX_HEAD_BYTES // 1000 + 2):
            parser.feed(b"X-Filler: " + b"x" * 988 + b"\r\n")


def test_transfer_codings_the_client_does_not_undo_are_refused() -> None:
    with pytest.raises(ProtocolError, match="transfer coding this client does not decode"):
        parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")


def test_a_chunk_size_must_be_hex_digits() -> None:
    with pytest.raises(ProtocolError, match="not a chunk size"):
        parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n")


def test_both_a_length_and_chunked_is_read_as_chunked_and_closes_the_connection() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    assert read(answer)[4:] == (b"ok", True, False)
