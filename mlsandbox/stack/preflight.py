"""What every backend checks before it starts anything: the candidate's folder, the scenario, the system's
binaries. Each refusal is one line."""

from __future__ import annotations

import shutil
from pathlib import Path

from load.player import PhaseError, phase_index
from load.scenario import ScenarioError, load_scenario
from mlsandbox.errors import MlsandboxError

# Binaries the native stack needs from the system, and the Debian package that brings each.
SYSTEM_BINARIES = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "amtool": "prometheus-alertmanager",
    "prometheus-alertmanager": "prometheus-alertmanager",
}


def check_scenario(name_or_path: str, from_phase: str | None = None) -> None:
    """The scenario loads (and has the phase to start from); MlsandboxError naming the file, line and field."""
    try:
        scenario = load_scenario(name_or_path)
        if from_phase is not None:
            phase_index(scenario, from_phase)
    except (ScenarioError, PhaseError) as exc:
        raise MlsandboxError(str(exc)) from None


def check_candidate(candidate: Path) -> Path:
    """The candidate's folder, resolved, when it holds a server (app/main.py)."""
    candidate = candidate.resolve()
    if not (candidate / "app" / "main.py").exists():
        raise MlsandboxError(f"{candidate} is not a candidate folder: it has no app/main.py")
    return candidate


def require_binaries() -> None:
    missing = [b for b in SYSTEM_BINARIES if shutil.which(b) is None]
    if missing:
        packages = sorted({SYSTEM_BINARIES[b] for b in missing})
        raise MlsandboxError(
            f"{', '.join(missing)} not found: install with `sudo apt-get install "
            f"{' '.join(packages)}` (or run `make up`, which does it)"
        )
