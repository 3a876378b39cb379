"""Where a scenario's traffic goes: one model server (the usual case) or several at once (`mlsandbox
calibrate`), each with the run directory its share of the hidden truth is written to and its fault switch.

A targets file is JSON, a list of targets; read and validated here only.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from model_service.settings import ServiceSettings


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    url: str  # the model server's base URL
    run_dir: Path  # its timeline copy and its own ledger go to run_dir/scenario/
    faults_path: Path | None = None  # default: where the model server started on run_dir reads them

    @property
    def fault_switch(self) -> Path:
        return self.faults_path or ServiceSettings(run_dir=self.run_dir).faults_path


class TargetsError(ValueError):
    """A targets file that cannot be used; str() is one readable line."""


_TARGETS = TypeAdapter(list[Target])


def read_targets(path: Path) -> list[Target]:
    try:
        targets = _TARGETS.validate_python(json.loads(Path(path).read_text()))
    except OSError as exc:
        raise TargetsError(f"{path}: cannot read the targets file ({exc.strerror})") from None
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            err = exc.errors()[0]
            raise TargetsError(f"{path}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
        raise TargetsError(f"{path}: not valid JSON ({exc})") from None
    if not targets:
        raise TargetsError(f"{path}: no target")
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise TargetsError(f"{path}: target names must differ ({', '.join(names)})")
    return targets


def write_targets(path: Path, targets: list[Target]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_TARGETS.dump_json(targets, indent=2).decode())
