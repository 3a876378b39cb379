"""What the interviewer reads of a candidate's workspace, read-only: its file tree and each file's text, as it is
now or at a snapshot of the work history (history.py), and Markdown (NOTES.md) rendered. The console (a process on
the host, outside the candidate's sandbox) and the debrief read it through here only.

Anything in the workspace may be a trap. A symbolic link (it could point at the repository's answer key or the
hidden truth) is shown as a link and never followed: a path is opened one component at a time relative to the
folder before it, refusing links (O_NOFOLLOW), and the file opened must be a regular file whose resolved path is
still inside the workspace and that has no other hard link. At most MAX_FILE_BYTES of a file are read, and the
tree stops at MAX_ENTRIES. Markdown is rendered without raw HTML, and an image becomes a link (a page that shows
it loads nothing from elsewhere).
"""

from __future__ import annotations

import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml

from mlsandbox.errors import InvalidInput
from mlsandbox.sessions.history import History

MAX_FILE_BYTES = 256 * 1024
MAX_ENTRIES = 2000
MAX_DEPTH = 16
# Caches and tools' folders: nothing the candidate wrote.
SKIPPED = frozenset({"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".git", ".mypy_cache", ".ruff_cache"})
MARKDOWN_SUFFIXES = (".md", ".markdown")


class WorkspaceError(InvalidInput):
    """A path that cannot name a file of the workspace (absolute, or with `..`)."""


@dataclass(frozen=True)
class Entry:
    path: str  # relative to the workspace, '/'-separated
    kind: str  # "file", "dir", "link" or "other" (a fifo, a socket, a device, a submodule)
    size: int | None = None
    target: str | None = None  # a link's target as written (never followed)


@dataclass(frozen=True)
class Tree:
    entries: list[Entry]
    truncated: bool  # more than MAX_ENTRIES, or deeper than MAX_DEPTH

    def as_dict(self) -> dict:
        return {"entries": [asdict(e) for e in self.entries], "truncated": self.truncated}


@dataclass(frozen=True)
class FileView:
    path: str
    kind: str  # "file", "dir", "link", "other" or "missing"
    size: int | None = None
    text: str | None = None  # None: not shown (`problem` says why)
    html: str | None = None  # a Markdown file, rendered
    problem: str | None = None
    target: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


# --- Markdown ----------------------------------------------------------------------------------------------------


def _image_as_link(renderer, tokens, idx, options, env) -> str:
    token = tokens[idx]
    alt = renderer.renderInlineAsText(token.children or [], options, env) or token.attrGet("src")
    href = escapeHtml(str(token.attrGet("src")))
    return f'<a class="image" href="{href}" target="_blank" rel="noopener noreferrer">[image: {escapeHtml(alt)}]</a>'


def _link_open(renderer, tokens, idx, options, env) -> str:
    tokens[idx].attrSet("target", "_blank")
    tokens[idx].attrSet("rel", "noopener noreferrer")
    return renderer.renderToken(tokens, idx, options, env)


def render_markdown(text: str) -> str:
    """Markdown as HTML: CommonMark with tables, no raw HTML (escaped), links checked by markdown-it (no
    javascript:), opened elsewhere; images as links."""
    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    md.add_render_rule("image", _image_as_link)
    md.add_render_rule("link_open", _link_open)
    return md.render(text)


# --- the workspace as it is now ----------------------------------------------------------------------------------

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def parts_of(path: str) -> list[str]:
    """The components of a relative path inside the workspace; WorkspaceError for anything else."""
    if not path or "\0" in path or path.startswith("/") or len(path) > 4096:
        raise WorkspaceError(f"{path[:200]!r}: a path relative to the workspace")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise WorkspaceError(f"{path[:200]!r}: a path inside the workspace (no '..')")
    return parts


def tree(root: Path) -> Tree:
    """Every path of the workspace (caches aside), folders before their contents, links not followed."""
    entries: list[Entry] = []
    truncated = False
    try:
        top = os.open(root, _DIR)
    except OSError:
        return Tree([], False)

    def walk(fd: int, prefix: str, depth: int) -> None:
        nonlocal truncated
        with os.scandir(fd) as found:
            items = sorted(found, key=lambda e: e.name)
        for item in items:
            if item.name in SKIPPED:
                continue
            if len(entries) >= MAX_ENTRIES:
                truncated = True
                return
            path = prefix + item.name
            st = item.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                entries.append(Entry(path, "link", target=_readlink(item.name, fd)))
            elif stat.S_ISDIR(st.st_mode):
                entries.append(Entry(path, "dir"))
                if depth >= MAX_DEPTH:
                    truncated = True
                    continue
                try:
                    sub = os.open(item.name, _DIR, dir_fd=fd)
                except OSError:
                    continue  # swapped for a link meanwhile: not followed
                try:
                    walk(sub, path + "/", depth + 1)
                finally:
                    os.close(sub)
            elif stat.S_ISREG(st.st_mode):
                entries.append(Entry(path, "file", size=st.st_size))
            else:
                entries.append(Entry(path, "other"))

    try:
        walk(top, "", 0)
    finally:
        os.close(top)
    return Tree(entries, truncated)


def _readlink(name: str, fd: int) -> str:
    try:
        return os.readlink(name, dir_fd=fd)
    except OSError:
        return "?"


def read(root: Path, path: str) -> FileView:
    """One file of the workspace as it is now (see the module's docstring for what is refused)."""
    parts = parts_of(path)
    shown = "/".join(parts)
    try:
        fd = os.open(root, _DIR)
    except OSError:
        return FileView(shown, "missing", problem="the workspace is gone")
    fds = [fd]
    try:
        for part in parts[:-1]:
            try:
                fd = os.open(part, _DIR, dir_fd=fd)
            except FileNotFoundError:
                return FileView(shown, "missing", problem="no such file")
            except OSError:
                return FileView(shown, "missing", problem=f"{part} is a link or not a folder: not followed")
            fds.append(fd)
        name = parts[-1]
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return FileView(shown, "missing", problem="no such file")
        if stat.S_ISLNK(st.st_mode):
            return FileView(
                shown, "link", target=_readlink(name, fd), problem="a symbolic link: shown as such, never followed"
            )
        if stat.S_ISDIR(st.st_mode):
            return FileView(shown, "dir", problem="a folder")
        if not stat.S_ISREG(st.st_mode):
            return FileView(shown, "other", problem="not a regular file: not read")
        try:
            ffd = os.open(name, _FILE, dir_fd=fd)
        except OSError:
            return FileView(shown, "missing", problem="cannot be opened without following a link")
        fds.append(ffd)
        st = os.fstat(ffd)
        if not stat.S_ISREG(st.st_mode):
            return FileView(shown, "other", problem="not a regular file: not read")
        if st.st_nlink > 1:
            return FileView(
                shown, "other", size=st.st_size, problem=f"{st.st_nlink} hard links: not read (one may be outside)"
            )
        inside = Path(os.readlink(f"/proc/self/fd/{ffd}"))
        if not inside.is_relative_to(Path(root).resolve()):
            return FileView(shown, "other", problem="outside the workspace: not read")
        data = _read_at_most(ffd, MAX_FILE_BYTES + 1)
        return _view(shown, data, st.st_size)
    finally:
        for each in reversed(fds):
            os.close(each)


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks, left = [], limit
    while left > 0:
        chunk = os.read(fd, min(left, 65536))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _view(path: str, data: bytes, size: int) -> FileView:
    if b"\0" in data[:8192]:
        return FileView(path, "file", size=size, problem="a binary file: not shown")
    problem = None
    if len(data) > MAX_FILE_BYTES or size > MAX_FILE_BYTES:
        data = data[:MAX_FILE_BYTES]
        problem = f"{size:,} bytes: only the first {MAX_FILE_BYTES // 1024} KiB are shown"
    text = data.decode("utf-8", errors="replace")
    html = render_markdown(text) if path.lower().endswith(MARKDOWN_SUFFIXES) else None
    return FileView(path, "file", size=size, text=text, html=html, problem=problem)


# --- the workspace at a snapshot ---------------------------------------------------------------------------------


def tree_at(history: History, commit: str) -> Tree:
    """The workspace's tree at a snapshot (HistoryError for an unknown one)."""
    entries, truncated = [], False
    for p in history.paths_at(commit):
        if SKIPPED.intersection(p.path.split("/")):
            continue
        if len(entries) >= MAX_ENTRIES:
            truncated = True
            break
        target = history.read_object(p.object, 4096).decode("utf-8", "replace") if p.kind == "link" else None
        entries.append(Entry(p.path, p.kind, p.size, target))
    return Tree(entries, truncated)


def read_at(history: History, commit: str, path: str) -> FileView:
    """One file as a snapshot holds it."""
    shown = "/".join(parts_of(path))
    stored = next((p for p in history.paths_at(commit) if p.path == shown), None)
    if stored is None:
        return FileView(shown, "missing", problem="not in this snapshot")
    if stored.kind == "link":
        target = history.read_object(stored.object, 4096).decode("utf-8", "replace")
        return FileView(shown, "link", target=target, problem="a symbolic link: shown as such, never followed")
    if stored.kind != "file":
        return FileView(shown, stored.kind, problem="not a file")
    return _view(shown, history.read_object(stored.object, MAX_FILE_BYTES + 1), stored.size or 0)
