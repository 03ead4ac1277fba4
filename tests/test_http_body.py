"""A request body of known length received straight into the caller's buffer
(app/http_body.py): what gunicorn read ahead comes first, nothing past the body is taken, and
gunicorn's own read, readline and drain carry on from where readinto stopped."""

from __future__ import annotations

import socket

import pytest
from gunicorn.http.body import Body, ChunkedReader, LengthReader
from gunicorn.http.unreader import SocketUnreader

from app.http_body import DirectBody, direct


@pytest.fixture
def pair():
    ours, theirs = socket.socketpair()
    yield ours, theirs
    ours.close()
    theirs.close()


def _body(sock: socket.socket, length: int, ahead: bytes = b"") -> DirectBody:
    unreader = SocketUnreader(sock)
    if ahead:
        unreader.unread(ahead)  # as the worker hands over bytes read with the headers
    body = direct(Body(LengthReader(unreader, length)))
    assert isinstance(body, DirectBody)
    return body


def _into(body: DirectBody, size: int) -> bytes:
    buffer = bytearray(size)
    return bytes(buffer[: body.readinto(buffer)])


def test_read_ahead_bytes_come_first_and_the_next_request_is_left(pair):
    ours, theirs = pair
    theirs.sendall(b"fghNEXT")
    body = _body(ours, 8, ahead=b"abcde")
    assert _into(body, 4) == b"abcd"
    assert _into(body, 100) == b"efgh"  # filled up to the end of the body, across the socket
    assert _into(body, 100) == b""
    assert body.reader.unreader.read(4) == b"NEXT"


def test_a_buffer_is_filled_from_pieces_that_arrive_apart(pair):
    ours, theirs = pair
    body = _body(ours, 6)
    theirs.sendall(b"ab")
    buffer = bytearray(6)
    theirs.sendall(b"cd")
    theirs.sendall(b"ef")
    assert body.readinto(memoryview(buffer)) == 6 and buffer == b"abcdef"


def test_readline_read_and_readinto_share_one_position(pair):
    ours, theirs = pair
    theirs.sendall(b"first\nsecond line\n")
    body = _body(ours, 18)
    assert body.readline() == b"first\n"
    assert _into(body, 3) == b"sec"
    assert body.read(4) == b"ond "
    assert _into(body, 50) == b"line\n"
    assert body.read() == b""


def test_a_body_cut_short_ends_the_read(pair):
    ours, theirs = pair
    theirs.sendall(b"abc")
    theirs.shutdown(socket.SHUT_WR)
    body = _body(ours, 10)
    assert _into(body, 10) == b"abc"
    assert _into(body, 10) == b""


def test_a_failed_receive_marks_the_connection_unusable(pair):
    ours, _theirs = pair
    ours.settimeout(0.05)
    body = _body(ours, 10)
    with pytest.raises(TimeoutError):
        _into(body, 10)
    assert body.failed


def test_other_bodies_are_left_as_gunicorn_made_them(pair):
    ours, _theirs = pair
    chunked = Body(ChunkedReader(None, SocketUnreader(ours)))
    assert direct(chunked) is chunked
    assert direct(None) is None
