from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mock_server.__main__ import banner, main, parse_args
from mock_server.profile import FIXTURES, ServerProfile

REPO = Path(__file__).resolve().parents[2]


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
