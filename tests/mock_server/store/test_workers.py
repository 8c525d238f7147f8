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
    """A socket as the CLI (`listening=False`) or a test harness (`listening=True`) binds it."""
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


def test_a_worker_gets_a_socket_of_its_own_beside_the_clis_which_only_holds_the_port() -> None:
    with bound(listening=False) as sock:
        got = in_a_spawned_worker(_EachItsOwn([sock]))
        # The CLI's socket never listens (a worker listening on it would accept from it too):
        # the worker closed its copy, and binds one of its own to the same address.
        assert got == [(sock.getsockname(), False, True)]


def test_a_worker_also_serves_a_socket_that_already_listens() -> None:
    """A harness's socket listens before the server is up: connections may wait there."""
    with bound(listening=True) as sock:
        got = in_a_spawned_worker(_EachItsOwn([sock]))
        assert got == [(sock.getsockname(), True, True), (sock.getsockname(), False, True)]


def test_two_workers_sockets_share_the_port_and_the_kernel_spreads_connections() -> None:
    with bound(listening=False) as sock:
        # What each of two workers runs as it unpickles its sockets (on a copy of the CLI's).
        own = [s for _ in range(2) for s in _own_sockets([sock.dup()])]
        try:
            assert len(own) == 2
            for each in own:
                each.listen()
                each.setblocking(False)
            clients = [socket.create_connection(sock.getsockname(), timeout=5) for _ in range(40)]
            accepted = [0, 0]
            for i, each in enumerate(own):
                while True:
                    try:
                        conn, _ = each.accept()
                    except BlockingIOError:
                        break
                    conn.close()
                    accepted[i] += 1
            for client in clients:
                client.close()
            # Hashed over two sockets: all 40 on one would be a 1 in 2**39 chance.
            assert sum(accepted) == 40 and min(accepted) > 0, accepted
        finally:
            for each in own:
                each.close()


def test_a_port_another_server_of_several_workers_holds_is_still_refused() -> None:
    """SO_REUSEPORT is set after binding: a second server on the same port fails to start
    instead of sharing the port (and its connections) with the first."""
    with bound(listening=True) as taken, pytest.raises(OSError):
        listening_socket("127.0.0.1", taken.getsockname()[1], workers=2)


def test_one_worker_leaves_the_port_to_itself() -> None:
    sock = listening_socket("127.0.0.1", 0)
    try:
        assert not reuses_port(sock)
    finally:
        sock.close()
