"""Import hook that rewrites shared-state accesses of selected modules into recorder calls.

The mechanism is pytest's assertion rewriting: a finder on ``sys.meta_path`` hands selected
source modules to a loader that parses them, rewrites the AST (:class:`_Rewriter`) and compiles
it; the code is cached in ``__pycache__`` under its own tag
(``<name>.cpython-311-raceway-<version>.pyc``, keyed on the source's mtime and size and on a hash
of this rewriter), so later runs skip the rewrite. A module whose docstring contains
``RACEWAY_DONT_INSTRUMENT`` is left alone.

Test modules are also rewritten by pytest. Our finder sits before pytest's on ``sys.meta_path``
and asks pytest's hook whether it would take the module; if so we apply pytest's
``rewrite_asserts`` to the tree first and our rewrite second, so one loader does both and
assertion introspection keeps working (cached under a tag that also names pytest's version).

What is rewritten (semantics unchanged: every sub-expression is evaluated once, in Python's
order, and the access itself is performed natively by the hook):

* attribute and subscript loads, stores, ``del`` and augmented assignment (read + write);
* names declared ``global`` and rebound in some function (``nonlocal`` likewise, keyed on a
  per-activation :class:`~raceway_sdk.instrument.hooks.Closure`); other globals (functions,
  classes, imports) are not recorded;
* ``x.name(...)`` for container/lock method names, ``len(x)``-style builtins, ``k in d``, the
  iterable of ``for`` loops and comprehensions, ``with`` items (raw locks created before the
  thread patches get acquire/release events).

Method loads that are called at once (``self.method()``) are not recorded, nor are accesses
of a list/dict/set the function built itself before its name escapes (:mod:`._escape`).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import marshal
import os
import sys
import threading
import types
from collections.abc import Sequence
from typing import Any, cast

from raceway_sdk.instrument import _escape
from raceway_sdk.instrument import hooks as _hooks
from raceway_sdk.instrument.selection import Selection

__all__ = [
    "RewriteHook",
    "install",
    "uninstall",
    "not_instrumented",
    "rewrite_source",
    "OPT_OUT_MARKER",
    "VERSION",
]

OPT_OUT_MARKER = "RACEWAY_DONT_INSTRUMENT"
P = _hooks.PREFIX


def _compute_version() -> str:
    digest = hashlib.sha1()
    for mod_file in (__file__, _hooks.__file__, _escape.__file__):
        try:
            with open(mod_file, "rb") as f:
                digest.update(f.read())
        except OSError:  # pragma: no cover - zipped install
            digest.update(mod_file.encode())
    return "1-" + digest.hexdigest()[:10]


#: Changes whenever this rewriter or the hooks change: stale caches are never reused.
VERSION = _compute_version()
TAG = f"{sys.implementation.cache_tag}-raceway-{VERSION}"


# --------------------------------------------------------------------------- scope analysis


class _Scope:
    __slots__ = ("kind", "parent", "qualname", "bound", "globals", "nonlocals", "cells", "cellvar")

    def __init__(self, kind: str, parent: _Scope | None, qualname: str) -> None:
        self.kind = kind  # module, function, class, comp
        self.parent = parent
        self.qualname = qualname
        self.bound: set[str] = set()
        self.globals: set[str] = set()
        self.nonlocals: set[str] = set()
        self.cells: set[str] = set()  # names of this function shared through ``nonlocal``
        self.cellvar = ""

    def enclosing(self) -> _Scope:
        s = self.parent
        assert s is not None
        while s.kind == "class":
            assert s.parent is not None
            s = s.parent
        return s

    def resolve(self, name: str) -> tuple[str, _Scope | None]:
        """('global', None) | ('cell', owner) | ('local', scope) for a name used here."""
        s = self
        while True:
            if s.kind == "module" or name in s.globals:
                return "global", None
            if name in s.nonlocals:
                s = s.enclosing()
                continue
            if name in s.bound:
                return ("cell", s) if name in s.cells else ("local", s)
            if s.parent is None:
                return "global", None
            s = s.enclosing() if s.kind != "module" else s


def _child_qualname(parent: _Scope, name: str) -> str:
    if parent.kind == "module":
        return name
    if parent.kind == "class":
        return f"{parent.qualname}.{name}"
    return f"{parent.qualname}.<locals>.{name}"


class _ScopeBuilder(ast.NodeVisitor):
    """First pass: bindings, global/nonlocal declarations, one scope per function/class/comp."""

    def __init__(self) -> None:
        self.module = _Scope("module", None, "<module>")
        self.cur = self.module
        self.scopes: dict[int, _Scope] = {}

    def _enter(self, node: ast.AST, kind: str, name: str) -> _Scope:
        scope = _Scope(kind, self.cur, _child_qualname(self.cur, name))
        self.scopes[id(node)] = scope
        return scope

    def _args(self, args: ast.arguments) -> None:
        for a in args.posonlyargs + args.args + args.kwonlyargs:
            self.cur.bound.add(a.arg)
        if args.vararg:
            self.cur.bound.add(args.vararg.arg)
        if args.kwarg:
            self.cur.bound.add(args.kwarg.arg)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, name: str) -> None:
        for d in getattr(node, "decorator_list", ()):
            self.visit(d)
        for d in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
            self.visit(d)
        scope = self._enter(node, "function", name)
        outer, self.cur = self.cur, scope
        self._args(node.args)
        for stmt in node.body if isinstance(node.body, list) else [node.body]:
            self.visit(stmt)
        self.cur = outer

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.cur.bound.add(node.name)
        self._function(node, node.name)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._function(node, "<lambda>")

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.cur.bound.add(node.name)
        for d in node.decorator_list + node.bases + [k.value for k in node.keywords]:
            self.visit(d)
        scope = self._enter(node, "class", node.name)
        outer, self.cur = self.cur, scope
        for stmt in node.body:
            self.visit(stmt)
        self.cur = outer

    def _comp(self, node: Any, label: str) -> None:
        self.visit(node.generators[0].iter)
        scope = self._enter(node, "comp", label)
        outer, self.cur = self.cur, scope
        for i, gen in enumerate(node.generators):
            self.visit(gen.target)
            if i:
                self.visit(gen.iter)
            for cond in gen.ifs:
                self.visit(cond)
        for field in ("elt", "key", "value"):
            if hasattr(node, field):
                self.visit(getattr(node, field))
        self.cur = outer

    def visit_ListComp(self, node: ast.ListComp) -> None:
        self._comp(node, "<listcomp>")

    def visit_SetComp(self, node: ast.SetComp) -> None:
        self._comp(node, "<setcomp>")

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._comp(node, "<dictcomp>")

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> None:
        self._comp(node, "<genexpr>")

    def visit_Name(self, node: ast.Name) -> None:
        if not isinstance(node.ctx, ast.Load):
            self.cur.bound.add(node.id)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        s = self.cur
        while s.kind == "comp" and s.parent is not None:
            s = s.parent
        if isinstance(node.target, ast.Name):
            s.bound.add(node.target.id)
        self.visit(node.value)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*":
                self.cur.bound.add(alias.asname or alias.name.partition(".")[0])

    visit_ImportFrom = visit_Import  # type: ignore[assignment]

    def visit_Global(self, node: ast.Global) -> None:
        self.cur.globals.update(node.names)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self.cur.nonlocals.update(node.names)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.cur.bound.add(node.name)
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.name:
            self.cur.bound.add(node.name)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self.cur.bound.add(node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        if node.rest:
            self.cur.bound.add(node.rest)
        self.generic_visit(node)

    def finish(self) -> set[str]:
        """Mark shared cells on their owners; return the module globals rebound by functions."""
        tracked: set[str] = set()
        for scope in self.scopes.values():
            tracked.update(scope.globals & scope.bound)
            for name in scope.nonlocals & scope.bound:
                kind, owner = scope.enclosing().resolve(name)
                if kind == "local" and owner is not None and owner.kind == "function":
                    owner.cells.add(name)
        for n, scope in enumerate(s for s in self.scopes.values() if s.cells):
            scope.cellvar = f"{P}cell{n}"
        # a cell owner's own reads/writes are recorded too: re-resolve now that cells are known
        return tracked


# --------------------------------------------------------------------------- the rewriter


def _name(id_: str) -> ast.Name:
    return ast.Name(id=id_, ctx=ast.Load())


_CACHED = frozenset({"ga", "sa", "auga", "gi", "si", "augi", "cn", "gl", "gs", "cl", "cs"})


def _fresh(expr: ast.expr) -> bool:
    """``expr`` always makes a new object that nothing else holds (a slice of a built-in
    sequence, a display, a comprehension): iterating it cannot race, so it is not recorded.
    The slice itself still reads its container."""
    if isinstance(expr, ast.Subscript):
        return isinstance(expr.slice, ast.Slice)
    return isinstance(
        expr,
        (ast.List, ast.Tuple, ast.Set, ast.Dict, ast.ListComp, ast.SetComp, ast.DictComp,
         ast.GeneratorExp, ast.Constant, ast.JoinedStr),
    )


def _hook(name: str, *args: ast.expr) -> ast.Call:
    """A call of hook ``name``; cached hooks also get the site's cache slot ``_rw@c<i>``."""
    params = list(args)
    if name in _CACHED:
        site = params[-1]
        assert isinstance(site, ast.Name) and site.id.startswith(P + "s")
        params.append(_name(P + "c" + site.id[len(P) + 1 :]))
    return ast.Call(func=_name(P + name), args=params, keywords=[])


def _const(v: Any) -> ast.Constant:
    return ast.Constant(value=v)


def _generated(node: ast.AST) -> bool:
    """Names pytest or we generated (``@py_assert1``, ``_rw@t3``): never instrumented."""
    return isinstance(node, ast.Name) and (node.id.startswith("@") or node.id.startswith(P))


class _Rewriter(ast.NodeTransformer):
    """Second pass: accesses -> hook calls. Collects the site table as it goes."""

    def __init__(self, builder: _ScopeBuilder, tracked: set[str], future_annotations: bool) -> None:
        self.scopes = builder.scopes
        self.scope = builder.module
        self.tracked = tracked
        self.future_annotations = future_annotations
        self.sites: list[tuple[int, str, str, str]] = []
        self.classes: list[str] = []
        self.ntemp = 0
        #: ids of access nodes on containers no other task can reach yet (left native)
        self.private: dict[int, ast.AST] = {}
        self.module_bound = builder.module.bound | tracked

    # -- helpers
    def site(self, node: ast.AST, kind: str, name: str = "") -> ast.Name:
        func = self.scope.qualname
        s = self.scope
        while s.kind == "comp" and s.parent is not None:
            s = s.parent
            func = s.qualname
        self.sites.append((getattr(node, "lineno", 0), func, name, kind))
        return _name(f"{P}s{len(self.sites) - 1}")

    def temp(self) -> str:
        self.ntemp += 1
        return f"{P}t{self.ntemp}"

    def mangle(self, attr: str) -> str:
        if self.classes and attr.startswith("__") and not attr.endswith("__"):
            cls = self.classes[-1].lstrip("_")
            if cls:
                return f"_{cls}{attr}"
        return attr

    def kind_of(self, name: str) -> tuple[str, _Scope | None]:
        kind, owner = self.scope.resolve(name)
        if kind == "global" and name not in self.tracked:
            return "local", None
        return kind, owner

    def stable(self, expr: ast.expr) -> bool:
        """Evaluating ``expr`` twice gives the same object with no side effect."""
        if isinstance(expr, ast.Constant):
            return True
        if isinstance(expr, ast.Name) and self.scope.kind == "function":
            return self.scope.resolve(expr.id)[0] == "local" and expr.id in self.scope.bound
        return False

    def needs(self, target: ast.expr) -> bool:
        if isinstance(target, (ast.Attribute, ast.Subscript)):
            return not _generated(target.value)
        if isinstance(target, ast.Name):
            return not _generated(target) and self.kind_of(target.id)[0] != "local"
        if isinstance(target, ast.Starred):
            return self.needs(target.value)
        if isinstance(target, (ast.Tuple, ast.List)):
            return any(self.needs(e) for e in target.elts)
        return False

    def load_attr(self, obj: ast.expr, attr: str, site: ast.Name) -> ast.expr:
        """``obj.attr`` recorded by ``ga`` (which returns ``obj``); the load stays native."""
        call = _hook("ga", obj, _const(self.mangle(attr)), site)
        return ast.Attribute(value=call, attr=attr, ctx=ast.Load())

    def slice_expr(self, s: ast.expr) -> ast.expr:
        if isinstance(s, ast.Slice):
            parts = [self.visit(p) if p is not None else _const(None) for p in (s.lower, s.upper, s.step)]
            return ast.copy_location(_hook("slice", *parts), s)
        if isinstance(s, ast.Tuple) and any(isinstance(e, ast.Slice) for e in s.elts):
            return ast.copy_location(ast.Tuple([self.slice_expr(e) for e in s.elts], ast.Load()), s)
        return self.visit(s)

    def record_name_write(self, target: ast.Name, node: ast.AST) -> list[ast.stmt]:
        kind, owner = self.kind_of(target.id)
        if kind == "global":
            call = _hook("gs", _const(target.id), self.site(node, "global", ""))
        elif kind == "cell" and owner is not None:
            call = _hook("cs", _name(owner.cellvar), _const(target.id), self.cell_site(node, target.id, owner))
        else:
            return []
        return [ast.Expr(call)]

    def cell_site(self, node: ast.AST, name: str, owner: _Scope) -> ast.Name:
        return self.site(node, "attr", f"{owner.qualname}.<locals>.{name}")

    def private_accesses(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[int, ast.AST]:
        scope = self.scope
        readers = {
            n for n in _escape.READERS if n not in self.module_bound and scope.resolve(n)[0] == "global"
        }
        return _escape.private_accesses(node, scope.globals | scope.nonlocals | scope.cells, readers)

    # -- expressions
    def visit_Name(self, node: ast.Name) -> ast.expr:
        if not isinstance(node.ctx, ast.Load) or _generated(node):
            return node
        kind, owner = self.kind_of(node.id)
        if kind == "global":
            new = _hook("gl", node, _const(node.id), self.site(node, "global", ""))
        elif kind == "cell" and owner is not None:
            new = _hook("cl", node, _name(owner.cellvar), _const(node.id), self.cell_site(node, node.id, owner))
        else:
            return node
        return ast.copy_location(new, node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        node.value = self.visit(node.value)
        if not isinstance(node.ctx, ast.Load) or _generated(node.value):
            return node
        return ast.copy_location(self.load_attr(node.value, node.attr, self.site(node, "attr")), node)

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
        if not isinstance(node.ctx, ast.Load) or _generated(node.value) or id(node) in self.private:
            return cast(ast.expr, self.generic_visit(node))
        value = self.visit(node.value)
        new = _hook("gi", value, self.slice_expr(node.slice), self.site(node, "item"))
        return ast.copy_location(new, node)

    def visit_Call(self, node: ast.Call) -> ast.expr:
        func = node.func
        if isinstance(func, ast.Attribute) and not _generated(func.value):
            func.value = self.visit(func.value)
            args = [self.visit(a) for a in node.args]
            keywords = [self.visit(k) for k in node.keywords]
            if func.attr in _hooks.CALL_NAMES and id(node) not in self.private:
                new = ast.Call(
                    func=_name(P + "call"),
                    args=[func, _const(func.attr), self.site(node, "item"), *args],
                    keywords=keywords,
                )
                return ast.copy_location(new, node)
            node.args, node.keywords = args, keywords
            return node
        if (
            isinstance(func, ast.Name)
            and func.id in _hooks.BUILTIN_CALL_NAMES
            and node.args
            and self.scope.resolve(func.id)[0] == "global"
            and id(node) not in self.private
        ):
            args = [self.visit(a) for a in node.args]
            keywords = [self.visit(k) for k in node.keywords]
            new = ast.Call(
                func=_name(P + "bc"),
                args=[func, _const(func.id), self.site(node, "item"), *args],
                keywords=keywords,
            )
            return ast.copy_location(new, node)
        return cast(ast.expr, self.generic_visit(node))

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        if len(node.ops) == 1 and isinstance(node.ops[0], (ast.In, ast.NotIn)) and id(node) not in self.private:
            left, right = self.visit(node.left), self.visit(node.comparators[0])
            new: ast.expr = _hook("cn", left, right, self.site(node, "item"))
            if isinstance(node.ops[0], ast.NotIn):
                new = ast.UnaryOp(op=ast.Not(), operand=new)
            return ast.copy_location(new, node)
        return cast(ast.expr, self.generic_visit(node))

    def visit_NamedExpr(self, node: ast.NamedExpr) -> ast.expr:
        node.value = self.visit(node.value)
        rec = self.record_name_write(node.target, node)
        if not rec:
            return node
        assert isinstance(rec[0], ast.Expr)
        pair = ast.Tuple([node, rec[0].value], ast.Load())
        new = ast.Subscript(value=pair, slice=_const(0), ctx=ast.Load())
        return ast.copy_location(new, node)

    def _comp(self, node: Any) -> ast.expr:
        gens = node.generators
        first = gens[0]
        fresh = _fresh(first.iter) or id(first.iter) in self.private
        first.iter = self.visit(first.iter)
        if not first.is_async and not fresh:
            first.iter = ast.copy_location(_hook("it", first.iter, self.site(first.iter, "item")), first.iter)
        outer, self.scope = self.scope, self.scopes[id(node)]
        for i, gen in enumerate(gens):
            gen.target = self.visit(gen.target)
            if i:
                fresh = _fresh(gen.iter)
                gen.iter = self.visit(gen.iter)
                if not gen.is_async and not fresh:
                    gen.iter = ast.copy_location(_hook("it", gen.iter, self.site(gen.iter, "item")), gen.iter)
            gen.ifs = [self.visit(c) for c in gen.ifs]
        for field in ("elt", "key", "value"):
            if hasattr(node, field):
                setattr(node, field, self.visit(getattr(node, field)))
        self.scope = outer
        return node

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comp

    def _iterated(self, expr: ast.expr) -> ast.expr:
        """``expr`` is iterated or unpacked whole: a whole-container read if it is one."""
        return ast.copy_location(_hook("it", expr, self.site(expr, "item")), expr)

    def visit_Starred(self, node: ast.Starred) -> ast.expr:
        node.value = self.visit(node.value)
        if isinstance(node.ctx, ast.Load):
            node.value = self._iterated(node.value)
        return node

    def visit_keyword(self, node: ast.keyword) -> ast.keyword:
        node.value = self.visit(node.value)
        if node.arg is None:  # f(**d)
            node.value = self._iterated(node.value)
        return node

    def visit_Dict(self, node: ast.Dict) -> ast.expr:
        node.keys = [self.visit(k) if k is not None else None for k in node.keys]
        node.values = [
            self._iterated(self.visit(v)) if k is None else self.visit(v)  # {**d}
            for k, v in zip(node.keys, node.values, strict=True)
        ]
        return node

    def visit_YieldFrom(self, node: ast.YieldFrom) -> ast.expr:
        node.value = self._iterated(self.visit(node.value))
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.expr:
        self._defaults(node.args)
        outer, self.scope = self.scope, self.scopes[id(node)]
        node.body = self.visit(node.body)
        self.scope = outer
        return node

    # -- definitions
    def _defaults(self, args: ast.arguments) -> None:
        args.defaults = [self.visit(d) for d in args.defaults]
        args.kw_defaults = [self.visit(d) if d is not None else None for d in args.kw_defaults]

    def _decorators(self, decorators: list[ast.expr]) -> list[ast.expr]:
        out: list[ast.expr] = []
        for d in decorators:
            if isinstance(d, ast.Attribute):  # applied like a call: @prop.setter, @mod.deco
                d.value = self.visit(d.value)
                out.append(d)
            else:
                out.append(self.visit(d))
        return out

    def visit_FunctionDef(self, node: Any) -> Any:
        node.decorator_list = self._decorators(node.decorator_list)
        self._defaults(node.args)
        outer, self.scope = self.scope, self.scopes[id(node)]
        self.private.update(self.private_accesses(node))
        body = self._body(node.body)
        if self.scope.cells:
            init = ast.Assign([ast.Name(self.scope.cellvar, ast.Store())], _hook("Closure"))
            at = 1 if ast.get_docstring(node, clean=False) is not None else 0
            body.insert(at, ast.copy_location(init, node.body[0]))
        node.body = body
        self.scope = outer
        return [node, *self.record_name_write(ast.Name(node.name, ast.Store()), node)]

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> Any:
        node.decorator_list = self._decorators(node.decorator_list)
        node.bases = [self.visit(b) for b in node.bases]
        node.keywords = [self.visit(k) for k in node.keywords]
        outer, self.scope = self.scope, self.scopes[id(node)]
        self.classes.append(node.name)
        node.body = self._body(node.body)
        self.classes.pop()
        self.scope = outer
        return [node, *self.record_name_write(ast.Name(node.name, ast.Store()), node)]

    def _body(self, stmts: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for stmt in stmts:
            new = self.visit(stmt)
            if isinstance(new, list):
                out.extend(new)
            elif new is not None:
                out.append(new)
        return out

    # -- statements
    def _located(self, stmts: list[ast.stmt], node: ast.AST) -> list[ast.stmt]:
        for s in stmts:
            ast.copy_location(s, node)
        return stmts

    def store(self, target: ast.expr, src: ast.expr, node: ast.AST) -> list[ast.stmt]:
        """Statements storing ``src`` (evaluated first) into ``target``, recording accesses."""
        if isinstance(target, ast.Attribute) and not _generated(target.value):
            obj = self.visit(target.value)
            call = _hook("sa", src, obj, _const(self.mangle(target.attr)), self.site(target, "attr"))
            return self._located([ast.Expr(call)], node)
        if isinstance(target, ast.Subscript) and not _generated(target.value) and id(target) not in self.private:
            obj = self.visit(target.value)
            call = _hook("si", src, obj, self.slice_expr(target.slice), self.site(target, "item"))
            return self._located([ast.Expr(call)], node)
        if isinstance(target, (ast.Tuple, ast.List)):
            src = self._iterated(src)  # unpacking reads the whole container
        if isinstance(target, (ast.Tuple, ast.List, ast.Starred)) and self.needs(target):
            temps: list[str] = []
            leaves: list[tuple[str, ast.expr]] = []
            pattern = self._templify(target, temps, leaves)
            out: list[ast.stmt] = [ast.Assign([pattern], src)]
            for tmp, leaf in leaves:
                out.extend(self.store(leaf, _name(tmp), node))
            out.append(ast.Delete([ast.Name(t, ast.Del()) for t in temps]))
            return self._located(out, node)
        target = self.visit(target) if not isinstance(target, ast.Name) else target
        out = [ast.Assign([target], src)]
        if isinstance(target, ast.Name):
            out.extend(self.record_name_write(target, node))
        return self._located(out, node)

    def _templify(self, target: ast.expr, temps: list[str], leaves: list[tuple[str, ast.expr]]) -> ast.expr:
        if isinstance(target, (ast.Tuple, ast.List)):
            elts = [self._templify(e, temps, leaves) for e in target.elts]
            return type(target)(elts=elts, ctx=ast.Store())
        if isinstance(target, ast.Starred):
            return ast.Starred(value=self._templify(target.value, temps, leaves), ctx=ast.Store())
        tmp = self.temp()
        temps.append(tmp)
        leaves.append((tmp, target))
        return ast.Name(tmp, ast.Store())

    def visit_Assign(self, node: ast.Assign) -> Any:
        value = self.visit(node.value)
        if len(node.targets) == 1:
            return self.store(node.targets[0], value, node)
        if not any(self.needs(t) for t in node.targets):
            node.value = value
            node.targets = [self.visit(t) for t in node.targets]
            return node
        tmp = self.temp()
        out: list[ast.stmt] = [ast.Assign([ast.Name(tmp, ast.Store())], value)]
        for t in node.targets:
            out.extend(self.store(t, _name(tmp), node))
        out.append(ast.Delete([ast.Name(tmp, ast.Del())]))
        return self._located(out, node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> Any:
        target = node.target
        if node.value is None:
            if not isinstance(target, ast.Name):
                node.target = self.generic_visit(target)  # type: ignore[assignment]
            return node
        value = self.visit(node.value)
        if isinstance(target, ast.Name):
            node.value = value
            return self._located([node, *self.record_name_write(target, node)], node)
        out = self.store(target, value, node)
        if self.scope.kind in ("module", "class") and not self.future_annotations:
            out.append(ast.copy_location(ast.Expr(node.annotation), node))
        return out

    def _ref(self, expr: ast.expr, out: list[ast.stmt], temps: list[str]) -> ast.expr:
        """``expr`` evaluated once: itself if stable, else a temp assigned in ``out``."""
        if self.stable(expr):
            return expr
        tmp = self.temp()
        temps.append(tmp)
        out.append(ast.Assign([ast.Name(tmp, ast.Store())], expr))
        return _name(tmp)

    def visit_AugAssign(self, node: ast.AugAssign) -> Any:
        target, opname = node.target, type(node.op).__name__
        if isinstance(target, ast.Name):
            value = self.visit(node.value)
            node.value = value
            kind, owner = self.kind_of(target.id)
            if kind == "global":
                read = _hook("gl", _const(None), _const(target.id), self.site(node, "global", ""))
            elif kind == "cell" and owner is not None:
                read = _hook("cl", _const(None), _name(owner.cellvar), _const(target.id), self.cell_site(node, target.id, owner))
            else:
                return node
            return self._located([ast.Expr(read), node, *self.record_name_write(target, node)], node)
        if not isinstance(target, (ast.Attribute, ast.Subscript)) or _generated(target.value) or id(target) in self.private:
            return self.generic_visit(node)
        obj = self.visit(target.value)
        is_attr = isinstance(target, ast.Attribute)
        key: ast.expr = (
            _const(self.mangle(target.attr)) if isinstance(target, ast.Attribute) else self.slice_expr(target.slice)
        )
        site = self.site(target, "attr" if is_attr else "item")
        if isinstance(node.value, ast.Constant):
            call = _hook("auga" if is_attr else "augi", obj, key, _name(P + "op" + opname), node.value, site)
            return self._located([ast.Expr(call)], node)
        out: list[ast.stmt] = []
        temps: list[str] = []
        obj = self._ref(obj, out, temps)
        if not is_attr:
            key = self._ref(key, out, temps)
        cur = self.temp()
        temps.append(cur)
        if isinstance(target, ast.Attribute):
            current = self.load_attr(obj, target.attr, site)
        else:
            current = _hook("gi", obj, key, site)
        out.append(ast.Assign([ast.Name(cur, ast.Store())], current))
        out.append(ast.AugAssign(ast.Name(cur, ast.Store()), node.op, self.visit(node.value)))
        # the write gets its own cache slot (same Site): the read's slot must not hide it
        wsite = self.site(target, "attr" if is_attr else "item")
        out.append(ast.Expr(_hook("sa" if is_attr else "si", _name(cur), obj, key, wsite)))
        out.append(ast.Delete([ast.Name(t, ast.Del()) for t in temps]))
        return self._located(out, node)

    def visit_Delete(self, node: ast.Delete) -> Any:
        out: list[ast.stmt] = []
        for target in node.targets:
            out.extend(self._delete(target, node))
        return self._located(out, node)

    def _delete(self, target: ast.expr, node: ast.AST) -> list[ast.stmt]:
        if isinstance(target, (ast.Tuple, ast.List)):
            return [s for e in target.elts for s in self._delete(e, node)]
        if isinstance(target, ast.Attribute) and not _generated(target.value):
            return [ast.Expr(_hook("da", self.visit(target.value), _const(self.mangle(target.attr)), self.site(target, "attr")))]
        if isinstance(target, ast.Subscript) and not _generated(target.value) and id(target) not in self.private:
            return [ast.Expr(_hook("di", self.visit(target.value), self.slice_expr(target.slice), self.site(target, "item")))]
        stmts: list[ast.stmt] = [ast.Delete([self.visit(target) if not isinstance(target, ast.Name) else target])]
        if isinstance(target, ast.Name):
            stmts.extend(self.record_name_write(target, node))
        return stmts

    def _bind_target(self, target: ast.expr, node: ast.AST) -> tuple[ast.expr, list[ast.stmt]]:
        """A loop/with target: (target to bind natively, statements that store it afterwards)."""
        if isinstance(target, ast.Name):
            return target, self.record_name_write(target, node)
        if not self.needs(target):
            return self.visit(target), []
        tmp = self.temp()
        stores = self.store(target, _name(tmp), node)
        stores.append(ast.copy_location(ast.Delete([ast.Name(tmp, ast.Del())]), node))
        return ast.Name(tmp, ast.Store()), stores

    def visit_For(self, node: Any) -> Any:
        fresh = _fresh(node.iter) or id(node.iter) in self.private
        node.iter = self.visit(node.iter)
        if isinstance(node, ast.For) and not fresh:
            node.iter = ast.copy_location(_hook("it", node.iter, self.site(node.iter, "item")), node.iter)
        node.target, pre = self._bind_target(node.target, node)
        node.body = self._located(pre, node) + self._body(node.body)
        node.orelse = self._body(node.orelse)
        return node

    visit_AsyncFor = visit_For

    def visit_With(self, node: Any) -> Any:
        items = node.items
        for i, item in enumerate(items):
            ctx = item.context_expr
            if isinstance(ctx, ast.Attribute) and isinstance(ctx.ctx, ast.Load):
                # ``with self.lock:`` uses the attribute like a method call: not recorded
                ctx.value = self.visit(ctx.value)
                item.context_expr = ctx
            else:
                item.context_expr = self.visit(ctx)
            if isinstance(node, ast.With):
                item.context_expr = ast.copy_location(_hook("wl", item.context_expr), item.context_expr)
            if item.optional_vars is not None and self.needs(item.optional_vars):
                item.optional_vars, pre = self._bind_target(item.optional_vars, node)
                rest = items[i + 1 :]
                node.items = items[: i + 1]
                if rest:
                    inner = ast.copy_location(type(node)(items=rest, body=node.body, type_comment=None), node)
                    node.body = self._located(pre, node) + [self.visit(inner)]
                else:
                    node.body = self._located(pre, node) + self._body(node.body)
                return node
        node.body = self._body(node.body)
        return node

    visit_AsyncWith = visit_With

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> Any:
        out: list[ast.stmt] = [node]
        for alias in node.names:
            if alias.name != "*":
                bound = alias.asname or alias.name.partition(".")[0]
                out.extend(self.record_name_write(ast.Name(bound, ast.Store()), node))
        return self._located(out, node) if len(out) > 1 else node

    visit_ImportFrom = visit_Import

    def visit_match_case(self, node: ast.match_case) -> ast.match_case:
        # Patterns only allow literals and dotted names: they are left untouched.
        if node.guard is not None:
            node.guard = self.visit(node.guard)
        node.body = self._body(node.body)
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        return node  # annotations are never rewritten (they may be stringified)

    def visit_FunctionType(self, node: ast.AST) -> ast.AST:  # pragma: no cover
        return node


def _insert_prelude(tree: ast.Module, table: list[tuple[int, str, str, str]]) -> None:
    at = 0
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
        at = 1
    while at < len(body) and isinstance(body[at], ast.ImportFrom) and body[at].module == "__future__":  # type: ignore[attr-defined]
        at += 1
    line = body[at].lineno if at < len(body) else 1
    imp = ast.Import(names=[ast.alias(name="raceway_sdk.instrument.hooks", asname=P + "hooks")])
    bind = ast.Expr(ast.Call(
        func=ast.Attribute(value=_name(P + "hooks"), attr="bind", ctx=ast.Load()),
        args=[_const(tuple(table))],
        keywords=[],
    ))
    for stmt in (imp, bind):
        stmt.lineno, stmt.col_offset = line, 0  # type: ignore[attr-defined]
        stmt.end_lineno, stmt.end_col_offset = line, 0  # type: ignore[attr-defined]
    body[at:at] = [imp, bind]


def _future_annotations(tree: ast.Module) -> bool:
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
            if any(a.name == "annotations" for a in stmt.names):
                return True
    return False


def rewrite_tree(tree: ast.Module) -> ast.Module:
    """Rewrite a parsed module in place (after any assertion rewriting) and return it."""
    builder = _ScopeBuilder()
    builder.visit(tree)
    tracked = builder.finish()
    rw = _Rewriter(builder, tracked, _future_annotations(tree))
    tree.body = rw._body(tree.body)
    _insert_prelude(tree, rw.sites)
    _fix_locations(tree)
    return tree


def _fix_locations(tree: ast.AST) -> None:
    """Give generated nodes their parent's position.

    Unlike ``ast.fix_missing_locations`` this never invents an end position for a node that has
    a start but no end (pytest's inserted imports): compile accepts a missing end, not a wrong one.
    """
    stack: list[tuple[ast.AST, tuple[Any, Any, Any, Any]]] = [(tree, (1, 0, None, None))]
    while stack:
        node, pos = stack.pop()
        if "lineno" in node._attributes:
            if getattr(node, "lineno", None) is None:
                node.lineno, node.col_offset, node.end_lineno, node.end_col_offset = pos  # type: ignore[attr-defined]
            else:
                pos = (
                    node.lineno,  # type: ignore[attr-defined]
                    getattr(node, "col_offset", 0),
                    getattr(node, "end_lineno", None),
                    getattr(node, "end_col_offset", None),
                )
        for child in ast.iter_child_nodes(node):
            stack.append((child, pos))


def rewrite_source(source: str | bytes, filename: str = "<rewritten>") -> types.CodeType:
    """Compile ``source`` with accesses rewritten (tests, tools); run it in a fresh namespace."""
    tree = ast.parse(source, filename=filename)
    return compile(rewrite_tree(tree), filename, "exec", dont_inherit=True)


def opted_out(tree: ast.Module) -> bool:
    """The module docstring carries the opt-out marker."""
    doc = ast.get_docstring(tree, clean=False)
    return doc is not None and OPT_OUT_MARKER in doc


# --------------------------------------------------------------------------- pyc cache


def _cache_path(source_path: str, tag: str) -> str:
    head, tail = os.path.split(source_path)
    stem = tail[:-3] if tail.endswith(".py") else tail
    prefix = getattr(sys, "pycache_prefix", None)
    if prefix:
        return os.path.join(prefix, os.path.abspath(head).lstrip(os.sep), f"{stem}.{tag}.pyc")
    return os.path.join(head, "__pycache__", f"{stem}.{tag}.pyc")


def _header(st: os.stat_result) -> bytes:
    return (
        importlib.util.MAGIC_NUMBER
        + b"\x00\x00\x00\x00"
        + (int(st.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little")
        + (st.st_size & 0xFFFFFFFF).to_bytes(4, "little")
    )


def _read_pyc(pyc: str, st: os.stat_result) -> types.CodeType | None:
    try:
        with open(pyc, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if data[:16] != _header(st):
        return None
    try:
        co = marshal.loads(data[16:])
    except (ValueError, EOFError, TypeError):
        return None
    return co if isinstance(co, types.CodeType) else None


def _write_pyc(pyc: str, st: os.stat_result, co: types.CodeType) -> bool:
    """Atomic write (rename); False when the directory is not writable (then: no caching)."""
    if sys.dont_write_bytecode:
        return False
    try:
        os.makedirs(os.path.dirname(pyc), exist_ok=True)
        tmp = f"{pyc}.{os.getpid()}.{threading.get_ident()}"
        with open(tmp, "wb") as f:
            f.write(_header(st))
            f.write(marshal.dumps(co))
        os.replace(tmp, pyc)
        return True
    except OSError:
        try:
            os.unlink(tmp)
        except (OSError, UnboundLocalError):
            pass
        return False


# --------------------------------------------------------------------------- loader and finder


class _RewritingLoader(importlib.machinery.SourceFileLoader):
    """A SourceFileLoader whose code is the rewritten module (inspect/linecache keep working)."""

    def __init__(self, fullname: str, path: str, hook: RewriteHook, pytest_hook: Any) -> None:
        super().__init__(fullname, path)
        self._rw_hook = hook
        self._pytest_hook = pytest_hook

    def get_code(self, fullname: str) -> types.CodeType:  # type: ignore[override]
        return self._rw_hook._code_for(self, fullname)

    def plain_code(self, fullname: str) -> types.CodeType:
        code = super().get_code(fullname)
        assert code is not None
        return code


def _pytest_hooks() -> list[Any]:
    return [
        f
        for f in sys.meta_path
        if type(f).__name__ == "AssertionRewritingHook" and type(f).__module__.startswith("_pytest.")
    ]


class RewriteHook(importlib.abc.MetaPathFinder):
    """The meta-path finder. One is active at a time (see :func:`install`)."""

    def __init__(self, selection: Selection) -> None:
        self.selection = selection
        self.rewritten: dict[str, str] = {}
        self.failures: dict[str, str] = {}
        self.cache_hits = 0
        self.cache_writes = 0
        self._busy = threading.local()

    # -- finder
    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if getattr(self._busy, "on", False) or not self.selection.could_match_name(name):
            return None
        self._busy.on = True
        try:
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if (
                spec is None
                or spec.origin is None
                or not isinstance(spec.loader, importlib.machinery.SourceFileLoader)
                or not self.selection.matches(name, spec.origin)
            ):
                return None
            pytest_hook = None
            for h in _pytest_hooks():
                pspec = h.find_spec(name, path, target)
                if pspec is not None and pspec.loader is h:
                    pytest_hook = h
                    break
            loader = _RewritingLoader(name, spec.origin, self, pytest_hook)
            return importlib.util.spec_from_file_location(
                name, spec.origin, loader=loader, submodule_search_locations=spec.submodule_search_locations
            )
        finally:
            self._busy.on = False

    # -- code
    def _code_for(self, loader: _RewritingLoader, fullname: str) -> types.CodeType:
        path = loader.path
        pytest_hook = loader._pytest_hook
        tag = TAG
        if pytest_hook is not None:
            import _pytest

            tag = f"{TAG}-pytest-{getattr(_pytest, '__version__', 'x')}"
            names = getattr(pytest_hook, "_rewritten_names", None)
            if isinstance(names, dict):
                from pathlib import Path

                names[fullname] = Path(path)
        st = os.stat(path)
        pyc = _cache_path(path, tag)
        co = _read_pyc(pyc, st)
        if co is not None:
            self.cache_hits += 1
            self.rewritten[fullname] = path
            return co
        source = loader.get_data(path)
        tree = ast.parse(source, filename=path)  # a SyntaxError is the user's: raise it as usual
        if pytest_hook is not None:
            from _pytest.assertion.rewrite import rewrite_asserts

            rewrite_asserts(tree, source, path, pytest_hook.config)
        if opted_out(tree):
            if pytest_hook is None:
                return loader.plain_code(fullname)
            co = compile(tree, path, "exec", dont_inherit=True)
        else:
            try:
                co = compile(rewrite_tree(tree), path, "exec", dont_inherit=True)
            except Exception as exc:  # the rewriter's limitation, not the user's error
                self.failures[fullname] = f"rewrite failed: {type(exc).__name__}: {exc}"
                return self._fallback(loader, fullname, source, pytest_hook)
            self.rewritten[fullname] = path
        if _write_pyc(pyc, st, co):
            self.cache_writes += 1
        return co

    def _fallback(self, loader: _RewritingLoader, fullname: str, source: bytes, pytest_hook: Any) -> types.CodeType:
        if pytest_hook is None:
            return loader.plain_code(fullname)
        from _pytest.assertion.rewrite import rewrite_asserts

        tree = ast.parse(source, filename=loader.path)
        rewrite_asserts(tree, source, loader.path, pytest_hook.config)
        return compile(tree, loader.path, "exec", dont_inherit=True)

    def ensure_first(self) -> None:
        """Move this finder to the front of ``sys.meta_path`` (before pytest's)."""
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        sys.meta_path.insert(0, self)

    def not_instrumented(self) -> list[tuple[str, str]]:
        """(module, reason) for selected modules that run without instrumentation."""
        return sorted(self.failures.items())

    def _scan_preloaded(self) -> None:
        for name, mod in list(sys.modules.items()):
            path = getattr(mod, "__file__", None)
            if not isinstance(path, str) or not path.endswith(".py") or name in self.failures:
                continue
            if isinstance(getattr(mod, "__loader__", None), _RewritingLoader):
                continue
            try:
                selected = self.selection.could_match_name(name) and self.selection.matches(name, path)
            except (OSError, ValueError):
                continue
            if selected:
                self.failures[name] = "imported before instrumentation was installed"


_active: RewriteHook | None = None
_last: RewriteHook | None = None
_install_lock = threading.Lock()


def install(include: list[str] | None, exclude: list[str] | None, roots: list[str]) -> RewriteHook:
    """Put a rewriting finder first on ``sys.meta_path`` (replacing an earlier one).

    Modules imported before this call are not rewritten; the selected ones among them are listed
    by :func:`not_instrumented`.
    """
    global _active, _last
    for r in roots:
        if not isinstance(r, (str, os.PathLike)):
            raise TypeError(f"raceway: roots must be paths, got {r!r}")
    selection = Selection(include, exclude, [os.fspath(r) for r in roots])
    with _install_lock:
        if _active is not None:
            _remove(_active)
        hook = RewriteHook(selection)
        hook._scan_preloaded()
        sys.meta_path.insert(0, hook)
        _active = _last = hook
    return hook


def _remove(hook: RewriteHook) -> None:
    try:
        sys.meta_path.remove(hook)
    except ValueError:
        pass


def uninstall() -> None:
    """Remove the finder. Modules already rewritten stay rewritten (and cheap with no sink)."""
    global _active
    with _install_lock:
        if _active is not None:
            _remove(_active)
            _active = None


def not_instrumented() -> list[tuple[str, str]]:
    """(module, reason) of the active (or last) hook: selected but not rewritten."""
    hook = _active or _last
    return hook.not_instrumented() if hook is not None else []
