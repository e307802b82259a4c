"""A package's Python source as definitions, for the code identity of a run (runcode.py); no torch.

A definition is a function, a method, a class's header (bases, decorators, class-level statements), a module-level
statement, or one entry of a keyed table (`NAME = Keyed("by", {...})`, training/registry.py). Each has its parsed
code as compared (docstrings out, a function's local names and parameters numbered in order of appearance, so a
renamed local is the same code) and what it refers to (names, module attributes, attributes of objects, super(),
getattr). Module paths are relative to the package root (`training/data.py`), so a copy of the package is read
the same way.
"""

import ast
import copy
from dataclasses import dataclass, field
from pathlib import Path

from trifecta.identity.codehash import _dump, _parsed

TABLE_CLASS = "Keyed"


@dataclass(eq=False)
class Definition:
    module: str  # relative path, e.g. "training/data.py"
    name: str  # "augment", "DeviceLoader.__iter__", "class DeviceLoader", "DATASETS['mnist']", "statement ..."
    nodes: list  # the syntax trees whose references it has
    code: str  # its parsed code as compared
    lines: tuple[int, int]  # first and last line, to map executed code back to it
    cls: "ClassInfo | None" = None  # the class of a method (for super())

    @property
    def key(self) -> str:
        return f"{self.module}:{self.name}"


@dataclass(eq=False)
class ClassInfo:
    module: str
    name: str
    header: Definition
    bases: list  # base expressions, resolved when the class is reached
    methods: dict = field(default_factory=dict)  # name -> Definition


@dataclass(eq=False)
class Table:
    module: str
    name: str
    by: str  # the part of a run its keys are: dataset, arch, algo or family
    frame: Definition  # the statement without its entries
    entries: dict  # key -> Definition


# ---- Code as compared ----

def local_names(func) -> list[str]:
    """Parameters and names a function binds (nested lambdas and comprehensions included), in order of appearance;
    names declared global or nonlocal are not local."""
    declared = {n for node in ast.walk(func) if isinstance(node, (ast.Global, ast.Nonlocal)) for n in node.names}
    names = []
    for node in ast.walk(func):
        if isinstance(node, ast.arg):
            names.append(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.append(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.append(node.name)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node is not func:
            names.append(node.name)
    return [n for n in dict.fromkeys(names) if n not in declared]


class _Renamer(ast.NodeTransformer):
    def __init__(self, names: dict):
        self.names = names

    def visit_Name(self, node):
        if node.id in self.names:
            node.id = self.names[node.id]
        return node

    def visit_arg(self, node):
        if node.arg in self.names:
            node.arg = self.names[node.arg]
        return self.generic_visit(node)

    def visit_ExceptHandler(self, node):
        if node.name in self.names:
            node.name = self.names[node.name]
        return self.generic_visit(node)


def _function_code(func) -> str:
    """A function's parsed code with its local names numbered (a renamed local is the same code)."""
    func = copy.deepcopy(func)
    names = {name: f"_{i}" for i, name in enumerate(local_names(func))}
    renamer = _Renamer(names)
    func.args = renamer.visit(func.args)
    func.body = [renamer.visit(stmt) for stmt in func.body]
    return _dump(func)


# ---- Reading modules ----

def dotted_name(root: Path, relpath: str) -> str:
    """'training/data.py' -> 'trifecta.training.data' (a package's __init__.py: the package)."""
    return ".".join([root.name, *relpath.removesuffix(".py").removesuffix("__init__").strip("/").split("/")]).strip(".")


def relpath_of(root: Path, dotted: str) -> str | None:
    """'trifecta.training.data' -> 'training/data.py' (a package: its __init__.py); None outside the package."""
    parts = dotted.split(".")
    if parts[0] != root.name:
        return None
    path = root.joinpath(*parts[1:])
    if path.is_dir() and (path / "__init__.py").exists():
        return (path / "__init__.py").relative_to(root).as_posix()
    if path.with_suffix(".py").exists():
        return path.with_suffix(".py").relative_to(root).as_posix()
    return None


def import_bindings(node, root: Path, relpath: str) -> dict:
    """name -> ("module", rel) | ("import", rel, name) | ("external",) for one import statement."""
    found = {}
    if isinstance(node, ast.Import):
        for alias in node.names:
            rel = relpath_of(root, alias.name)
            if alias.asname:
                found[alias.asname] = ("module", rel) if rel else ("external",)
            else:  # `import trifecta.x.y` binds `trifecta`
                found[alias.name.split(".")[0]] = ("external",)
        return found
    base = node.module or ""
    if node.level:
        package = [root.name, *relpath.split("/")[:-1]]
        base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
    source = relpath_of(root, base)
    for alias in node.names:
        name = alias.asname or alias.name
        submodule = relpath_of(root, f"{base}.{alias.name}")
        if source is None and submodule is None:
            found[name] = ("external",)
        elif submodule is not None and not _binds(root, source, alias.name):
            found[name] = ("module", submodule)
        else:
            found[name] = ("import", source, alias.name)
    return found


def _binds(root: Path, relpath: str | None, name: str) -> bool:
    """Whether a module's top level binds `name` (else `from package import name` is its submodule)."""
    if relpath is None:
        return False
    for node in _parsed(root / relpath).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any((a.asname or a.name.split(".")[0]) == name
                                                                for a in node.names):
            return True
        if name in _targets(node):
            return True
    return False


def _targets(node) -> list[str]:
    """Module-level names an assignment binds."""
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    else:
        return []
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]


def span(node) -> tuple[int, int]:
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return first, node.end_lineno


class Module:
    """One module's definitions and top-level names."""

    def __init__(self, root: Path, relpath: str):
        self.root, self.relpath = root, relpath
        self.bindings: dict = {}  # name -> Definition | ClassInfo | Table | ("module", rel) | ("import", rel, n) | ...
        self.unbound: list[Definition] = []  # module-level statements that bind nothing: they run on import
        self.definitions: list[Definition] = []
        for node in _parsed(root / relpath).body:
            self._add(node)

    def _definition(self, name, nodes, code, lines, cls=None) -> Definition:
        definition = Definition(self.relpath, name, nodes, code, lines, cls)
        self.definitions.append(definition)
        return definition

    def _add(self, node) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            self.bindings.update(import_bindings(node, self.root, self.relpath))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.bindings[node.name] = self._definition(node.name, [node], _function_code(node), span(node))
        elif isinstance(node, ast.ClassDef):
            self.bindings[node.name] = self._class(node)
        elif (table := self._table(node)) is not None:
            self.bindings[table.name] = table
        elif names := _targets(node):
            statement = self._definition(",".join(names), [node], _dump(node), span(node))
            self.bindings.update(dict.fromkeys(names, statement))
        elif not _is_main_guard(node):  # `if __name__ == "__main__":` never runs when the module is imported
            text = ast.unparse(node).splitlines()[0][:60]
            self.unbound.append(self._definition(f"statement {text}", [node], _dump(node), span(node)))

    def _class(self, node: ast.ClassDef) -> ClassInfo:
        header = copy.copy(node)
        header.body = [s for s in node.body if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))]
        definition = self._definition(f"class {node.name}", [header], _dump(header), span(node))
        info = ClassInfo(self.relpath, node.name, definition, list(node.bases))
        for item in node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                info.methods[item.name] = self._definition(f"{node.name}.{item.name}", [item], _function_code(item),
                                                           span(item), info)
        return info

    def _table(self, node) -> Table | None:
        """`NAME = Keyed("by", {...})`: a table whose entries are keyed by a part of a run."""
        value = getattr(node, "value", None)
        names = _targets(node)
        if not (isinstance(value, ast.Call) and len(names) == 1 and len(value.args) == 2
                and getattr(value.func, "id", getattr(value.func, "attr", None)) == TABLE_CLASS):
            return None
        by, entries = value.args
        pairs = _entries(entries, f"{self.relpath}, line {node.lineno}")
        frame = copy.deepcopy(node)
        held = frame.value.args[1]  # the entries (how many too) give way to `...`: the frame is how it is made
        if isinstance(held, ast.Dict):
            frame.value.args[1] = ast.Constant(...)
        else:
            held.generators[0].iter = ast.Constant(...)
        table = Table(self.relpath, names[0], by.value, self._definition(names[0], [frame], _dump(frame), span(node)),
                      {})
        for key, element in pairs:
            table.entries[key] = self._definition(f"{names[0]}[{key!r}]", [element], _dump(element),
                                                  (element.lineno, element.end_lineno))
        return table


def _is_main_guard(node) -> bool:
    test = getattr(node, "test", None)
    return (isinstance(node, ast.If) and isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
            and test.left.id == "__name__" and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__")


def _entries(node, where: str) -> list[tuple[str, ast.AST]]:
    """(key, expression) of each entry: a dict literal's constant keys, or the elements of the list or tuple a
    comprehension `{x.name: x for x in [...]}` walks, keyed by each element's first argument or `name=`."""
    if isinstance(node, ast.Dict) and all(isinstance(k, ast.Constant) for k in node.keys):
        return [(k.value, v) for k, v in zip(node.keys, node.values)]
    if isinstance(node, ast.DictComp) and isinstance(node.generators[0].iter, (ast.List, ast.Tuple)):
        pairs = []
        for element in node.generators[0].iter.elts:
            keys = [kw.value for kw in getattr(element, "keywords", []) if kw.arg == "name"]
            keys += getattr(element, "args", [])[:1]
            if not keys or not isinstance(keys[0], ast.Constant):
                raise ValueError(f"{where}: an entry of a keyed table has no constant name (first argument or name=)")
            pairs.append((keys[0].value, element))
        return pairs
    raise ValueError(f"{where}: a keyed table must be a dict literal with constant keys or {{x.name: x for x in [...]}}")
