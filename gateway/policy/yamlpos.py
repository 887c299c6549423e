"""YAML reading that remembers where every value came from, so errors can name file:line:col."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Where:
    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: `yes`/`no`/`on`/`off` stay strings.

    The decision tree's branches are literally called "yes" and "no"; YAML 1.1 would turn
    those keys into booleans behind the author's back.
    """


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _where(file: str, node: yaml.Node) -> Where:
    return Where(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _build(
    loader: _Loader, node: yaml.Node, file: str, path: Path_, where: dict[Path_, Where]
) -> Any:
    where.setdefault(path, _where(file, node))
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in out:
                raise yaml.MarkedYAMLError(
                    problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark
                )
            where[(*path, key)] = _where(file, key_node)
            out[key] = _build(loader, value_node, file, (*path, key), where)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, n, file, (*path, i), where) for i, n in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def load(text: str, file: str) -> tuple[Any, dict[Path_, Where]]:
    """Parse one YAML document; return its data and the position of every path in it."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        where: dict[Path_, Where] = {}
        data = None if node is None else _build(loader, node, file, (), where)
        return data, where
    finally:
        loader.dispose()


def locate(where: dict[Path_, Where], path: Path_, file: str) -> Where:
    """The position of `path`, or of its nearest ancestor that has one."""
    for end in range(len(path), -1, -1):
        found = where.get(tuple(path[:end]))
        if found is not None:
            return found
    return Where(file, 1, 1)
