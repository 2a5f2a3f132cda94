"""JSON Patch (RFC 6902) applied to a resource: add, remove, replace, move, copy, test.

Works on a deep copy; any failing operation raises `Unprocessable` naming the operation, so a
failed patch never changes anything. The result is validated by the store like any update.
"""

from __future__ import annotations

import copy
from typing import Any

from socle.errors import InvalidRequest, Unprocessable


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise InvalidRequest(f"Invalid JSON Pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]] if path else []


def _parent(doc: Any, tokens: list[str], op_index: int) -> tuple[Any, str]:
    node = doc
    for token in tokens[:-1]:
        node = _child(node, token, op_index)
    return node, tokens[-1]


def _child(node: Any, token: str, op_index: int) -> Any:
    if isinstance(node, dict):
        if token not in node:
            raise Unprocessable(f"JSON Patch operation {op_index}: path element '{token}' does not exist")
        return node[token]
    if isinstance(node, list):
        index = _index(node, token, op_index, allow_end=False)
        return node[index]
    raise Unprocessable(f"JSON Patch operation {op_index}: cannot descend into a primitive at '{token}'")


def _index(node: list[Any], token: str, op_index: int, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(node)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise Unprocessable(f"JSON Patch operation {op_index}: invalid array index '{token}'")
    index = int(token)
    if index > len(node) or (index == len(node) and not allow_end):
        raise Unprocessable(f"JSON Patch operation {op_index}: array index {index} out of range")
    return index


def _get(doc: Any, tokens: list[str], op_index: int) -> Any:
    node = doc
    for token in tokens:
        node = _child(node, token, op_index)
    return node


def _add(doc: Any, tokens: list[str], value: Any, op_index: int) -> Any:
    if not tokens:
        return value
    parent, last = _parent(doc, tokens, op_index)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, op_index, allow_end=True), value)
    else:
        raise Unprocessable(f"JSON Patch operation {op_index}: cannot add into a primitive")
    return doc


def _remove(doc: Any, tokens: list[str], op_index: int) -> Any:
    if not tokens:
        raise Unprocessable(f"JSON Patch operation {op_index}: cannot remove the whole resource")
    parent, last = _parent(doc, tokens, op_index)
    if isinstance(parent, dict):
        if last not in parent:
            raise Unprocessable(f"JSON Patch operation {op_index}: nothing to remove at '{last}'")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, op_index, allow_end=False))
    raise Unprocessable(f"JSON Patch operation {op_index}: cannot remove from a primitive")


def apply(document: dict[str, Any], operations: Any) -> dict[str, Any]:
    if not isinstance(operations, list):
        raise InvalidRequest("A JSON Patch document must be a JSON array of operations")
    doc: Any = copy.deepcopy(document)
    for i, operation in enumerate(operations):
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise InvalidRequest(f"JSON Patch operation {i} must be an object with 'op' and 'path'")
        op, tokens = operation["op"], _pointer(operation["path"])
        if op in ("add", "replace", "test") and "value" not in operation:
            raise InvalidRequest(f"JSON Patch operation {i} ({op}) needs a 'value'")
        if op == "add":
            doc = _add(doc, tokens, copy.deepcopy(operation["value"]), i)
        elif op == "remove":
            _remove(doc, tokens, i)
        elif op == "replace":
            _get(doc, tokens, i)
            if tokens:
                _remove(doc, tokens, i)
            doc = _add(doc, tokens, copy.deepcopy(operation["value"]), i)
        elif op in ("move", "copy"):
            source = _pointer(operation.get("from"))
            value = _get(doc, source, i)
            if op == "move":
                if operation["path"].startswith(operation["from"] + "/"):
                    raise Unprocessable(f"JSON Patch operation {i}: cannot move a value into itself")
                _remove(doc, source, i)
            doc = _add(doc, tokens, copy.deepcopy(value), i)
        elif op == "test":
            if _get(doc, tokens, i) != operation["value"]:
                raise Unprocessable(f"JSON Patch operation {i}: test failed at '{operation['path']}'")
        else:
            raise InvalidRequest(f"JSON Patch operation {i}: unknown op '{op}'")
    if not isinstance(doc, dict):
        raise Unprocessable("The patched document is not a resource")
    return doc
