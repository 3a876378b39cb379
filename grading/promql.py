"""What a PromQL expression reads and what an alert compares, from its syntax tree (promql-parser), never from
regular expressions: the metric names it selects, those names resolved through recording rules to the
scraped metrics underneath, and the value side of an alert condition (the operand held against a threshold,
e.g. `accuracy` in `accuracy < 0.7 and labels >= 50`)."""

from __future__ import annotations

from collections.abc import Iterator

import promql_parser as pp

COMPARISONS = {"==", "!=", ">", "<", ">=", "<="}
FILTERS = {"and", "unless"}


def parse(expr: str):
    """The syntax tree; ValueError (promql-parser's) when the expression is not PromQL."""
    return pp.parse(expr)


def _children(node) -> Iterator:
    if isinstance(node, pp.BinaryExpr):
        yield node.lhs
        yield node.rhs
    elif isinstance(node, (pp.ParenExpr, pp.UnaryExpr, pp.SubqueryExpr)):
        yield node.expr
    elif isinstance(node, pp.AggregateExpr):
        if node.param is not None:
            yield node.param
        yield node.expr
    elif isinstance(node, pp.Call):
        yield from node.args
    elif isinstance(node, pp.MatrixSelector):
        yield node.vector_selector


def walk(node) -> Iterator:
    yield node
    for child in _children(node):
        yield from walk(child)


def _name(selector) -> str | None:
    if selector.name:
        return selector.name
    for m in selector.matchers.matchers:
        if m.name == "__name__" and str(m.op).endswith("Equal") and "Not" not in str(m.op):
            return m.value
    return None


def selected(expr: str) -> set[str]:
    """The metric names an expression selects ({} when it is not valid PromQL)."""
    try:
        tree = parse(expr)
    except ValueError:
        return set()
    return {n for node in walk(tree) if isinstance(node, pp.VectorSelector) and (n := _name(node))}


def resolve(names: set[str], records: dict[str, str], _seen: frozenset[str] = frozenset()) -> set[str]:
    """Names with every recording rule's output replaced by what its expression reads, recursively."""
    out: set[str] = set()
    for name in names:
        if name in records and name not in _seen:
            out |= resolve(selected(records[name]), records, _seen | {name})
        else:
            out.add(name)
    return out


def _is_scalar(node) -> bool:
    if isinstance(node, pp.NumberLiteral):
        return True
    if isinstance(node, (pp.ParenExpr, pp.UnaryExpr)):
        return _is_scalar(node.expr)
    if isinstance(node, pp.BinaryExpr):
        return _is_scalar(node.lhs) and _is_scalar(node.rhs)
    if isinstance(node, pp.Call):
        return node.func.return_type == pp.ValueType.Scalar
    return False


def _unparen(node):
    while isinstance(node, pp.ParenExpr):
        node = node.expr
    return node


def _value_sides(node) -> list:
    node = _unparen(node)
    if isinstance(node, pp.BinaryExpr):
        op = str(node.op).strip()
        if op in FILTERS:
            return _value_sides(node.lhs)
        if op == "or":
            return _value_sides(node.lhs) + _value_sides(node.rhs)
        returns_bool = node.modifier is not None and node.modifier.return_bool
        if op in COMPARISONS and not returns_bool:
            lhs, rhs = _unparen(node.lhs), _unparen(node.rhs)
            side = rhs if _is_scalar(lhs) and not _is_scalar(rhs) else lhs
            inner = _value_sides(side)
            # `count(x > 0.3) > 2`: the operand is itself a filter's count; the value is the count.
            return inner if isinstance(side, pp.BinaryExpr) and str(side.op).strip() in COMPARISONS else [side]
    return [node]


def value_sides(expr: str) -> list[str]:
    """The operands an alert condition holds against its thresholds, as PromQL ([] when not PromQL)."""
    try:
        tree = parse(expr)
    except ValueError:
        return []
    out = []
    for side in _value_sides(tree):
        text = str(side)
        if text not in out and not _is_scalar(side):
            out.append(text)
    return out


def normalized(expr: str) -> str:
    """One spelling per expression (whitespace and redundant {} aside), to tell repeated signals apart."""
    try:
        return str(parse(expr))
    except ValueError:
        return " ".join(expr.split())


def _scalar_value(node) -> float | None:
    """The number a scalar expression of literals stands for (`0.25`, `-1`, `14.4 * 0.001`); None otherwise."""
    node = _unparen(node)
    if isinstance(node, pp.NumberLiteral):
        return float(node.val)
    if isinstance(node, pp.UnaryExpr):
        inner = _scalar_value(node.expr)
        return None if inner is None else -inner
    if isinstance(node, pp.BinaryExpr):
        lhs, rhs = _scalar_value(node.lhs), _scalar_value(node.rhs)
        if lhs is None or rhs is None:
            return None
        op = str(node.op).strip()
        arithmetic = {"+": lhs + rhs, "-": lhs - rhs, "*": lhs * rhs}
        if op in arithmetic:
            return arithmetic[op]
        if op == "/" and rhs:
            return lhs / rhs
    return None


def _thresholds(node) -> list[float]:
    node = _unparen(node)
    if isinstance(node, pp.BinaryExpr):
        op = str(node.op).strip()
        if op in FILTERS:
            return _thresholds(node.lhs)
        if op == "or":
            return _thresholds(node.lhs) + _thresholds(node.rhs)
        if op in COMPARISONS and not (node.modifier is not None and node.modifier.return_bool):
            values = [v for v in (_scalar_value(node.lhs), _scalar_value(node.rhs)) if v is not None]
            return values + _thresholds(node.lhs) + _thresholds(node.rhs)
    return []


def thresholds(expr: str) -> list[float]:
    """The numbers an alert condition holds its value sides against (not its filters'): `[0.7]` for
    `accuracy < 0.7 and labels >= 50`; [] when not PromQL."""
    try:
        return _thresholds(parse(expr))
    except ValueError:
        return []


def filters(expr: str) -> list[tuple[str, str]]:
    """The operands an alert condition is filtered by, with their operator: `and` (the condition holds only where
    the operand has a value) or `unless` (only where it has none). `[("labels >= 50", "and")]` for
    `accuracy < 0.7 and labels >= 50`; [] when not PromQL."""
    out: list[tuple[str, str]] = []

    def visit(node) -> None:
        node = _unparen(node)
        if isinstance(node, pp.BinaryExpr) and str(node.op).strip() in FILTERS:
            visit(node.lhs)
            out.append((str(node.rhs), str(node.op).strip()))

    try:
        visit(parse(expr))
    except ValueError:
        return []
    return out


RANGE_FUNCTIONS = {"rate", "irate", "increase", "delta", "idelta", "deriv", "changes", "resets"} | {
    f"{f}_over_time" for f in ("avg", "sum", "count", "min", "max", "last", "quantile", "stddev", "stdvar", "present")
}


def _windowed(node) -> bool:
    """Whether a subtree aggregates over a window: a range function of a range (or subquery)."""
    return any(
        isinstance(n, pp.Call)
        and n.func.name in RANGE_FUNCTIONS
        and any(isinstance(a, (pp.MatrixSelector, pp.SubqueryExpr)) for a in n.args)
        for n in walk(node)
    )


def _availability_share(node) -> bool:
    """`avg_over_time(up[5m])` or `avg_over_time((latency < bool 0.3)[10m:])`: the share of a window a 0/1
    condition held."""
    if not (isinstance(node, pp.Call) and node.func.name == "avg_over_time" and node.args):
        return False
    arg = node.args[0]
    if isinstance(arg, pp.MatrixSelector):
        return _name(arg.vector_selector) == "up"
    if isinstance(arg, pp.SubqueryExpr):
        return any(
            isinstance(n, pp.BinaryExpr) and n.modifier is not None and n.modifier.return_bool for n in walk(arg)
        )
    return False


def ratio_over_window(expr: str) -> bool:
    """Whether an expression computes a ratio over a window, the form of an objective (an SLI): one windowed
    aggregate divided by another (`sum(rate(errors[5m])) / sum(rate(requests[5m]))`, a burn rate), or the share of
    a window a 0/1 condition held (`avg_over_time(up[5m])`). False when not PromQL."""
    try:
        tree = parse(expr)
    except ValueError:
        return False
    for node in walk(tree):
        if isinstance(node, pp.BinaryExpr) and str(node.op).strip() == "/":
            if _windowed(node.lhs) and _windowed(node.rhs):
                return True
        if _availability_share(node):
            return True
    return False


def matcher_values(expr: str) -> set[str]:
    """The values an expression's selectors match labels against for equality (`{feature="tenure_months"}`)."""
    try:
        tree = parse(expr)
    except ValueError:
        return set()
    return {
        m.value
        for node in walk(tree)
        if isinstance(node, pp.VectorSelector)
        for m in node.matchers.matchers
        if m.name != "__name__" and str(m.op).endswith("Equal") and "Not" not in str(m.op)
    }
