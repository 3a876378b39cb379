"""Configuration files that are data (the course, the incident causes, the scorecard, the levels): YAML read into a
pydantic model, any problem as one readable line naming the file, the line or the field at fault, and why."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from load.scenario import line_of

M = TypeVar("M", bound=BaseModel)


def read_yaml_model(path: Path | str, model: type[M], error: type[Exception], what: str, lines: bool = False) -> M:
    """`path` read into `model`; raises `error` with `path[:line]: field: why` when it cannot be (`lines`: the
    line of the field at fault too, `path:line: field: why`)."""
    path = Path(path)
    try:
        text = path.read_text()
        data = yaml.safe_load(text)
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise error(f"{path}{f':{mark.line + 1}' if mark else ''}: not valid YAML") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        if lines:
            raise error(located(path, text, err["loc"], msg)) from None
        where = ".".join(str(k) for k in err["loc"]) + ": " if err["loc"] else ""
        raise error(f"{path}: {where}{msg}") from None


def located(path: Path, text: str, loc: tuple, msg: str) -> str:
    """`path:line: field: why` for the field at `loc` in the YAML `text` (the line of its closest existing parent
    when it is missing)."""
    line = line_of(yaml.compose(text), tuple(loc))
    field = ".".join(str(k) for k in loc) or "(top level)"
    return f"{path}{f':{line}' if line else ''}: {field}: {msg}"
