"""The candidate's work history: snapshots of a session's workspace in a git repository kept beside it (its
git directory in the session's folder, never inside the workspace), committed whenever a file changed.

`python -m mlsandbox.sessions.history WORKSPACE GIT_DIR --every SECONDS` runs for the whole session and commits at most
once per interval (with `--session NAME`, a session on a cluster, it copies the room's workspace out first); the session takes a snapshot of its own at start, at the improvement round and at the end.
Nothing is written into the workspace, so the model server's reload never sees a snapshot.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlsandbox.errors import MlsandboxError

DEFAULT_INTERVAL_SECONDS = 30.0
IGNORED = ["__pycache__/", "*.pyc", ".pytest_cache/", ".ipynb_checkpoints/"]


class HistoryError(MlsandboxError):
    pass


@dataclass(frozen=True)
class Snapshot:
    commit: str
    time: float
    message: str
    files: list[str]


@dataclass(frozen=True)
class StoredPath:
    """A path of the workspace as a snapshot holds it (git's view: a link is its target's text, never followed)."""

    path: str
    kind: str  # "file", "dir", "link" or "other" (a submodule)
    object: str
    size: int | None


COMMIT = re.compile(r"^[0-9a-f]{7,40}$")
_KINDS = {"100644": "file", "100755": "file", "120000": "link", "040000": "dir"}


class History:
    def __init__(self, workspace: Path, git_dir: Path):
        self.workspace, self.git_dir = workspace.resolve(), git_dir.resolve()

    def _git(self, *args: str, check: bool = True) -> str:
        env = {
            **os.environ,
            "GIT_DIR": str(self.git_dir),
            "GIT_WORK_TREE": str(self.workspace),
            "GIT_AUTHOR_NAME": "mlsandbox",
            "GIT_AUTHOR_EMAIL": "mlsandbox@localhost",
            "GIT_COMMITTER_NAME": "mlsandbox",
            "GIT_COMMITTER_EMAIL": "mlsandbox@localhost",
        }
        result = subprocess.run(
            ["git", *args], env=env, capture_output=True, text=True, errors="replace", cwd=self.workspace
        )
        if check and result.returncode != 0:
            raise HistoryError(f"git {args[0]} failed: {(result.stderr or result.stdout).strip()}")
        return result.stdout

    def init(self) -> None:
        if (self.git_dir / "HEAD").exists():
            return
        self.git_dir.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "--quiet", "--bare", str(self.git_dir)], check=True, capture_output=True)
        self._git("config", "core.bare", "false")
        (self.git_dir / "info").mkdir(exist_ok=True)
        (self.git_dir / "info" / "exclude").write_text("\n".join(IGNORED) + "\n")

    def snapshot(self, message: str, attempts: int = 5) -> str | None:
        """Commit the workspace as it is now when anything changed since the last snapshot; the commit's id.
        Retried while the watcher holds git's index lock."""
        for attempt in range(attempts):
            try:
                return self._snapshot(message)
            except HistoryError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.5)
        return None

    def _snapshot(self, message: str) -> str | None:
        self._git("add", "--all")
        if not self._git("status", "--porcelain"):
            return None
        self._git("commit", "--quiet", "--no-verify", "-m", message)
        return self.head()

    def head(self) -> str | None:
        out = self._git("rev-parse", "--verify", "--quiet", "HEAD", check=False).strip()
        return out or None

    def log(self) -> list[Snapshot]:
        """Every snapshot, oldest first, with the files it changed."""
        if self.head() is None:
            return []
        out = self._git("log", "--reverse", "--name-only", "--format=\x1e%H\x1f%ct\x1f%s")
        snaps = []
        for block in out.split("\x1e")[1:]:
            head, *files = block.strip("\n").split("\n")
            commit, when, message = head.split("\x1f")
            snaps.append(Snapshot(commit, float(when), message, [f for f in files if f]))
        return snaps

    def diff(self, since: str, until: str | None = None) -> str:
        """What changed in the workspace between two snapshots (until the last one by default)."""
        return self._git("diff", since, until or "HEAD")

    def changed_files(self, since: str, until: str | None = None) -> list[str]:
        return [f for f in self._git("diff", "--name-only", since, until or "HEAD").splitlines() if f]

    # --- reading a snapshot (the console's slider, the debrief) -----------------------------------------------

    def commit(self, given: str) -> str:
        """The full id of the snapshot `given` names (hex only: never an option or a revision expression)."""
        if not COMMIT.match(given or ""):
            raise HistoryError(f"{given!r} is not a snapshot's id")
        found = self._git("rev-parse", "--verify", "--quiet", f"{given}^{{commit}}", check=False).strip()
        if not found:
            raise HistoryError(f"no snapshot {given!r} in this session's history")
        return found

    def paths_at(self, commit: str) -> list[StoredPath]:
        """Every path of the workspace at a snapshot, folders included, in git's order."""
        out = self._git("ls-tree", "-r", "-t", "-l", "-z", "--full-tree", self.commit(commit))
        found = []
        for record in filter(None, out.split("\0")):
            meta, path = record.split("\t", 1)
            mode, _, obj, size = meta.split()
            found.append(StoredPath(path, _KINDS.get(mode, "other"), obj, None if size == "-" else int(size)))
        return found

    def read_object(self, obj: str, limit: int) -> bytes:
        """The first `limit` bytes of a stored file (a candidate's file may be large: the rest is never read)."""
        if not re.fullmatch(r"[0-9a-f]{40,64}", obj):
            raise HistoryError(f"{obj!r} is not an object id")
        env = {**os.environ, "GIT_DIR": str(self.git_dir)}
        with subprocess.Popen(
            ["git", "cat-file", "blob", obj], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        ) as proc:
            data = proc.stdout.read(limit)
            proc.kill()
        return data


def watch(history: History, every: float, pull: Callable[[], None] | None = None) -> None:
    """Snapshot every `every` seconds; `pull` first brings the workspace up to date (a room on a cluster)."""
    history.init()
    while True:
        try:
            if pull is not None:
                pull()
            history.snapshot("saved during the session")
        except MlsandboxError:
            pass  # a file half-written while git read it, a cluster not answering: the next round takes it
        time.sleep(every)


def pull_from(session: str, workspace: Path) -> Callable[[], None]:
    """The session's room's workspace copied into `workspace` (its sandbox's pull_workspace)."""
    from mlsandbox.sessions.store import load
    from mlsandbox.stack.backends import open_sandbox

    def pull() -> None:
        sandbox = open_sandbox(load(session).config, say=lambda _: None)
        if sandbox is not None:
            sandbox.pull_workspace(workspace)

    return pull


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("git_dir", type=Path)
    parser.add_argument("--every", type=float, default=DEFAULT_INTERVAL_SECONDS)
    parser.add_argument("--session", help="Copy this session's workspace out of its room first (on a cluster).")
    args = parser.parse_args(argv)
    pull = pull_from(args.session, args.workspace) if args.session else None
    watch(History(args.workspace, args.git_dir), args.every, pull)


if __name__ == "__main__":
    main()
