"""`mlsandbox up` interrupted with Ctrl-C (or SIGTERM) while it starts: every process it had started is stopped again (the
machine's MLflow and console with them, no other sandbox using them), the ports are free and no state is left
that would make the next `up` think a sandbox runs."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil
import pytest
from conftest import INTERRUPTED_PORTS
from driver import MLSANDBOX, Driver, copy_candidate, wait_for

from mlsandbox.layout import REPO_ROOT
from mlsandbox.stack.processes import port_is_free
from mlsandbox.stack.state import SandboxState

pytestmark = pytest.mark.stack
PORTS = INTERRUPTED_PORTS


def _processes_of(run_dir) -> list[int]:
    return [p.pid for p in psutil.process_iter(["cmdline"]) if str(run_dir) in " ".join(p.info["cmdline"] or [])]


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_a_sigterm_during_up_leaves_no_process_no_port_and_no_state(tmp_path, stop_signal):
    """SIGTERM (a CI timeout, `kill`) is taken as Ctrl-C."""
    s = Driver(tmp_path / "run", PORTS, copy_candidate(REPO_ROOT / "starter_repo", tmp_path / "candidate"))
    up = subprocess.Popen(
        [*MLSANDBOX, "up", "--candidate", str(s.candidate), "--no-load"],
        env=s.env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ctrl_c_default,
    )
    try:
        # Interrupted once Prometheus has been started and MLflow is starting beside it (the three components that
        # need nothing else start first, MLflow and the console right after): at least four processes to stop.
        def started() -> bool:
            if up.poll() is not None:  # `up` ended before it could be interrupted: say why
                raise AssertionError(f"up exited {up.returncode} first:\n{up.stdout.read()}\n{up.stderr.read()}")
            st = SandboxState.load(s.layout)
            return (
                st is not None
                and any(c.name == "prometheus" for c in st.components)
                and len(_processes_of(s.run_dir)) >= 4
            )

        # A deadline for a loaded machine (parallel plays): MLflow alone has taken a minute to start there.
        wait_for(started, 300, 0.1, "Prometheus and MLflow to be started")
        up.send_signal(stop_signal)
        out, err = up.communicate(timeout=300)
    finally:
        if up.poll() is None:  # the test failed before `up` ended: stop it, and what it started, all the same
            up.terminate()
            try:
                up.wait(timeout=120)
            except subprocess.TimeoutExpired:
                up.kill()
            s.cli("down", check=False)
    assert up.returncode != 0
    assert "stopping what was started" in out + err
    time.sleep(0.5)
    assert _processes_of(s.run_dir) == []
    assert [p for _, p in PORTS.items() if not port_is_free("127.0.0.1", p)] == []
    assert not s.layout.state.exists() and not s.layout.machine.exists()
    again = s.cli("status")
    assert "not running" in again.stdout


def _ctrl_c_default() -> None:
    # As from a terminal: a test run started in the background of a shell without job control inherits SIGINT
    # ignored, and so would the command under test.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


HELD_BLOCK = """
import os, signal, sys, time
from mlsandbox.stack.processes import interrupts_held
done = []
try:
    with interrupts_held():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler has run by now; the block goes on
        done.append("recorded")
except KeyboardInterrupt:
    print("raised after", done, signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    sys.exit(0)
print("not raised", done)
"""


def test_ctrl_c_inside_a_held_block_is_raised_once_the_block_is_over():
    # In a process of its own: a test worker's own signal handling is not what is checked here.
    result = subprocess.run(
        [sys.executable, "-c", HELD_BLOCK], capture_output=True, text=True, timeout=60, preexec_fn=_ctrl_c_default
    )
    assert result.stdout.strip() == "raised after ['recorded'] True", (result.stdout, result.stderr)
