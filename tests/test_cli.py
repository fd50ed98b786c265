"""The ``qqproto`` command: the demo tells its story and exits 0."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest

import qqproto
from qqproto.adapters import cli, demo, runner
from qqproto.adapters._story import STEP_DEADLINE
from qqproto.qq import Intents
from qqproto.qq.api import PRODUCTION_BASE_URL, SANDBOX_BASE_URL
from qqproto.testing import SimulatorConfig


@pytest.fixture(scope="module")
def demo_lines() -> list[str]:
    """The demo's story, told once for the tests that read it."""
    lines: list[str] = []
    assert demo.run(lines.append) == 0
    return lines


def test_the_demo_tells_the_whole_story_on_loopback(demo_lines: list[str]) -> None:
    text = "\n".join(demo_lines)
    assert "simulator at http://127.0.0.1:" in text
    assert "IDENTIFY -> READY (READY)" in text
    # typed events, their text cleaned: the guild @bot gone, the group's leading space too
    assert "<- GROUP_AT_MESSAGE_CREATE: 'hello from a group'" in text
    assert "<- AT_MESSAGE_CREATE: 'ping in a channel'" in text
    assert "redeliveries = 1" in text
    assert "READY -> RESUMING (close 1006" in text
    assert "server asked to reconnect (op 7)" in text
    assert "close 4009 (session timed out)" in text
    assert text.count("RESUMING -> READY (RESUMED)") == 3
    qq = text[: text.index("\nOneBot: ")]  # the QQ chapters; OneBot's follow
    assert qq.count("accepted") == 7 and "!!" not in qq
    assert "Done: 7 messages, each delivered once and answered; 1 Identify" in text
    assert demo.SECRET not in text


def test_the_demo_goes_on_with_a_onebot_chapter(demo_lines: list[str]) -> None:
    text = "\n".join(demo_lines)
    onebot = text[text.index("OneBot: a bot against a NapCat-like implementation at ws://") :]
    assert "speaking OneBot v11" in onebot
    assert "accepted (quoting it)" in onebot
    assert "(reported, not crashed on: an answer to a call that was answered already" in onebot
    assert "CONNECTED -> CONNECTING (nothing received for 2.5 s (heartbeats stopped))" in onebot
    assert "its outcome is unknown" in onebot and "!!" not in onebot
    assert (
        demo_lines[-1]
        .lstrip()
        .startswith("Done with OneBot: 5 messages, each delivered once and answered; 2 connections")
    )


def test_a_demo_whose_bot_fails_says_why_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    def wrong_secret(**options: Any) -> SimulatorConfig:
        return SimulatorConfig(**{**options, "secret": "not-the-demo-secret"})

    monkeypatch.setattr(demo, "SimulatorConfig", wrong_secret)
    lines: list[str] = []
    started = time.monotonic()
    assert demo.run(lines.append) == 1
    assert time.monotonic() - started < STEP_DEADLINE  # not a stall: the bot's failure
    assert lines[-1].startswith("\nFAILED: ") and "100016" in lines[-1]


def test_the_command_runs_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo"]) == 0
    assert "Done: 7 messages" in capsys.readouterr().out


def test_version_says_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"qqproto {qqproto.__version__}\n"


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
    assert "each delivered once and answered" in done.stdout


# -- qqproto qq run: arguments ------------------------------------------------------------

RUN = ["qq", "run", "--app-id", "102000000"]


def exit_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int | str | None, str]:
    with pytest.raises(SystemExit) as caught:
        cli.main(argv)
    return caught.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--secret", "s", "--shard", "1"], "argument --shard: expected I/N"),
        (["--secret", "s", "--shard", "2/2"], "argument --shard: expected 0 <= I < N, got 2/2"),
        (["--secret", "s", "--intents", "-1"], "argument --intents: expected a non-negative"),
        (["--secret", "s", "--intents", "lots"], "argument --intents: expected an integer"),
        (["--secret", "s", "--max-attempts", "0"], "argument --max-attempts: expected an integer"),
        (["--secret", "s", "--gateway-url", "http://x/"], "argument --gateway-url: expected"),
        (["--secret", "s", "--api-base", "ftp://x/"], "argument --api-base: expected"),
        (["--secret", "s", "--allow-from", ","], "argument --allow-from: expected"),
        (["--secret", "s", "--sandbox", "--api-base", "http://x/"], "--sandbox: not allowed"),
        ([], "argument --secret: required (or set QQPROTO_SECRET)"),
    ],
)
def test_bad_run_arguments_exit_2_naming_the_argument(
    extra: list[str],
    named: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("QQPROTO_SECRET", raising=False)
    code, err = exit_of([*RUN, *extra], capsys)
    assert code == 2
    assert named in err


def test_a_bad_config_value_names_its_option(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = exit_of(["qq", "run", "--app-id", "", "--secret", "s"], capsys)
    assert code == 2
    assert "qqproto qq run: error: argument --app-id: expected" in err


def test_the_app_id_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = exit_of(["qq", "run", "--secret", "s"], capsys)
    assert code == 2 and "--app-id" in err


def test_run_arguments_become_a_bot_config() -> None:
    args = cli.build_parser().parse_args(
        [*RUN, "--intents", "0x2000000", "--shard", "1/4", "--max-attempts", "3", "--sandbox"]
    )
    config = runner.config_from(args, "the-secret")
    assert (config.intents, config.shard, config.max_attempts) == (0x2000000, (1, 4), 3)
    assert config.api_base == SANDBOX_BASE_URL and config.gateway_url is None
    assert "the-secret" not in repr(config)
    default = runner.config_from(cli.build_parser().parse_args(RUN), "s")
    assert default.intents == int(Intents.default()) and default.shard == (0, 1)
    assert default.api_base == PRODUCTION_BASE_URL
