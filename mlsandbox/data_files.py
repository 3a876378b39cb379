"""Configuration files that are data (the course, the incident causes): YAML read into a pydantic model, any
problem as one readable line naming the file, the line or the field at fault, and why."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def read_yaml_model(path: Path | str, model: type[M], error: type[Exception], what: str) -> M:
    """`path` read into `model`; raises `error` with `path[:line]: field: why` when it cannot be."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise error(f"{path}{f':{mark.line + 1}' if mark else ''}: not valid YAML") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(k) for k in err["loc"]) + ": " if err["loc"] else ""
        raise error(f"{path}: {where}{err['msg'].removeprefix('Value error, ')}") from None
