"""Which accesses touch a container that no other task can reach yet (escape analysis).

A function that builds a list, dict or set itself (a display, a comprehension or a call of
the ``list``/``dict``/``set`` builtin, bound to a local name) holds the only reference to it
until the name *escapes*: passed to a call, stored, returned, yielded, aliased, captured by a
nested scope. Until then no other task can reach the
object, so its accesses cannot race and the rewriter leaves them native: this is what
ThreadSanitizer's LLVM pass does for stack allocations that are never captured. Nothing is lost
for races: an object's contents are visible in full to whoever gets the reference once it is
published (Python has no reordering to hide them), and the publication itself (the store of the
reference into shared state) is an access that is recorded.

The analysis is conservative. It follows each block in Python's evaluation order, joins
branches by intersection, iterates loops to a fixpoint, and treats every use of a private name
as an escape except these, which are *private accesses* (the ids it returns):

* ``n.method(...)`` for a list/dict/set method, after its arguments (``keys``/``values``/
  ``items`` hand out a view of ``n``: the name escapes after the call);
* ``n[k]`` loaded, stored, deleted or augmented; ``k in n``;
* iterating ``n`` in a ``for`` statement or a comprehension (a generator expression keeps an
  iterator on ``n``: the name escapes with it);
* ``len(n)``, ``sorted(n)``, ``sum(n)``... (builtins that read a container and return
  something else), when the builtin is not shadowed.

Names declared ``global``/``nonlocal``, or used by any nested function, lambda, class or
comprehension body, are never private; a function that mentions ``locals``, ``vars``, ``eval``
or ``exec`` gets no private accesses. Frames reached through introspection (tracebacks,
``sys._getframe``, a suspended generator's ``gi_frame``) are outside the model.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

from raceway_sdk.instrument import hooks as _hooks

__all__ = ["private_accesses", "READERS"]

_FRESH = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)
#: builtins that return a new container of their own
_CONSTRUCTORS = frozenset({"list", "dict", "set"})

#: the list / dict / set methods the hooks record (C code that never stores the container
#: itself anywhere); the dunders are left out (``__iter__`` hands out an iterator on it)
_METHODS = frozenset(
    m for table in (_hooks._LIST, _hooks._DICT, _hooks._SET) for m in table if not m.startswith("__")
)
#: methods whose result keeps a reference to the container
_VIEWS = frozenset({"keys", "values", "items"})
#: builtins that read a container given as first argument and never return it or keep it
READERS = frozenset({"len", "sorted", "list", "tuple", "set", "frozenset", "dict", "sum", "min", "max", "any", "all"})
#: a function using these can reach its locals by name: no private accesses in it
_INTROSPECTION = frozenset({"locals", "vars", "eval", "exec"})

_NESTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_COMPS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)

State = set[str] | None  # None: not reachable (after return, raise, break, continue)

#: statements analysed per statement of the function before giving up on it (a loop's
#: fixpoint reanalyses its body; nested loops that each lose a name multiply that)
_BUDGET_PER_STMT = 64


class _TooComplex(Exception):
    pass


def private_accesses(
    func: ast.FunctionDef | ast.AsyncFunctionDef, excluded: set[str], builtins_ok: set[str]
) -> dict[int, ast.AST]:
    """The access nodes in ``func``'s own body that touch a private container, by ``id()``.

    The nodes are kept in the result: the rewriter drops some nodes as it goes, and an id
    must not be reused by a node it makes meanwhile.

    ``excluded``: names that can never be private (declared global/nonlocal, shared cells);
    ``builtins_ok``: the reader builtins that are not shadowed where ``func`` is defined.
    Nested functions are analysed on their own (their bodies are not part of ``func``'s).
    """
    names = _mentioned(func.body)
    if names & _INTROSPECTION:
        return {}
    captured: set[str] = set()
    for stmt in func.body:
        _captured(stmt, False, captured)
    size = sum(isinstance(n, ast.stmt) for n in ast.walk(func))
    analysis = _Analysis(excluded | captured, builtins_ok, _BUDGET_PER_STMT * size)
    try:
        analysis.block(func.body, set())
    except _TooComplex:
        return {}  # deeply nested loops that keep changing: everything recorded
    return analysis.private


def _mentioned(nodes: Iterable[ast.AST]) -> set[str]:
    out: set[str] = set()
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                out.add(sub.id)
            elif isinstance(sub, (ast.MatchAs, ast.MatchStar)) and sub.name:
                out.add(sub.name)
            elif isinstance(sub, ast.MatchMapping) and sub.rest:
                out.add(sub.rest)
            elif isinstance(sub, ast.ExceptHandler) and sub.name:
                out.add(sub.name)
    return out


def _captured(node: ast.AST, inside: bool, out: set[str]) -> None:
    """Names used inside nested scopes of the function (they may be its free variables)."""
    if inside:
        out.update(_mentioned([node]))
        return
    if isinstance(node, _NESTED):
        out.update(_mentioned([node]))
        return
    if isinstance(node, _COMPS):
        first = node.generators[0]
        _captured(first.iter, False, out)  # evaluated in the enclosing scope
        out.update(_mentioned([first.target, *first.ifs, *node.generators[1:]]))
        out.update(_mentioned([getattr(node, f) for f in ("elt", "key", "value") if hasattr(node, f)]))
        return
    for child in ast.iter_child_nodes(node):
        _captured(child, False, out)


def _meet(*states: State) -> State:
    out: State = None
    for s in states:
        if s is not None:
            out = set(s) if out is None else out & s
    return out


class _Analysis:
    def __init__(self, excluded: set[str], builtins_ok: set[str], budget: int) -> None:
        self.excluded = excluded
        self.budget = budget
        self.builtins_ok = builtins_ok
        self.private: dict[int, ast.AST] = {}
        self.loops: list[tuple[list[set[str]], list[set[str]]]] = []  # (continues, breaks)

    def mark(self, node: ast.AST) -> None:
        self.private[id(node)] = node

    def fresh_value(self, e: ast.expr) -> bool:
        """``e`` makes a new list, dict or set: a display, a comprehension, ``list(...)``..."""
        if isinstance(e, _FRESH):
            return True
        return (
            isinstance(e, ast.Call)
            and isinstance(e.func, ast.Name)
            and e.func.id in _CONSTRUCTORS
            and e.func.id in self.builtins_ok
        )

    def owner(self, node: ast.AST, fresh: set[str]) -> str | None:
        """The private name ``node`` is, if it is one."""
        return node.id if isinstance(node, ast.Name) and node.id in fresh else None

    # -- statements
    def block(self, stmts: list[ast.stmt], fresh: State) -> State:
        for stmt in stmts:
            if fresh is None:
                return None  # the rest is unreachable: left as it is (recorded)
            fresh = self.stmt(stmt, fresh)
        return fresh

    def stmt(self, s: ast.stmt, fresh: set[str]) -> State:
        self.budget -= 1
        if self.budget < 0:
            raise _TooComplex
        if isinstance(s, ast.Assign):
            self.expr(s.value, fresh)
            t = s.targets[0]
            if len(s.targets) == 1 and isinstance(t, ast.Name) and self.fresh_value(s.value):
                fresh.discard(t.id)
                if t.id not in self.excluded:
                    fresh.add(t.id)
            else:
                for t in s.targets:
                    self.target(t, fresh)
            return fresh
        if isinstance(s, ast.AnnAssign):
            if s.value is not None:
                self.expr(s.value, fresh)
            if isinstance(s.target, ast.Name):
                fresh.discard(s.target.id)
                if s.value is not None and self.fresh_value(s.value) and s.target.id not in self.excluded:
                    fresh.add(s.target.id)
            elif s.value is not None:
                self.target(s.target, fresh)
            else:
                self.expr(s.target, fresh)
            return fresh
        if isinstance(s, ast.AugAssign):
            return self.augassign(s, fresh)
        if isinstance(s, ast.Delete):
            for t in s.targets:
                self.target(t, fresh)
            return fresh
        if isinstance(s, (ast.Expr, ast.Return)):
            if s.value is not None:
                self.expr(s.value, fresh)
            return fresh if isinstance(s, ast.Expr) else None
        if isinstance(s, ast.Raise):
            for e in (s.exc, s.cause):
                if e is not None:
                    self.expr(e, fresh)
            return None
        if isinstance(s, ast.Assert):
            self.expr(s.test, fresh)
            if s.msg is not None:
                self.expr(s.msg, fresh)
            return fresh
        if isinstance(s, (ast.Break, ast.Continue)):
            if self.loops:
                self.loops[-1][0 if isinstance(s, ast.Continue) else 1].append(set(fresh))
            return None
        if isinstance(s, ast.If):
            self.expr(s.test, fresh)
            return _meet(self.block(s.body, set(fresh)), self.block(s.orelse, set(fresh)))
        if isinstance(s, (ast.For, ast.AsyncFor, ast.While)):
            return self.loop(s, fresh)
        if isinstance(s, (ast.With, ast.AsyncWith)):
            for item in s.items:
                self.expr(item.context_expr, fresh)
                if item.optional_vars is not None:
                    self.target(item.optional_vars, fresh)
            # the body runs once, straight on; if ``__exit__`` swallows an exception, what
            # follows may see any prefix of it: only names the body never mentions are certain
            partial = fresh - _mentioned(s.body)
            return _meet(self.block(s.body, fresh), partial)
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            # decorators, defaults and bases run now; the body is a nested scope
            for sub in ast.iter_child_nodes(s):
                if isinstance(sub, ast.expr):
                    self.expr(sub, fresh)
                elif isinstance(sub, ast.arguments):
                    for d in [*sub.defaults, *(d for d in sub.kw_defaults if d is not None)]:
                        self.expr(d, fresh)
            fresh.discard(s.name)
            return fresh
        if isinstance(s, (ast.Pass, ast.Global, ast.Nonlocal)):
            return fresh
        if isinstance(s, ast.Try) or type(s).__name__ == "TryStar":
            return self.try_(s, fresh)
        # Import, Match and anything newer: every name it mentions is no longer private, and
        # nothing inside gets marked
        return fresh - _mentioned([s])

    def try_(self, s: ast.stmt, fresh: set[str]) -> State:
        # a handler or ``finally`` may start anywhere in the body: from what nothing in the
        # statement touches
        base = fresh - _mentioned([s])
        pending = [len(x) for x in self.loops[-1]] if self.loops else []
        body = self.block(s.body, set(fresh))  # type: ignore[attr-defined]
        self.block(s.orelse, body)  # type: ignore[attr-defined]
        for h in s.handlers:  # type: ignore[attr-defined]
            self.block(h.body, set(base))
        self.block(s.finalbody, set(base))  # type: ignore[attr-defined]
        if pending:  # a break/continue in here goes through ``finally`` first
            for states, n in zip(self.loops[-1], pending, strict=True):
                states[n:] = [st & base for st in states[n:]]
        return base

    def loop(self, s: ast.For | ast.AsyncFor | ast.While, fresh: set[str]) -> State:
        iterated = None
        if isinstance(s, ast.For):
            iterated = self.owner(s.iter, fresh)
        if iterated is None and not isinstance(s, ast.While):
            self.expr(s.iter, fresh)
        # the state at the top of every iteration: entry ∩ end of body ∩ every ``continue``.
        # Each pass marks into a scratch table, kept only if the pass started from the
        # fixpoint (the usual first pass: nested loops stay linear, not exponential).
        top = set(fresh)
        outer = self.private
        try:
            while True:
                self.private = {}
                ends, breaks = self.iteration(s, set(top))
                nxt = _meet(top, *ends)
                assert nxt is not None
                if nxt == top:
                    outer.update(self.private)
                    break
                top = nxt
        finally:
            self.private = outer
        if iterated in top:  # iterated from start to end while nothing else can reach it
            assert isinstance(s, ast.For)
            self.mark(s.iter)
        exit_ = set(top)
        if isinstance(s, ast.While):
            self.expr(s.test, exit_)
        return _meet(self.block(s.orelse, exit_), *breaks)

    def iteration(self, s: ast.For | ast.AsyncFor | ast.While, fresh: set[str]) -> tuple[list[State], list[set[str]]]:
        """One pass over the loop from its top: (states reaching the top again, breaks)."""
        self.loops.append(([], []))
        try:
            if isinstance(s, ast.While):
                self.expr(s.test, fresh)
            else:
                self.target(s.target, fresh)
            end = self.block(s.body, fresh)
        finally:
            continues, breaks = self.loops.pop()
        return [end, *continues], breaks

    def augassign(self, s: ast.AugAssign, fresh: set[str]) -> set[str]:
        t = s.target
        if isinstance(t, ast.Subscript) and (name := self.owner(t.value, fresh)):
            self.expr(t.slice, fresh)
            self.expr(s.value, fresh)
            if name in fresh:  # the read and the write both happen before any escape
                self.mark(t)
            return fresh
        if isinstance(t, ast.Name):
            self.expr(s.value, fresh)
            fresh.discard(t.id)
            return fresh
        self.expr(t, fresh)
        self.expr(s.value, fresh)
        return fresh

    def target(self, t: ast.expr, fresh: set[str]) -> None:
        """A store or ``del`` target, after the value (if any) was evaluated."""
        if isinstance(t, ast.Name):
            fresh.discard(t.id)
        elif isinstance(t, ast.Subscript) and (name := self.owner(t.value, fresh)):
            self.expr(t.slice, fresh)
            if name in fresh:
                self.mark(t)
        elif isinstance(t, (ast.Tuple, ast.List)):
            for e in t.elts:
                self.target(e, fresh)
        elif isinstance(t, ast.Starred):
            self.target(t.value, fresh)
        else:
            self.expr(t, fresh)

    # -- expressions, in evaluation order
    def expr(self, e: ast.AST, fresh: set[str]) -> None:
        if not fresh:
            return  # nothing private: nothing to mark, nothing to lose
        if isinstance(e, ast.Name):
            fresh.discard(e.id)  # any other use of the name: it escapes
        elif isinstance(e, ast.Call):
            self.call(e, fresh)
        elif isinstance(e, ast.Subscript) and (name := self.owner(e.value, fresh)):
            self.expr(e.slice, fresh)
            if name in fresh:
                self.mark(e)
        elif isinstance(e, ast.Compare) and len(e.ops) == 1 and isinstance(e.ops[0], (ast.In, ast.NotIn)):
            self.expr(e.left, fresh)
            right = e.comparators[0]
            if self.owner(right, fresh):
                self.mark(e)
            else:
                self.expr(right, fresh)
        elif isinstance(e, _COMPS):
            first = e.generators[0]
            if (name := self.owner(first.iter, fresh)) and not first.is_async:
                self.mark(first.iter)
                if isinstance(e, ast.GeneratorExp):  # the generator keeps an iterator on it
                    fresh.discard(name)
            else:
                self.expr(first.iter, fresh)
            # the rest is a nested scope: its names are captured, never private
        elif isinstance(e, ast.Dict):  # key, value, key, value...
            for k, v in zip(e.keys, e.values, strict=True):
                if k is not None:
                    self.expr(k, fresh)
                self.expr(v, fresh)
        elif isinstance(e, ast.NamedExpr):
            self.expr(e.value, fresh)
            self.target(e.target, fresh)
        elif isinstance(e, ast.Lambda):
            for d in [*e.args.defaults, *(d for d in e.args.kw_defaults if d is not None)]:
                self.expr(d, fresh)
        else:
            for child in ast.iter_child_nodes(e):
                self.expr(child, fresh)

    def call(self, e: ast.Call, fresh: set[str]) -> None:
        func = e.func
        owner = None
        if isinstance(func, ast.Attribute) and func.attr in _METHODS:
            owner = self.owner(func.value, fresh)
            args: list[ast.AST] = [*e.args, *e.keywords]
        elif isinstance(func, ast.Name) and func.id in self.builtins_ok and e.args:
            owner = self.owner(e.args[0], fresh)
            args = [*e.args[1:], *e.keywords]
        if owner is None:
            self.expr(func, fresh)
            for a in [*e.args, *e.keywords]:
                self.expr(a, fresh)
            return
        for a in args:
            self.expr(a, fresh)
        if owner in fresh:  # the access happens when the call runs, after its arguments
            self.mark(e)
            if isinstance(func, ast.Attribute) and func.attr in _VIEWS:
                fresh.discard(owner)
