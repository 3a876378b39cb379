"""`mlsandbox kube ...`: what a session (or the machine's part) applies on a cluster, without a cluster."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Optional

import typer

from mlsandbox.config import KubeSettings
from mlsandbox.errors import MlsandboxError
from mlsandbox.sessions.manifests import session_manifests
from mlsandbox.stack.kubernetes.render import machine_objects, write_base_config, write_objects
from mlsandbox.stack.state import ScenarioPlay

from .common import SeedOpt, SpeedOpt, SurpriseOpt

kube_app = typer.Typer(
    no_args_is_help=True,
    help="Sessions on a cluster: the manifests they apply (`mlsandbox session start NAME --kubernetes` applies them).",
)


@kube_app.command("render")
def kube_render(
    name: Optional[str] = typer.Argument(None, help="The session's name (its namespace is mlsandbox-NAME)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write one YAML file per object into this folder."),
    candidate: Optional[Path] = typer.Option(None, "--candidate", help="Start from this folder, not the starter."),
    scenario: str = typer.Option("interview", "--scenario", help="A shipped scenario or a file."),
    seed: Optional[int] = SeedOpt,
    speed: float = SpeedOpt,
    surprise: bool = SurpriseOpt,
    no_load: bool = typer.Option(False, "--no-load", help="No player's Job."),
    scrape_interval: Optional[str] = typer.Option(None, "--scrape-interval", help="Prometheus's (default 5s)."),
    machine: bool = typer.Option(False, "--machine", help="The machine's part instead (MLflow, training, console)."),
    base: bool = typer.Option(
        False, "--base", help="Write deploy/kubernetes/session/config/ again from the files it is made of."
    ),
) -> None:
    """The objects a session would apply, fully rendered (its namespace, the workspace's first contents, a room's
    token drawn now, the scenario): one plain YAML file per object, numbered in the order they are applied, for
    review or GitOps. Settings (registry, tags, storage class, the rooms' Ingress host) from MLSANDBOX_KUBE_*."""
    if base:
        for path in write_base_config():
            typer.echo(f"wrote {path}")
        return
    if out is None:
        raise MlsandboxError("--out DIR: where the files go")
    kube = KubeSettings()
    if machine:
        objects = machine_objects(kube, console_token=secrets.token_urlsafe(24))
    elif name:
        play = None if no_load else ScenarioPlay(scenario=scenario, seed=seed, speed=speed, surprise=surprise)
        objects = session_manifests(name, candidate, play, kube, scrape_interval)
    else:
        raise MlsandboxError("name a session (or --machine)")
    paths = write_objects(objects, out)
    typer.echo(f"{len(paths)} objects in {out.resolve()} (apply in order: `kubectl apply -f {out}`)")
    secret = [p for p in paths if "-secret-" in p.name]
    if secret:
        typer.echo(f"{secret[0].name} holds a token drawn now: keep it out of a repository (a sealed secret, say)")
