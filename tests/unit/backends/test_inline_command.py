"""Command tools run in their own process group, which is gone when the call ends, however it ends."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import anyio
import psutil
import pytest

from mcp_front.backends.inline_command import ProcessGroups, run_command

# Starts a grandchild in the same process group, records both pids, then does as told.
FAMILY = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
if sys.argv[2] == "linger":
    time.sleep(60)
print("done", flush=True)
"""


async def gone(pid: int) -> bool:
    """Whether `pid` has ended; SIGKILL takes effect soon after it is sent, not at once."""
    deadline = time.monotonic() + 5
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        await anyio.sleep(0.02)


async def pids_in(path: Path) -> list[int]:
    with anyio.fail_after(10):
        while not path.exists():
            await anyio.sleep(0.02)
    return [int(pid) for pid in path.read_text().split()]


async def test_a_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    groups = ProcessGroups()
    pids = tmp_path / "pids"
    started = time.monotonic()
    outcome = await run_command(
        [sys.executable, "-c", FAMILY, str(pids), "linger"], {}, time_limit=1.0, groups=groups
    )
    assert outcome.timed_out
    assert time.monotonic() - started < 10
    leader, grandchild = await pids_in(pids)
    assert await gone(leader)
    assert await gone(grandchild)
    assert len(groups) == 0


async def test_cancelling_the_call_kills_the_whole_group(tmp_path: Path) -> None:
    groups = ProcessGroups()
    pids = tmp_path / "pids"
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(
            lambda: run_command(
                [sys.executable, "-c", FAMILY, str(pids), "linger"], {}, time_limit=60, groups=groups
            )
        )
        leader, grandchild = await pids_in(pids)
        assert len(groups) == 1
        task_group.cancel_scope.cancel()
    assert await gone(leader)
    assert await gone(grandchild)
    assert len(groups) == 0


async def test_children_left_behind_do_not_hold_the_call_open(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    started = time.monotonic()
    outcome = await run_command(
        [sys.executable, "-c", FAMILY, str(pids), "exit"], {}, time_limit=30, groups=ProcessGroups()
    )
    assert outcome.returncode == 0
    assert outcome.stdout == b"done\n"
    assert time.monotonic() - started < 10
    _, grandchild = await pids_in(pids)
    assert await gone(grandchild)


async def test_kill_all_ends_running_commands(tmp_path: Path) -> None:
    groups = ProcessGroups()
    pids = tmp_path / "pids"
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(
            lambda: run_command(
                [sys.executable, "-c", FAMILY, str(pids), "linger"], {}, time_limit=60, groups=groups
            )
        )
        leader, grandchild = await pids_in(pids)
        groups.kill_all()
    assert await gone(leader)
    assert await gone(grandchild)


async def test_output_is_capped_and_the_rest_drained() -> None:
    script = "import sys; sys.stdout.write('x' * (3 << 20)); sys.stderr.write('e' * (3 << 20))"
    outcome = await run_command(
        [sys.executable, "-c", script], {}, time_limit=30, groups=ProcessGroups(), output_limit=1 << 20
    )
    assert outcome.returncode == 0
    assert outcome.truncated
    assert len(outcome.stdout) == 1 << 20
    assert len(outcome.stderr) == 1 << 20


async def test_exit_status_and_streams_are_reported() -> None:
    script = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    outcome = await run_command([sys.executable, "-c", script], {}, time_limit=30, groups=ProcessGroups())
    assert (outcome.returncode, outcome.stdout, outcome.stderr) == (3, b"out\n", b"err\n")
    assert not outcome.truncated


async def test_a_missing_program_is_an_os_error() -> None:
    with pytest.raises(FileNotFoundError):
        await run_command(["/nonexistent/tool"], {}, time_limit=5, groups=ProcessGroups())


async def test_the_capture_keeps_a_redaction_margin_past_the_limit() -> None:
    script = "import sys; sys.stdout.write('x' * 150); sys.stderr.write('e' * 120)"
    outcome = await run_command(
        [sys.executable, "-c", script],
        {},
        time_limit=30,
        groups=ProcessGroups(),
        output_limit=100,
        redaction_margin=30,
    )
    assert outcome.truncated
    assert outcome.stdout == b"x" * 130
    assert outcome.stderr == b"e" * 120


async def test_output_within_the_limit_is_not_truncated() -> None:
    outcome = await run_command(
        [sys.executable, "-c", "print('x' * 99, end='')"],
        {},
        time_limit=30,
        groups=ProcessGroups(),
        output_limit=100,
        redaction_margin=30,
    )
    assert not outcome.truncated
    assert outcome.stdout == b"x" * 99
