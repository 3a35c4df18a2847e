"""YAML distribution files: parsed by libyaml when PyYAML has it, composed under edgesim's bounds.

libyaml parses several times faster than PyYAML's own parser. Its events are composed by
PyYAML's composer, extended to count as it goes (:mod:`edgesim.config.bounds`): nesting depth,
values with every alias counted as the values it names, and the entries of each top-level
section. A file that passes a bound is refused at that point, before the rest is read. Two equal
keys in one mapping are refused too, since YAML would silently keep the last.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, Event, NodeEvent
from yaml.nodes import Node, ScalarNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from edgesim.config.bounds import (
    MAX_DEPTH,
    MAX_NUMBER_CHARS,
    MAX_VALUES,
    SECTION_QUOTAS,
    key_path,
    long_number,
    over_quota,
    too_deep,
    too_many_values,
)
from edgesim.exceptions import ConfigError

__all__ = ["read_yaml"]


class _Mark(Protocol):
    """Where in the file: PyYAML's and libyaml's marks both have these."""

    line: int
    column: int


class _Refused(Exception):
    """A bound passed while reading: the problem, where, and the key it counts against."""

    def __init__(self, problem: str, mark: _Mark | None, key: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.mark = mark
        self.key = key


class _BoundedComposer(Composer):
    """PyYAML's composer, counting depth, values (aliases expanded) and section entries."""

    peek_event: Callable[[], Event]  # the parser's, in the loader this is mixed into

    def __init__(self) -> None:
        Composer.__init__(self)
        self._depth = 0
        self._values = 0
        self._sizes: dict[int, int] = {}  # id(anchored node) -> the values it stands for
        self._section: str | None = None
        self._entries = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event = self.peek_event()
        mark = event.start_mark
        # Typed int, but PyYAML passes a list item's position, a mapping key's None, or for a
        # mapping value the key's node.
        self._count_entry(index, mark)
        if isinstance(event, AliasEvent):
            node = self.anchors.get(event.anchor)
            if node is not None:
                size = self._sizes.get(id(node))
                if size is None:  # still being composed: the alias is inside its own anchor
                    raise _Refused("an alias inside the value it names (a cycle)", mark)
                self._add(size, mark)
            return super().compose_node(parent, index)
        if self._depth >= MAX_DEPTH:
            raise _Refused(too_deep(), mark)
        self._add(1, mark)
        before = self._values
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if isinstance(event, NodeEvent) and event.anchor is not None:
            self._sizes[id(node)] = self._values - before + 1
        return node

    def _add(self, count: int, mark: _Mark | None) -> None:
        self._values += count
        if self._values > MAX_VALUES:
            raise _Refused(too_many_values("values (an alias counts as the values it names)"), mark)

    def _count_entry(self, index: object, mark: _Mark | None) -> None:
        # Depth 1 holds the top-level keys and sections; depth 2 the entries of a section
        # (a mapping key is composed with index None, a list item with its position).
        if self._depth == 1:
            self._section = index.value if isinstance(index, ScalarNode) else None
            self._entries = 0
        elif self._depth == 2 and (index is None or isinstance(index, int)):
            section = self._section or ""
            quota = SECTION_QUOTAS.get(section)
            self._entries += 1
            if quota is not None and self._entries > quota:
                raise _Refused(over_quota(section, quota, f"more than {quota}"), mark, section)


class _PythonParser(Reader, Scanner, Parser):
    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)


_PARSER: Any
try:
    from yaml._yaml import CParser

    _PARSER = CParser
except ImportError:  # PyYAML built without libyaml
    _PARSER = _PythonParser


class _Loader(_BoundedComposer, _PARSER, SafeConstructor, Resolver):  # type: ignore[misc]
    def __init__(self, stream: str) -> None:
        _PARSER.__init__(self, stream)
        _BoundedComposer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)


def _construct_int(loader: Any, node: ScalarNode) -> int:
    # Python will not convert a decimal integer of 4,300 digits, nor print a huge hex one.
    if len(node.value) > MAX_NUMBER_CHARS:
        raise _Refused(long_number(len(node.value)), node.start_mark)
    number: int = loader.construct_yaml_int(node)
    return number


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def read_yaml(text: str, file: str) -> Any:
    """The data of a YAML document, or None for an empty one; :class:`ConfigError` otherwise."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _reject_duplicate_keys(node, (), file, set())
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except _Refused as refused:
        raise ConfigError(file, refused.key, refused.problem + _at(refused.mark)) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        if "maximum nesting depth" in str(error.problem):  # libyaml's own bound, near 1,000
            raise ConfigError(file, "", too_deep() + _at(mark)) from None
        what = "; ".join(part for part in (error.context, error.problem) if part)
        raise ConfigError(file, "", f"not valid YAML{_at(mark)}: {what}") from None
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        column = error.position - text.rfind("\n", 0, error.position)
        # PyYAML's reader gives the character's code point; libyaml gives only a reason.
        what = (
            f"character #x{error.character:04x} is not allowed"
            if isinstance(error.character, int)
            else str(error.reason)
        )
        raise ConfigError(
            file, "", f"not valid YAML at line {line}, column {column}: {what}"
        ) from None
    except yaml.YAMLError as error:
        raise ConfigError(file, "", f"not valid YAML: {error}") from None


def _at(mark: _Mark | None) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


_NAMED_BY_KEY = {"functions": "function name", "origins": "origin id", "origin_groups": "group id"}


def _reject_duplicate_keys(
    node: yaml.Node, at: tuple[str | int, ...], file: str, visited: set[int]
) -> None:
    """YAML keeps the last of two equal keys silently; a distribution file must not."""
    if id(node) in visited:  # anchors can make the node graph cyclic
        return
    visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            if key_node.tag != "tag:yaml.org,2002:merge" and key != "?":
                line = key_node.start_mark.line + 1
                if key in first_line:
                    what = _NAMED_BY_KEY.get(str(at[0])) if len(at) == 1 else None
                    raise ConfigError(
                        file,
                        key_path((*at, key)),
                        f"duplicate "
                        f"{what or 'key'} {key!r} at line {line} (first at line "
                        f"{first_line[key]}); each may appear only once",
                    )
                first_line[key] = line
            _reject_duplicate_keys(value_node, (*at, key), file, visited)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _reject_duplicate_keys(item, (*at, index), file, visited)
