"""The ``qqproto`` command: the demo tells its story and exits 0."""

from __future__ import annotations

import subprocess
import sys

import pytest
from qqproto.adapters import cli, demo


def test_the_demo_delivers_every_message_once() -> None:
    lines: list[str] = []
    assert demo.run(lines.append) == 0
    text = "\n".join(lines)
    assert "-> Identify" in text
    assert '-> Resume    {"session_id": "demo-session", "seq": 3}' in text
    assert "<- #3 again: dropped, it was delivered before" in text
    # typed events, their text cleaned: the guild @bot gone, the group's leading space too
    assert "<- GROUP_AT_MESSAGE_CREATE #2: 'hello from a group'" in text
    assert "<- AT_MESSAGE_CREATE #4: 'sent while you were away'" in text
    assert "untyped" not in text and "!!" not in text  # no payload was refused
    assert "server asked to reconnect (op 7)" in text
    assert "close 4009 (session timed out)" in text
    assert (
        lines[-1]
        .strip()
        .startswith("Done: state READY; messages [2, 3, 4, 8] each delivered once.")
    )
    assert "DEMO-TOKEN" not in text


def test_the_command_runs_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo"]) == 0
    assert "Done: state READY" in capsys.readouterr().out


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["nonsense"])
    assert caught.value.code == 2
    assert "invalid choice: 'nonsense'" in capsys.readouterr().err


def test_python_dash_m_qqproto_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "qqproto", "demo"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("each delivered once.")
