"""What a session's room holds beside the candidate's code: the brief rendered for the session, and a docs/ folder.

The brief's template is the level's brief (mlsandbox/levels/brief.py; the session keeps it in level/CANDIDATE.md),
for the mid level the starter's CANDIDATE.md, the shipped brief a person alone with `mlsandbox up` reads as it
is. For a room, the sections that speak of the machine (how to run things, where things are, what is
installed) are replaced by the room's own (templates/*.md.j2): its links, its ports, `reload-rules`, docs/ in
place of the repository's folders. When the improvement round starts, its point and deadline head the brief and
are written to IMPROVEMENT.md.

docs/ holds the model card, the API and the feature spec, and the model's reference data set and training run,
fetched from MLflow (the room does not reach MLflow).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import jinja2

from mlsandbox.config import StackConfig
from mlsandbox.errors import MlsandboxError
from mlsandbox.layout import REPO_ROOT, STARTER, Ports
from mlsandbox.levels.brief import sections
from mlsandbox.stack.room import SERVER_LOG, server_log

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)
BRIEF = "CANDIDATE.md"
IMPROVEMENT = "IMPROVEMENT.md"
# The shipped brief's sections a room replaces, by their heading.
ROOM_SECTIONS = {
    "Running it": "running.md.j2",
    "Where things are": "where.md.j2",
    "What's available": "available.md.j2",
}
MODEL_CARD = REPO_ROOT / "docs" / "model_card.md"
# The shipped brief's word on Grafana, which a room knows the answer to: it runs Grafana, or it does not.
GRAFANA_MODE = "In compose mode you can also build it in Grafana's UI and export it to `dashboards/`."
GRAFANA_IN_ROOM = {
    True: "You can also build it in Grafana's UI and export it to `dashboards/` (see *Running it*).",
    False: "This room has no Grafana: *your dashboards* (see *Running it*) draws the JSON live.",
}


def render(
    cfg: StackConfig,
    template: Path = STARTER / BRIEF,
    round_: dict | None = None,
    rows: int = 5000,
    compose: bool = False,
    grafana: bool = False,
) -> str:
    """The brief for a session's room (`round_`: the improvement round's point, minutes and deadline; `compose`:
    the room is a container of a compose project, where the services have their usual ports and Grafana runs)."""
    context = {
        "ports": Ports.default() if compose else cfg.ports,
        "scrape_interval": cfg.scrape_interval,
        "reference_rows": f"{rows:,}",
        "server_log": None if compose else server_log(cfg) if cfg.room else SERVER_LOG,
        "grafana": grafana,
    }
    out = []
    for heading, text in sections(template.read_text()):
        if heading in ROOM_SECTIONS:
            text = TEMPLATES.get_template(ROOM_SECTIONS[heading]).render(**context) + "\n"
        else:
            text = text.replace(GRAFANA_MODE, GRAFANA_IN_ROOM[grafana])
        if heading == "":
            text = text.replace("../docs/model_card.md", "docs/model_card.md")
            if round_ is not None:
                text += TEMPLATES.get_template("round.md.j2").render(**round_)
        out.append(text)
    brief = "".join(out)
    leftovers = re.findall(r"\.\./|make up|\.venv/bin/mlsandbox|compose mode", brief)
    if leftovers:  # a template's section renamed or added: the room's brief must not send the candidate off
        raise MlsandboxError(f"{template}: the room's brief still says {', '.join(sorted(set(leftovers)))}")
    return brief


def write_brief(
    cfg: StackConfig,
    workspace: Path,
    round_: dict | None = None,
    compose: bool = False,
    grafana: bool = False,
    template: Path = STARTER / BRIEF,
) -> None:
    """The room's CANDIDATE.md, rendered from `template` (the session's level's brief)."""
    (workspace / BRIEF).write_text(render(cfg, template, round_=round_, compose=compose, grafana=grafana))


def write_improvement(
    cfg: StackConfig,
    workspace: Path,
    point: str,
    minutes: float,
    compose: bool = False,
    grafana: bool = False,
    template: Path = STARTER / BRIEF,
) -> dict:
    """The improvement round in the room: IMPROVEMENT.md, and the brief headed by the point and the deadline."""
    deadline = time.strftime("%H:%M", time.localtime(time.time() + minutes * 60))
    how_long = f"{minutes:g} minute" + ("" if minutes == 1 else "s")
    round_ = {"point": point, "how_long": how_long, "deadline": deadline}
    (workspace / IMPROVEMENT).write_text(f"# The improvement round\n\nUntil {deadline} ({how_long}).\n\n{point}\n")
    write_brief(cfg, workspace, round_, compose, grafana, template)
    return round_


def write_docs(cfg: StackConfig, workspace: Path, mlflow_url: str | None = None, model: bool = True) -> None:
    """docs/: the model card, the API, the feature spec, and what MLflow holds of the model (its training run
    and reference data set; `mlflow_url`: how this process reaches MLflow, by default the settings' address;
    `model` off: not those two)."""
    from model_service.spec import default_spec

    docs = workspace / "docs"
    docs.mkdir(exist_ok=True)
    # The room does not reach MLflow: the card says where its contents are instead.
    card = MODEL_CARD.read_text().replace(
        "**MLflow** (http://127.0.0.1:5000)",
        "**MLflow** (the machine's: your server reaches it, your room does not; `docs/model.md` and "
        "`docs/reference.csv` hold what it keeps of the model)",
    )
    (docs / "model_card.md").write_text(card)
    (docs / "api.md").write_text(_api_section())
    (docs / "features.json").write_text(json.dumps(_features(default_spec()), indent=2) + "\n")
    if model:
        _model_docs(mlflow_url or cfg.mlflow_url, docs)


def _api_section() -> str:
    """The brief's own API section, as a page of its own."""
    api = dict(sections((STARTER / BRIEF).read_text())).get("The API", "")
    return "# The model server's API\n\n" + api.split("\n", 1)[1].lstrip() if api else ""


def _features(spec) -> dict:
    numeric = {
        name: {
            "kind": "numeric",
            "description": f.description,
            "dtype": f.dtype,
            "unit": f.unit,
            "expected": {"min": f.expected.min, "max": f.expected.max},
            "valid": {"min": f.valid.min, "max": f.valid.max},
        }
        for name, f in spec.numeric.items()
    }
    categorical = {
        name: {"kind": "categorical", "description": f.description, "levels": f.levels}
        for name, f in spec.categorical.items()
    }
    return {"features": {**numeric, **categorical}}


def _model_docs(mlflow_url: str, docs: Path) -> None:
    """The champion's training run (docs/model.md) and its reference data set (docs/reference.csv)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from model_service.settings import MODEL_ALIAS, MODEL_NAME
    from model_service.train import REFERENCE_ARTIFACT

    client = MlflowClient(tracking_uri=mlflow_url)
    version = client.get_model_version_by_alias(MODEL_NAME, MODEL_ALIAS)
    run = client.get_run(version.run_id)
    local = mlflow.artifacts.download_artifacts(
        run_id=version.run_id,
        artifact_path=REFERENCE_ARTIFACT,
        dst_path=str(docs / ".download"),
        tracking_uri=mlflow_url,
    )
    shutil.move(local, docs / "reference.csv")
    shutil.rmtree(docs / ".download", ignore_errors=True)
    metrics = "\n".join(f"| {k} | {v:.4g} |" for k, v in sorted(run.data.metrics.items()))
    params = "\n".join(f"| {k} | {v} |" for k, v in sorted(run.data.params.items()))
    (docs / "model.md").write_text(
        f"# The model: {MODEL_NAME}@{MODEL_ALIAS}, version {version.version}\n\n"
        f"Training run `{version.run_id}` (in MLflow; `GET /model` on the server gives the same id).\n\n"
        f"| metric | value |\n|---|---|\n{metrics}\n\n| parameter | value |\n|---|---|\n{params}\n\n"
        "`reference.csv` beside this file is the run's artifact `reference/reference.csv`: the holdout customers "
        "with their features, the true label `churned` and the model's `score`.\n"
    )
