from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance.server import stop_process
from mock_server.cli import banner, listening_socket, main, parse_args
from mock_server.profile import FIXTURES, ServerProfile

REPO = Path(__file__).resolve().parents[2]
CI_PROFILE = FIXTURES / "server" / "ci.toml"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "mock_server", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_missing_profile_exits_2_with_a_message(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    result = run("--profile", str(missing))
    assert result.returncode == 2
    assert result.stderr.startswith("mock_server: ")
    assert "does not exist" in result.stderr
    assert str(missing) in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nclock = 'sundial'\n", "clock must be 'system' or 'manual'"),
        ("[auvy]\nstep_ms = 'fast'\n", "step_ms must be a non-negative integer"),
        ("[auvy]\nseed = 'nowhere.toml'\n", "cannot read seed world"),
        ("[server\n", "is not valid TOML"),
    ],
)
def test_bad_profiles_exit_2_in_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text)
    assert main(["--profile", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mock_server: ")
    assert message in err


def test_a_bad_seed_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed = tmp_path / "seed.toml"
    seed.write_text('[[keys]]\ntoken = "k"\nworkspace = "nowhere"\n')
    profile = tmp_path / "p.toml"
    profile.write_text(f'[auvy]\nseed = "{seed.as_posix()}"\n')
    assert main(["--profile", str(profile)]) == 2
    assert "key k names unknown workspace nowhere" in capsys.readouterr().err


def test_arguments() -> None:
    args = parse_args([])
    assert (args.host, args.port, args.api, args.fd) == ("127.0.0.1", 8080, None, None)
    assert args.profile == FIXTURES / "server" / "dev.toml"
    args = parse_args(["--port", "0", "--api", "auvy", "--profile", "x.toml", "--fd", "3"])
    assert (args.port, args.api, args.profile, args.fd) == (0, "auvy", Path("x.toml"), 3)


def test_an_unknown_api_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(["--api", "nope"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_the_banner_lists_urls_keys_and_pathways() -> None:
    profile = ServerProfile.load(FIXTURES / "server" / "ci.toml")
    text = banner("http://127.0.0.1:9999", profile, None)
    lines = text.splitlines()
    assert lines[0] == "mock_server listening on http://127.0.0.1:9999"
    assert f"  profile: {profile.source}" in lines
    assert "  auvy: http://127.0.0.1:9999/auvy" in lines
    for name in ("auvy", "ava", "strait"):
        url = f"http://127.0.0.1:9999/{name}"
        assert f"    docs {url}/docs  openapi {url}/openapi.json (or .yaml)" in lines
    assert any(line.startswith("  docs: http://127.0.0.1:9999/docs ") for line in lines)
    assert any("http://127.0.0.1:9999/openapi.json" in line for line in lines)
    assert any(line.startswith("  control: http://127.0.0.1:9999/_mock") for line in lines)
    for token in (
        "auvy_test_acme_rw",
        "auvy_test_acme_ro",
        "auvy_test_globex_rw",
        "auvy_test_initech_rw",
        "auvy_test_umbrella_rw",
    ):
        assert any(line.strip().startswith(f"key {token} ") for line in lines), token
    assert "    key auvy_test_acme_ro  workspace acme (read)" in lines
    pathways = [line for line in lines if line.strip().startswith("pathway ")]
    assert len(pathways) >= 8
    assert any("0b7e1f3a-2c4d-4e5f-8a9b-1c2d3e4f5a10" in line for line in pathways)
    assert any("trace trc_acme_support_0001 (acme)" in line for line in lines)


def test_the_banner_for_one_api_at_the_root() -> None:
    text = banner("http://127.0.0.1:1", ServerProfile.load(), "auvy")
    assert "  auvy: http://127.0.0.1:1" in text.splitlines()
    assert (
        "    docs http://127.0.0.1:1/docs  openapi http://127.0.0.1:1/openapi.json (or .yaml)"
        in (text.splitlines())
    )
    assert "/auvy" not in text.split("control:")[0].split("auvy:")[1]


def test_the_listening_socket_names_tcp_so_connections_get_nodelay() -> None:
    sock = listening_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
    finally:
        sock.close()


def test_a_port_already_taken_is_an_os_error_and_closes_the_socket() -> None:
    taken = listening_socket("127.0.0.1", 0)
    taken.listen()
    try:
        with pytest.raises(OSError):
            listening_socket("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


def test_keep_alive_responses_are_not_held_back_by_nagle() -> None:
    """Started with --port (not a harness's --fd), a keep-alive client's later requests answer
    as fast as the first: without TCP_NODELAY each body waited ~40 ms for a delayed ACK."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "mock_server", "--port", "0", "--profile", str(CI_PROFILE)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().decode()
        port = int(first.rsplit(":", 1)[1])
        with _connect_when_listening(port) as conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            took = sorted(_timed_get(conn, "/_mock/health") for _ in range(7))
        assert took[3] < 0.02, f"keep-alive request times: {took}"
    finally:
        stop_process(proc)
        if proc.stdout is not None:
            proc.stdout.close()


def _connect_when_listening(port: int) -> socket.socket:
    # The banner is printed after the bind, before uvicorn listens.
    deadline = time.monotonic() + 30
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=10)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _timed_get(conn: socket.socket, path: str) -> float:
    start = time.monotonic()
    conn.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[
            1
        ]
    )
    while len(body) < length:
        body += conn.recv(65536)
    return time.monotonic() - start
