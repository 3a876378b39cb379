"""A session's manifests without starting it (`mlsandbox kube render`): the objects `session start --kubernetes`
would apply, with the workspace it would start from (the starter or a given folder, the brief rendered for the
room, the docs that need no MLflow) and a room's token drawn for it; for review, or for GitOps."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path

from mlsandbox.config import KubeSettings, RoomSettings
from mlsandbox.layout import STARTER, Ports
from mlsandbox.sessions.brief import write_brief, write_docs
from mlsandbox.sessions.lifecycle import COPY_IGNORED
from mlsandbox.sessions.store import check_name, home_config
from mlsandbox.stack.kubernetes import render
from mlsandbox.stack.preflight import check_candidate, check_scenario
from mlsandbox.stack.state import ScenarioPlay


def session_manifests(
    name: str,
    source: Path | None,
    play: ScenarioPlay | None,
    kube: KubeSettings,
    scrape_interval: str | None = None,
) -> list[dict]:
    """Every object of session `name`, in the order they are applied (the player last, when a scenario is given)."""
    check_name(name)
    source = check_candidate(source or STARTER)
    if play is not None:
        check_scenario(play.scenario)
    room = RoomSettings(session=name, token=secrets.token_urlsafe(24))
    update = {"room": room, "ports": Ports.default()}
    if scrape_interval:
        update["scrape_interval"] = scrape_interval
    cfg = home_config().model_copy(update=update)
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / "workspace"
        shutil.copytree(source, workspace, ignore=COPY_IGNORED)
        write_brief(cfg, workspace, compose=True)
        # The model's training run and reference data set come from the cluster's MLflow when the session starts.
        write_docs(cfg, workspace, model=False)
        packed = render.workspace_archive(workspace)
    spec = render.SessionSpec(name, cfg, kube, packed, play.model_copy(update={"web_ui": False}) if play else None)
    return render.session_objects(spec)
