"""What a definition's code refers to (identity/pysource.py reads the definitions; runcode.py follows these): names,
module attributes, attributes of objects, super(), getattr with a constant or computed name, imports inside a
function, and how each reference to a keyed table uses it: its own entry (a subscript or `get`), its keys only
(membership, iteration, a listing of names) or all of it. No torch.
"""

import ast
import copy
import functools
from pathlib import Path

from trifecta.identity.pysource import Definition, import_bindings, local_names

KEY_ONLY_CALLS = {"set", "frozenset", "sorted", "list", "tuple", "len", "join", "keys"}


def _parents(tree) -> dict:
    parents = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    return parents


def _table_mode(node, parents) -> str:
    """How a reference to a keyed table uses it: its own "entry", its "keys" only, or "all" of it."""
    parent = parents.get(node)
    if isinstance(parent, ast.Subscript) and parent.value is node:
        return f"const:{parent.slice.value}" if isinstance(parent.slice, ast.Constant) else "entry"
    if isinstance(parent, ast.Attribute) and isinstance(parents.get(parent), ast.Call):
        return {"get": "entry", "keys": "keys"}.get(parent.attr, "all")
    if isinstance(parent, ast.Compare) and node in parent.comparators and all(
            isinstance(op, (ast.In, ast.NotIn)) for op in parent.ops):
        return "keys"
    if isinstance(parent, (ast.For, ast.comprehension)) and parent.iter is node:
        return "keys"
    if isinstance(parent, ast.Starred) and isinstance(parents.get(parent), (ast.Set, ast.List, ast.Tuple)):
        return "keys"  # {*TABLE} and [*TABLE] are its keys
    if isinstance(parent, ast.Call) and node in parent.args:
        func = parent.func
        if getattr(func, "id", None) in KEY_ONLY_CALLS or getattr(func, "attr", None) == "join":
            return "keys"
    return "all"


@functools.lru_cache(maxsize=None)
def references(definition: Definition, root: Path) -> tuple:
    """What a definition's code refers to: ("name", n, mode); ("modattr", n, attr, mode of n, mode of n.attr) for
    an attribute of a name (a module's, a class's, an object's); ("attr", a) of any other object; ("super", a);
    ("*",) or ("self*",) for getattr with a computed name; ("import", binding) inside a function."""
    refs = []
    for tree in definition.nodes:
        if isinstance(tree, ast.ClassDef):  # a class header: its bases are not instances of them
            tree = copy.copy(tree)
            tree.bases = []
        parents = _parents(tree)
        local = set(local_names(tree)) if isinstance(tree, (ast.FunctionDef, ast.AsyncFunctionDef)) else set()
        for node in ast.walk(tree):
            parent = parents.get(node)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                if not (isinstance(parent, ast.Attribute) and parent.value is node):
                    refs.append(("name", node.id, _table_mode(node, parents)))
            elif isinstance(node, ast.Attribute):
                base = node.value
                if isinstance(base, ast.Name) and base.id not in local:
                    refs.append(("modattr", base.id, node.attr, _table_mode(base, parents), _table_mode(node, parents)))
                elif isinstance(base, ast.Call) and getattr(base.func, "id", None) == "super":
                    refs.append(("super", node.attr))
                else:
                    refs.append(("attr", node.attr))
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("getattr", "hasattr", "setattr"):
                name = node.args[1] if len(node.args) > 1 else None
                if isinstance(name, ast.Constant):
                    refs.append(("attr", name.value))
                else:
                    on_self = isinstance(node.args[0], ast.Name) and node.args[0].id == "self"
                    refs.append(("self*",) if on_self and definition.cls else ("*",))
            elif isinstance(node, (ast.Import, ast.ImportFrom)) and tree is not node:
                refs += [("import", b) for b in import_bindings(node, root, definition.module).values()]
    return tuple(refs)
