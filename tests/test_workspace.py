"""The candidate's workspace as the console and the debrief read it, from a process on the host: links shown as
links and never followed (a file, a folder, a link inside the workspace pointing out), only regular files inside
it read, sizes capped, paths with `..` refused, snapshots of the work history read as git holds them, and Markdown
rendered without the candidate's HTML."""

from __future__ import annotations

import os

import pytest

from mlsandbox.sessions import workspace
from mlsandbox.sessions.history import History, HistoryError


@pytest.fixture
def trapped(tmp_path):
    """A workspace with traps: links to a secret outside it (a file and a folder), a hard link, a fifo."""
    secret = tmp_path / "answer-key"
    secret.mkdir()
    (secret / "main.py").write_text("THE ANSWER\n")
    root = tmp_path / "candidate"
    (root / "app").mkdir(parents=True)
    (root / "app" / "main.py").write_text("print('mine')\n")
    (root / "NOTES.md").write_text(
        "# Notes\n\n<script>alert(1)</script>\n[x](javascript:alert(1)) ![p](http://example.com/p.png)\n"
    )
    (root / "key.py").symlink_to(secret / "main.py")
    (root / "keys").symlink_to(secret)
    (root / "app" / "up.py").symlink_to("../../answer-key/main.py")
    os.link(secret / "main.py", root / "hard.py")
    os.mkfifo(root / "pipe")
    (root / "big.txt").write_text("x" * (workspace.MAX_FILE_BYTES + 10))
    (root / "blob.bin").write_bytes(b"\0\1\2")
    (root / "__pycache__").mkdir()
    return root


def test_the_workspace_tree_shows_links_as_links_and_follows_none(trapped):
    entries = {e.path: e for e in workspace.tree(trapped).entries}
    assert entries["key.py"].kind == "link" and entries["key.py"].target.endswith("answer-key/main.py")
    assert entries["keys"].kind == "link" and "keys/main.py" not in entries
    assert entries["app/up.py"].kind == "link" and entries["pipe"].kind == "other"
    assert entries["app/main.py"].kind == "file" and "__pycache__" not in entries


def test_only_plain_files_inside_the_workspace_are_read(trapped):
    for path in ("key.py", "keys/main.py", "app/up.py", "hard.py", "pipe"):
        view = workspace.read(trapped, path)
        assert view.text is None and "ANSWER" not in str(view), (path, view)
    assert workspace.read(trapped, "key.py").kind == "link"
    for path in ("../answer-key/main.py", "/etc/passwd", "app/../../answer-key/main.py", ""):
        with pytest.raises(workspace.WorkspaceError):
            workspace.read(trapped, path)
    assert workspace.read(trapped, "app/main.py").text == "print('mine')\n"
    big = workspace.read(trapped, "big.txt")
    assert len(big.text) == workspace.MAX_FILE_BYTES and "only the first" in big.problem
    assert workspace.read(trapped, "blob.bin").text is None


def test_notes_are_rendered_without_the_candidates_html_scripts_or_remote_images(trapped):
    html = workspace.read(trapped, "NOTES.md").html
    assert "<h1>Notes</h1>" in html and "<script" not in html and "&lt;script&gt;" in html
    assert "javascript:" not in html.replace("[x](javascript:alert(1))", "")
    assert "<img" not in html and 'href="http://example.com/p.png"' in html


def test_a_snapshot_is_read_as_git_holds_it_links_included(trapped, tmp_path):
    history = History(trapped, tmp_path / "history.git")
    history.init()
    first = history.snapshot("start")
    (trapped / "app" / "main.py").write_text("print('changed')\n")
    history.snapshot("edit")
    assert workspace.read_at(history, first, "app/main.py").text == "print('mine')\n"
    assert workspace.read(trapped, "app/main.py").text == "print('changed')\n"
    linked = workspace.read_at(history, first, "key.py")
    assert linked.kind == "link" and linked.text is None and linked.target.endswith("answer-key/main.py")
    paths = {e.path: e.kind for e in workspace.tree_at(history, first).entries}
    assert paths["app"] == "dir" and paths["keys"] == "link" and "keys/main.py" not in paths
    for bad in ("--output=/tmp/x", "HEAD~1", "deadbee"):
        with pytest.raises(HistoryError):
            workspace.tree_at(history, bad)
