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
