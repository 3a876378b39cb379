"""`mlsandbox docker ...`: the compose stack on whatever Docker engine answers (or a private one started here),
with locally built images where no registry can be reached, and grading of a session played on it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
from dotenv import dotenv_values

from .config import REPO_ROOT, StackConfig
from .docker_engine import Engine, EngineError, answers, connect
from .docker_stack import COMPOSE_FILE, DockerRun, DockerSandbox, DockerStackError, port_settings

docker_app = typer.Typer(
    no_args_is_help=True,
    help="The sandbox on Docker (compose.yaml), started and stopped "
    "by one command, with an engine and images made here when none can be had.",
)

RunDirOpt = typer.Option(None, "--run-dir", help="Where this stack's state and graded sessions live (default: run/).")
ProjectOpt = typer.Option("mlsandbox", "--project", help="Compose project name (names containers and volumes).")


def _run_dir(run_dir: Optional[Path]) -> Path:
    return (run_dir or StackConfig().run_dir).resolve()


def _state_path(run_dir: Path) -> Path:
    return run_dir / "docker-stack.json"


def _engine_root() -> Path:
    # One private engine per checkout (as one Docker daemon per machine), whatever --run-dir a sandbox uses:
    # its images are the cache that makes the second `up` fast.
    return StackConfig().run_dir.resolve() / "docker"


def _fail(message: str) -> None:
    typer.echo(f"mlsandbox docker: {message}", err=True)
    raise typer.Exit(1)


def _sandbox_from_state(run_dir: Path) -> tuple[DockerSandbox, DockerRun]:
    state = DockerRun.load(_state_path(run_dir)) or _plain_compose_up()
    if state is None:
        _fail(f"no Docker sandbox was started from {run_dir} (`mlsandbox docker up` starts one)")
    return state.sandbox(typer.echo), state


def _plain_compose_up() -> DockerRun | None:
    """A stack started with a plain `docker compose up`: project and candidate folder from .env, on the engine
    that answers by default; None when no such stack runs."""
    if not answers(None):
        return None
    env = dotenv_values(COMPOSE_FILE.parent / ".env")
    project = os.environ.get("COMPOSE_PROJECT_NAME") or env.get("COMPOSE_PROJECT_NAME") or "mlsandbox"
    candidate = os.environ.get("CANDIDATE_DIR") or env.get("CANDIDATE_DIR") or "./starter_repo"
    state = DockerRun(project, False, {"CANDIDATE_DIR": str((REPO_ROOT / candidate).resolve())}, None)
    sandbox = DockerSandbox(Engine(None, None), False, project, state.settings, typer.echo)
    return state if sandbox.containers() else None


@docker_app.command("up")
def docker_up(
    local_images: bool = typer.Option(
        False,
        "--local-images",
        help="No registry here: build the base, Prometheus and Alertmanager images locally, and leave Grafana out.",
    ),
    candidate: Path = typer.Option(REPO_ROOT / "starter_repo", "--candidate", help="The candidate's folder."),
    scenario: str = typer.Option("interview", "--scenario", help="The scenario the load service plays."),
    speed: float = typer.Option(1.0, "--speed", min=0.001, help="Time compression of the scenario."),
    surprise: bool = typer.Option(False, "--surprise", help="Draw hidden parameters from the seed."),
    project: str = ProjectOpt,
    run_dir: Optional[Path] = RunDirOpt,
) -> None:
    """Build the images, start the compose stack and wait until every service is healthy."""
    from load.scenario import ScenarioError, load_scenario

    try:
        load_scenario(scenario)
    except ScenarioError as exc:
        _fail(str(exc))
    if not (candidate / "app" / "main.py").is_file():
        _fail(f"{candidate} is not a candidate folder (no app/main.py)")
    rd = _run_dir(run_dir)
    settings = {
        "CANDIDATE_DIR": str(candidate.resolve()),
        "SCENARIO": scenario,
        "SCENARIO_SPEED": f"{speed:g}",
        "SCENARIO_SURPRISE": "true" if surprise else "false",
        **port_settings(),
    }
    try:
        engine = connect(_engine_root(), typer.echo)
        DockerRun(project, local_images, settings, str(engine.private.root) if engine.private else None).save(
            _state_path(rd)
        )
        sandbox = DockerSandbox(engine, local_images, project, settings, typer.echo)
        sandbox.build()
        typer.echo("starting the stack and waiting for every service to be healthy ...")
        seconds = sandbox.up()
        urls = {
            name: sandbox.published_url(name, port)
            for name, port in [
                ("model-server", 8000),
                ("prometheus", 9090),
                ("alertmanager", 9093),
                ("mlflow", 5000),
                ("load", 8089),
            ]
        }
    except (EngineError, DockerStackError) as exc:
        _fail(str(exc))
    typer.echo(f"\nThe sandbox is up on Docker ({seconds:.0f} s to healthy):")
    for name, url in urls.items():
        typer.echo(f"  {name:<15} {url}")
    if local_images:
        typer.echo("  (no Grafana: no image to be had without a registry)")
    typer.echo(
        f"\nCandidate folder: {settings['CANDIDATE_DIR']}\nGrade with `mlsandbox docker grade`; stop with "
        "`mlsandbox docker down` (add --volumes to delete the data)."
    )


@docker_app.command("down")
def docker_down(
    volumes: bool = typer.Option(False, "--volumes", help="Delete the volumes too (model, data, Prometheus history)."),
    keep_engine: bool = typer.Option(False, "--keep-engine", help="Leave a private engine running."),
    run_dir: Optional[Path] = RunDirOpt,
) -> None:
    """Stop the stack (and the private engine, when this sandbox started one)."""
    rd = _run_dir(run_dir)
    sandbox, state = _sandbox_from_state(rd)
    try:
        if answers(sandbox.engine.host):
            sandbox.down(volumes)
        # The private engine goes too, unless another project still has containers on it.
        if (
            sandbox.engine.private
            and not keep_engine
            and answers(sandbox.engine.host)
            and not sandbox.docker("ps", "-aq").stdout.strip()
        ):
            sandbox.engine.private.stop()
    except (EngineError, DockerStackError) as exc:
        _fail(str(exc))
    _state_path(rd).unlink(missing_ok=True)
    typer.echo("stopped" + (", volumes deleted" if volumes else "; volumes kept (`--volumes` deletes them)"))


@docker_app.command("status")
def docker_status(run_dir: Optional[Path] = RunDirOpt) -> None:
    """Each service's state: healthy, starting, unhealthy, done (the trainer) or exited."""
    sandbox, _ = _sandbox_from_state(_run_dir(run_dir))
    if not answers(sandbox.engine.host):
        _fail("the Docker engine does not answer")
    for service, state in sorted(sandbox.service_states().items()):
        typer.echo(f"{service:<15} {state}")


@docker_app.command("grade")
def docker_grade(
    grafana: Optional[str] = typer.Option(
        None,
        "--grafana",
        help="Grafana URL, credentials in it (http://admin:PASSWORD@127.0.0.1:3000); else dashboards come from files.",
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Where the report goes (default: RUN_DIR/docker-session/report)."
    ),
    run_dir: Optional[Path] = RunDirOpt,
) -> None:
    """Copy the scenario's truth and the prediction log out of the volumes, then grade as `mlsandbox grade` does."""
    from grading.cli import GradingFailed, run_grading

    rd = _run_dir(run_dir)
    sandbox, state = _sandbox_from_state(rd)
    try:
        session_dir = sandbox.collect_session(rd / "docker-session")
        prometheus = sandbox.published_url("prometheus", 9090)
        # Prometheus scrapes model-server:8000 on the compose network; the grader reaches it through its port.
        server = sandbox.published_url("model-server", 8000)
    except DockerStackError as exc:
        _fail(str(exc))
    try:
        _, data, out_dir = run_grading(
            session_dir,
            prometheus,
            candidate=Path(state.settings["CANDIDATE_DIR"]),
            grafana=grafana,
            out=out,
            say=typer.echo,
            server_address=server,
        )
    except GradingFailed as exc:
        typer.echo(f"mlsandbox docker grade: {exc}", err=True)
        raise typer.Exit(2)
    typer.echo(f"score {data['score']}% ({data['points']} of {data['max_points']}); report in {out_dir}")
    typer.echo(f"improve: {data['improvement']['text']}")
