"""The signature of a ``_target_`` read from its source file, without importing it (nor torch, nor Lightning), so
that a config is checked in a fraction of a second. Re-exports (``from .adam import Adam``) are followed.

A parameter's annotation becomes the plain config values it accepts: bool, int, float, str, None, list, dict (from
``Optional[...]``, ``Union[...]``, ``X | Y``, ``Literal[...]``, ``list[...]``, ``Sequence[...]`` ...). A class or
alias the reader does not know accepts any value.
"""
from __future__ import annotations

import ast
import functools
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ANY = "any"
PLAIN = {"bool": bool, "int": int, "float": float, "str": str, "None": type(None), "NoneType": type(None),
         "list": list, "List": list, "tuple": list, "Tuple": list, "Sequence": list, "Iterable": list,
         "dict": dict, "Dict": dict, "Mapping": dict}


@dataclass
class Param:
    name: str
    accepts: tuple | str = ANY  # plain types, or ANY
    literals: tuple | None = None  # Literal[...] values
    has_default: bool = True


@dataclass
class Signature:
    target: str
    params: dict[str, Param] = field(default_factory=dict)
    var_keyword: bool = False
    bases: list[str] = field(default_factory=list)  # base class names as written (classes only)
    creates_parameters: bool = False  # the class body makes an nn.Parameter (learnable state)


def _module_file(module: str) -> Path | None:
    """The source file of ``module`` found without importing it (nor its parent packages)."""
    top, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(top) if top not in sys.modules else sys.modules[top].__spec__
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if not rest:
        return Path(spec.origin) if spec.origin and spec.origin.endswith(".py") else None
    for location in spec.submodule_search_locations or []:
        base = Path(location).joinpath(*rest)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


@functools.lru_cache(maxsize=None)
def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None


def _accepts(node: ast.expr | None) -> tuple[tuple | str, tuple | None]:
    if node is None:
        return ANY, None
    if isinstance(node, ast.Constant):
        if node.value is None:
            return (type(None),), None
        if isinstance(node.value, str):  # a string annotation
            try:
                return _accepts(ast.parse(node.value, mode="eval").body)
            except SyntaxError:
                return ANY, None
        return ANY, None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union([node.left, node.right])
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
    if isinstance(node, ast.Subscript):
        outer = node.value.id if isinstance(node.value, ast.Name) else getattr(node.value, "attr", None)
        args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if outer == "Optional":
            kinds, lits = _union(args)
            return (kinds if kinds == ANY else (*kinds, type(None))), lits
        if outer == "Union":
            return _union(args)
        if outer == "Literal":
            values = tuple(a.value for a in args if isinstance(a, ast.Constant))
            return tuple({type(v) for v in values}), values
        name = outer
    if name in PLAIN:
        return (PLAIN[name],), None
    return ANY, None


def _union(nodes: list[ast.expr]) -> tuple[tuple | str, tuple | None]:
    kinds: list = []
    literals: list = []
    only_literals = True  # Literal[...] restricts the values only when no other member admits more
    known = False
    for n in nodes:
        k, lits = _accepts(n)
        if k == ANY:  # a class: a plain config value cannot be one, but a `_target_` node can
            kinds.append(dict)
            only_literals = False
            continue
        known = True
        kinds += list(k)
        if lits is None and k != (type(None),):
            only_literals = False
        literals += list(lits or ())
    if not known:
        return ANY, None
    if literals and only_literals:
        literals.append(None) if type(None) in kinds else None
    return tuple(dict.fromkeys(kinds)), (tuple(literals) if literals and only_literals else None)


def _from_function(fn: ast.FunctionDef, skip_self: bool) -> tuple[dict[str, Param], bool]:
    a = fn.args
    positional = a.posonlyargs + a.args
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    params = {}
    for i, (arg, default) in enumerate(zip(positional, defaults)):
        if skip_self and i == 0:
            continue
        kinds, lits = _accepts(arg.annotation)
        params[arg.arg] = Param(arg.arg, kinds, lits, default is not None)
    for arg, default in zip(a.kwonlyargs, a.kw_defaults):
        kinds, lits = _accepts(arg.annotation)
        params[arg.arg] = Param(arg.arg, kinds, lits, default is not None)
    return params, a.kwarg is not None


def _creates_parameters(cls: ast.ClassDef) -> bool:
    for node in ast.walk(cls):
        if isinstance(node, ast.Call):
            f = node.func
            if (isinstance(f, ast.Attribute) and f.attr == "Parameter") or (isinstance(f, ast.Name)
                                                                             and f.id == "Parameter"):
                return True
    return False


def _resolve_relative(module: str, level: int, name: str | None, is_package: bool) -> str:
    parts = module.split(".")
    keep = len(parts) - level + (1 if is_package else 0)
    base = parts[:keep]
    return ".".join(base + ([name] if name else []))


@functools.lru_cache(maxsize=None)
def signature(target: str, _depth: int = 0) -> Signature | None:
    """The signature of ``target`` (``package.module.Name``) from source; None where it cannot be read."""
    module, _, name = target.rpartition(".")
    path = _module_file(module) if module else None
    tree = _parse(path) if path else None
    if tree is None or _depth > 8:
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            sig = Signature(target, bases=[b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")
                                           for b in node.bases], creates_parameters=_creates_parameters(node))
            init = next((n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                         and n.name == "__init__"), None)
            if init is not None:
                sig.params, sig.var_keyword = _from_function(init, skip_self=True)
                return sig
            # no __init__ of its own: the first base's (looked up where the module imports it from)
            for base in sig.bases:
                inherited = _lookup(tree, module, path, base, _depth)
                if inherited is not None:
                    sig.params, sig.var_keyword = inherited.params, inherited.var_keyword
                    sig.creates_parameters |= inherited.creates_parameters
                    return sig
            sig.var_keyword = True  # unknown: accept any keyword
            return sig
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            sig = Signature(target)
            sig.params, sig.var_keyword = _from_function(node, skip_self=False)
            return sig
    return _lookup(tree, module, path, name, _depth)


def _lookup(tree: ast.Module, module: str, path: Path, name: str, depth: int) -> Signature | None:
    """``name`` as imported into ``module`` (``from x import name [as name]``), or defined there."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return signature(f"{module}.{name}", depth + 1)
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    source = (_resolve_relative(module, node.level, node.module, path.name == "__init__.py")
                              if node.level else node.module)
                    return signature(f"{source}.{alias.name}", depth + 1)
    return None


def subclass_of(target: str, names: set[str], _depth: int = 0) -> bool:
    """Whether the class ``target`` is one of ``names`` (class names) or derives from one (by its source)."""
    sig = signature(target)
    if target.rpartition(".")[2] in names:
        return True
    if sig is None or _depth > 8:
        return False
    module = target.rpartition(".")[0]
    path = _module_file(module)
    tree = _parse(path) if path else None
    for base in sig.bases:
        if base in names:
            return True
        if tree is not None:
            inherited = _lookup(tree, module, path, base, _depth)
            if inherited is not None and subclass_of(inherited.target, names, _depth + 1):
                return True
    return False


def learnable(target: str, _depth: int = 0) -> bool:
    """Whether the class ``target`` (or a base) makes an nn.Parameter in its own body (learnable neuron state)."""
    sig = signature(target)
    if sig is None or _depth > 8:
        return False
    if sig.creates_parameters:
        return True
    module = target.rpartition(".")[0]
    path = _module_file(module)
    tree = _parse(path) if path else None
    for base in sig.bases:
        inherited = _lookup(tree, module, path, base, _depth) if tree is not None else None
        if inherited is not None and learnable(inherited.target, _depth + 1):
            return True
    return False


def check_value(param: Param, value: Any) -> str | None:
    """None if ``value`` (a plain config value) fits the parameter, else what it must be."""
    if param.literals is not None and value not in param.literals:
        return f"one of {list(param.literals)}"
    if param.accepts == ANY:
        return None
    kinds = param.accepts
    if isinstance(value, bool):
        ok = bool in kinds
    elif isinstance(value, int):
        ok = int in kinds or float in kinds
    elif isinstance(value, float):
        ok = float in kinds
    elif value is None:
        ok = type(None) in kinds or not param.has_default  # a required parameter given as null: let it fail there
    else:
        ok = isinstance(value, tuple(k for k in kinds if k is not type(None)))
    if ok:
        return None
    names = [{bool: "bool", int: "int", float: "float", str: "str", type(None): "null", list: "list",
              dict: "dict"}.get(k, k.__name__) for k in kinds]
    return " or ".join(dict.fromkeys(names))
