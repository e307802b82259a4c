"""A run's code identity: the parsed code of the definitions of trifecta/training/ that a run can execute for its
dataset, architecture and algorithm. No torch: planning, `trifecta why` and the audit compute it.

    code = run_code("cifar10", "s", "tff")   # RunCode(sha256, definitions {"training/data.py:augment": sha, ...})

A definition is a function, a method, a class's header (bases, decorators, class-level statements), a
module-level statement, or one entry of a keyed table (registry.Keyed: DATASETS, ARCHS, BASELINES, LOADERS,
TRAINERS, ...). What a run can execute is found from what `trifecta train` runs for it (ROOTS: train.train and
the run's RunSpec), following, across the whole package but hashing only training/:
- names and module attributes to the definitions they name (imports followed; a module used as a value: all of it);
- a class named anywhere but as a base can be instantiated: its header and its ancestors' count, every dunder
  method it resolves (the interpreter calls them), every method when it derives from a class outside the package
  (torch calls forward and backward), and each attribute name the reached code uses, resolved by its MRO (first
  match: PEPITA's own train_step, FA's inherited one); `super().m` resolves after the class; `getattr` with a
  computed name, every attribute (of `self`'s class family, where the receiver is `self`);
- a keyed table subscripted or `get` (a run reads its own entry) gives the run's entry, a constant key that entry;
  membership, iteration and listing of its keys give none; any other use, every entry;
- a module-level statement that binds nothing (an assert) counts for every run of its module.
It is a static over-approximation: tests/unit/test_runcode.py traces runs of every kind and checks that whatever
executed lies inside. Code is compared as parsed code without docstrings, with a function's local names and
parameters numbered in order of appearance: comments, docstrings, a renamed local and a definition moved to
another module of the package change nothing; any other edit of a reached definition changes the identity.
"""

import ast
import functools
import hashlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from trifecta.identity.codehash import PACKAGE_DIR
from trifecta.identity.pysource import ClassInfo, Definition, Module, Table, dotted_name, relpath_of
from trifecta.identity.references import references
from trifecta.training.registry import run_keys

TRAINING = "training/"
ROOTS = (("operations/train.py", "train"), ("operations/train.py", "RunSpec"))  # what `trifecta train` runs for one run


@dataclass(frozen=True)
class RunCode:
    sha256: str
    definitions: dict  # "module:name" -> sha256[:16] of its parsed code, for `trifecta why`


# ---- The package and what a run reaches ----

class Package:
    """Every module of the package under `root` (trifecta/ or a copy of it), read on demand, and a run's reach."""

    def __init__(self, root: Path = PACKAGE_DIR):
        self.root = Path(root)
        self.modules: dict[str, Module] = {}

    def module(self, relpath: str) -> Module:
        if relpath not in self.modules:
            self.modules[relpath] = Module(self.root, relpath)
        return self.modules[relpath]

    def lookup(self, relpath: str, name: str, seen=()):
        """What a module's top-level name is: a Definition, ClassInfo, Table, ("module", rel), or None (outside)."""
        binding = self.module(relpath).bindings.get(name)
        if isinstance(binding, tuple):
            if binding[0] == "import" and (relpath, name) not in seen:
                return self.follow(binding, (*seen, (relpath, name)))
            return binding if binding[0] == "module" else None
        return binding

    def follow(self, binding, seen=()):
        if binding[0] == "module":
            return binding
        if binding[0] == "import" and binding[1] is not None:
            found = self.lookup(binding[1], binding[2], seen)
            if found is None and (sub := relpath_of(self.root, f"{dotted_name(self.root, binding[1])}.{binding[2]}")):
                return ("module", sub)
            return found
        return None

    def classes_of(self, relpath: str, bases) -> tuple[list, bool]:
        """The package classes among a class's bases, and whether one is from outside the package."""
        found, external = [], False
        for base in bases:
            target = None
            if isinstance(base, ast.Name):
                target = self.lookup(relpath, base.id)
            elif isinstance(base, ast.Attribute) and isinstance(base.value, ast.Name):
                alias = self.lookup(relpath, base.value.id)
                if isinstance(alias, tuple) and alias[0] == "module":
                    target = self.lookup(alias[1], base.attr)
            if isinstance(target, ClassInfo):
                found.append(target)
            elif not (isinstance(base, ast.Name) and base.id == "object"):
                external = True
        return found, external

    @functools.lru_cache(maxsize=None)
    def mro(self, cls: ClassInfo) -> tuple[list, bool]:
        """The class and its package ancestors, in method resolution order (depth first, left to right: C3 for
        the single inheritance this package uses), and whether any derives from a class outside the package."""
        order, external, todo = [], False, [cls]
        while todo:
            current = todo.pop(0)
            if current in order:
                continue
            order.append(current)
            bases, outside = self.classes_of(current.module, current.bases)
            external |= outside
            todo = bases + todo
        return order, external

    def reach(self, keys: dict) -> set:
        return Reach(self, keys).run()


class Reach:
    """The worklist of one run's reach (keys: the run's dataset, arch, algo and family)."""

    def __init__(self, package: Package, keys: dict):
        self.package, self.keys = package, keys
        self.reached: set = set()
        self.modules: set = set()  # modules with a reached definition
        self.instantiable: list = []
        self.attrs: set = set()
        self.supers: set = set()  # (class, attribute)
        self.star_classes: set = set()  # getattr(self, <computed>) in a method of these classes
        self.star = False
        self.work: deque = deque()

    def run(self) -> set:
        for relpath, name in ROOTS:
            self.use(self.package.lookup(relpath, name), "all")
        while self.work:
            definition = self.work.popleft()
            for ref in references(definition, self.package.root):
                self.follow(definition, ref)
        return self.reached

    def include(self, definition: Definition | None) -> None:
        if definition is None or definition in self.reached:
            return
        self.reached.add(definition)
        self.work.append(definition)
        if definition.module not in self.modules:  # the module is imported: its unbound statements run
            self.modules.add(definition.module)
            for statement in self.package.module(definition.module).unbound:
                self.include(statement)

    def use(self, target, mode: str) -> None:
        if isinstance(target, Definition):
            self.include(target)
        elif isinstance(target, ClassInfo):
            self.instantiate(target)
        elif isinstance(target, Table):
            self.include(target.frame)
            if mode == "all":
                for entry in target.entries.values():
                    self.include(entry)
            elif mode == "entry":
                self.include(target.entries.get(self.keys[target.by]))
            elif mode.startswith("const:"):
                self.include(target.entries.get(mode.removeprefix("const:")))
        elif isinstance(target, tuple) and target[0] == "module":  # a module as a value: all of it
            module = self.package.module(target[1])
            for binding in list(module.bindings.values()):
                self.use(self.package.follow(binding) if isinstance(binding, tuple) else binding, "all")

    def follow(self, definition: Definition, ref: tuple) -> None:
        kind = ref[0]
        if kind == "name":
            self.use(self.package.lookup(definition.module, ref[1]), ref[2])
        elif kind == "modattr":
            _, name, attr, mode, attr_mode = ref
            if self.package.module(definition.module).bindings.get(name) == ("external",):
                return  # torch.cat, np.asarray, ...
            target = self.package.lookup(definition.module, name)
            if isinstance(target, tuple):  # a module of the package
                self.use(self.package.lookup(target[1], attr), attr_mode)
            elif isinstance(target, ClassInfo):  # a class attribute, e.g. Recipe.for_run
                self.instantiate(target)
                self.include(self.resolve(target, attr))
            elif target is None:  # a parameter, a local or a builtin: any object
                self.see_attr(attr)
            else:  # a function or statement (its value's attribute), or a keyed table (get, items, ...)
                self.use(target, mode)
                self.see_attr(attr)
        elif kind == "attr":
            self.see_attr(ref[1])
        elif kind == "super":
            self.supers.add((definition.cls, ref[1]))
            for cls in self.instantiable:
                self.include(self.resolve(cls, ref[1], after=definition.cls))
        elif kind == "self*":
            self.star_classes.add(definition.cls)
            for cls in self.instantiable:
                self.resolve_all(cls, only_family=definition.cls)
        elif kind == "*":
            self.star = True
            for cls in self.instantiable:
                self.resolve_all(cls)
        elif kind == "import":
            self.use(self.package.follow(ref[1]), "all")

    def see_attr(self, name: str) -> None:
        if name in self.attrs:
            return
        self.attrs.add(name)
        for cls in self.instantiable:
            self.include(self.resolve(cls, name))

    def resolve(self, cls: ClassInfo, name: str, after: ClassInfo | None = None) -> Definition | None:
        """The definition `name` has on an instance of cls (first in its MRO, or after the class `after`)."""
        order, _ = self.package.mro(cls)
        if after is not None:
            if after not in order:
                return None
            order = order[order.index(after) + 1:]
        return next((k.methods[name] for k in order if name in k.methods), None)

    def resolve_all(self, cls: ClassInfo, only_family: ClassInfo | None = None) -> None:
        order, _ = self.package.mro(cls)
        if only_family is not None and only_family not in order:
            return
        for name in {n for k in order for n in k.methods}:
            self.include(self.resolve(cls, name))

    def instantiate(self, cls: ClassInfo) -> None:
        if cls in self.instantiable:
            return
        self.instantiable.append(cls)
        order, external = self.package.mro(cls)
        for ancestor in order:
            self.include(ancestor.header)
        for name in {n for k in order for n in k.methods}:
            if external or (name.startswith("__") and name.endswith("__")) or name in self.attrs:
                self.include(self.resolve(cls, name))
        for owner, name in self.supers:
            self.include(self.resolve(cls, name, after=owner))
        if self.star or any(owner in order for owner in self.star_classes):
            self.resolve_all(cls)


# ---- A run's code ----

def _fingerprint(root: Path) -> tuple:
    """The package's files and their modification times: the analysis is redone when one changes."""
    return tuple(sorted((p.relative_to(root).as_posix(), p.stat().st_mtime_ns) for p in root.rglob("*.py")))


@functools.lru_cache(maxsize=4)
def _package(root: Path, fingerprint: tuple) -> Package:
    return Package(root)


def package(root: Path = PACKAGE_DIR) -> Package:
    """The package as it is now (read again after any file changed)."""
    return _package(Path(root), _fingerprint(Path(root)))


@functools.lru_cache(maxsize=512)
def _reached(pkg: Package, keys: tuple) -> frozenset:
    return frozenset(pkg.reach(dict(keys)))


def reached(dataset: str, arch: str, algo: str, root: Path = PACKAGE_DIR, keys: dict | None = None) -> frozenset:
    """The definitions (of the whole package) a run of dataset/arch/algo can execute."""
    keys = keys or run_keys(dataset, arch, algo)
    return _reached(package(root), tuple(sorted(keys.items())))


def run_code(dataset: str, arch: str, algo: str, root: Path = PACKAGE_DIR, keys: dict | None = None) -> RunCode:
    """A run's code identity: sha256 over the parsed code of the training definitions it can execute (by name, not
    by module: a definition moved between modules is the same code), and each one's hash by module and name."""
    definitions = sorted((d for d in reached(dataset, arch, algo, root, keys) if d.module.startswith(TRAINING)),
                         key=lambda d: (d.name, d.code))
    digest = hashlib.sha256()
    for d in definitions:
        digest.update(d.name.encode() + b"\0" + d.code.encode() + b"\0")
    listing = {d.key: hashlib.sha256(d.code.encode()).hexdigest()[:16] for d in definitions}
    return RunCode(digest.hexdigest(), dict(sorted(listing.items())))


def definition_at(module: str, line: int, root: Path = PACKAGE_DIR) -> Definition | None:
    """The innermost definition of a module whose lines hold `line` (executed code back to its definition: a
    nested function or lambda belongs to the definition around it)."""
    spans = [d for d in package(root).module(module).definitions if d.lines[0] <= line <= d.lines[1]]
    return min(spans, key=lambda d: d.lines[1] - d.lines[0], default=None)


def training_modules(root: Path = PACKAGE_DIR) -> list[str]:
    """Every module of the training folder (relative paths)."""
    return sorted(p.relative_to(root).as_posix() for p in (Path(root) / TRAINING).rglob("*.py"))
