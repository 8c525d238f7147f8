"""Each worker's own listening socket (mock_server/store/workers.py), without Redis: the
sockets a spawned worker gets, and the port checks that stay."""

from __future__ import annotations

import multiprocessing
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection

import pytest

from mock_server.cli import listening_socket
from mock_server.store.workers import _EachItsOwn, _own_sockets, reuses_port

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="SO_REUSEPORT balances connections on Linux only"
)


@contextmanager
def bound(*, listening: bool) -> Iterator[socket.socket]:
    """The socket the CLI binds for several workers (it listens), or a test harness's
    (`listening`; bound without the CLI, it listens too)."""
    sock = listening_socket("127.0.0.1", 0, workers=2)
    if listening:
        sock.listen()
    try:
        yield sock
    finally:
        sock.close()


def describe(sockets: list[socket.socket], answer: Connection) -> None:
    """In the spawned worker: what each socket it got is (its address, whether it listens,
    whether it reuses the port)."""
    answer.send(
        [
            (
                sock.getsockname(),
                bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)),
                reuses_port(sock),
            )
            for sock in sockets
        ]
    )


def in_a_spawned_worker(sockets: list[socket.socket]) -> list[tuple[object, bool, bool]]:
    """The sockets as a worker that uvicorn's supervisor spawns receives them (pickled)."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    worker = context.Process(target=describe, args=(sockets, theirs))
    worker.start()
    try:
        assert ours.poll(30), "the spawned worker said nothing in 30 s"
        got: list[tuple[object, bool, bool]] = ours.recv()
        return got
    finally:
        worker.join(10)
        if worker.is_alive():
            worker.kill()


def test_a_worker_serves_the_given_socket_and_one_of_its_own_beside_it() -> None:
    with bound(listening=False) as sock:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)  # it holds the port
        got = in_a_spawned_worker(_EachItsOwn([sock]))
        assert got == [(sock.getsockname(), True, True), (sock.getsockname(), False, True)]


def test_a_workers_own_socket_keeps_an_ipv6_socket_to_ipv6() -> None:
    given = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        given.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        given.bind(("::1", 0))
        given.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        given.listen()
    except OSError as exc:
        given.close()
        pytest.skip(f"no IPv6 loopback here: {exc}")
    try:
        own = _own_sockets([given])[1]
        try:
            assert own.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
        finally:
            own.close()
    finally:
        given.close()


def test_two_workers_sockets_share_the_port_and_the_kernel_spreads_connections() -> None:
    with bound(listening=False) as sock:
        # What each of two workers runs as it unpickles its sockets.
        own = [_own_sockets([sock])[1] for _ in range(2)]
        try:
            assert len(own) == 2
            for each in own:
                each.listen()
                each.setblocking(False)
            clients = [socket.create_connection(sock.getsockname(), timeout=5) for _ in range(40)]
            sock.setblocking(False)
            accepted = [0, 0, 0]
            for i, each in enumerate([*own, sock]):
                while True:
                    try:
                        conn, _ = each.accept()
                    except BlockingIOError:
                        break
                    conn.close()
                    accepted[i] += 1
            for client in clients:
                client.close()
            # Hashed over three sockets: none of 40 on one would be a (2/3)**40 chance.
            assert sum(accepted) == 40 and min(accepted) > 0, accepted
        finally:
            for each in own:
                each.close()


def test_a_port_a_server_of_several_workers_holds_is_refused_to_others() -> None:
    """SO_REUSEPORT is set after binding, and the socket listens: a second server on the same
    port, of several workers or one, fails to start instead of sharing the port (and its
    connections) with the first."""
    with bound(listening=False) as taken:
        port = taken.getsockname()[1]
        for workers in (2, 1):
            with pytest.raises(OSError):
                listening_socket("127.0.0.1", port, workers=workers)


def test_one_worker_leaves_the_port_to_itself() -> None:
    sock = listening_socket("127.0.0.1", 0)
    try:
        assert not reuses_port(sock)
    finally:
        sock.close()
