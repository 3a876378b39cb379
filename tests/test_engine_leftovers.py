"""What a private Docker engine killed without `down` leaves in the kernel: its containers' network namespaces,
mounted under its exec root, each with a veth end and an address still on the bridge of a network the machine's
image store keeps. The next engine releases those of dead engines only. Real namespaces (`unshare`), as root."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from mlsandbox.stack.docker.engine import release_dead_engines

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="mounting a network namespace needs root"
)


def _engine_root(base: Path, pid: int) -> Path:
    root = base / "run" / "docker"
    (root / "exec" / "netns").mkdir(parents=True)
    (root / "dockerd.pid").write_text(f"{pid}\n")
    netns = root / "exec" / "netns" / "0123456789ab"
    netns.touch()
    # As dockerd does for each container: a namespace of its own, kept by a bind mount of its nsfs file.
    subprocess.run(["unshare", f"--net={netns}", "true"], check=True)
    return root


def _mounted(path: Path) -> bool:
    return any(line.split()[4] == str(path) for line in Path("/proc/self/mountinfo").read_text().splitlines())


def test_a_dead_engines_namespaces_are_released_and_a_live_ones_kept(tmp_path):
    finished = subprocess.Popen(["true"])
    finished.wait()
    dead = _engine_root(tmp_path / "killed", finished.pid)
    live = _engine_root(tmp_path / "running", os.getpid())
    dead_ns, live_ns = dead / "exec/netns/0123456789ab", live / "exec/netns/0123456789ab"
    try:
        assert _mounted(dead_ns) and _mounted(live_ns)
        released = release_dead_engines()
        assert str(dead_ns) in released
        assert not _mounted(dead_ns)
        assert _mounted(live_ns) and str(live_ns) not in released
    finally:
        for path in (dead_ns, live_ns):
            for _ in range(3):
                if not _mounted(path):
                    break
                subprocess.run(["umount", str(path)], check=False)
                time.sleep(0.1)
