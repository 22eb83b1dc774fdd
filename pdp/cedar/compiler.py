"""Cedar's JSON policy form → Python source, one function per policy, compiled once.

A policy becomes ``def p(P, A, R, C, E, PA, AA, RA) -> bool`` over the request's principal,
action, resource (:class:`~pdp.cedar.values.UID`), context (a ``dict``), the entity
:class:`~pdp.cedar.runtime.Store`, and the three entities' transitive ancestors. It returns
whether the policy applies, or raises :class:`~pdp.cedar.values.EvalError`.

Every literal, attribute name and entity type is bound as a constant (``_k<n>``): nothing from
a policy's text is ever spliced into the generated source. Anything this compiler does not know
raises :class:`~pdp.cedar.decode.Unsupported`, and the policy set is left to cedarpy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pdp.cedar import decode, runtime
from pdp.cedar.extensions import FUNCTIONS
from pdp.cedar.values import UID, CSet, EvalError, ceq

__all__ = ["Compiler"]

_BINARY = {"<": "_lt({l}, {r})", "<=": "_le({l}, {r})", ">": "_lt({r}, {l})",
           ">=": "_le({r}, {l})", "+": "_add({l}, {r})", "-": "_sub({l}, {r})",
           "*": "_mul({l}, {r})", "contains": "_contains({l}, {r})",
           "containsAll": "_containsAll({l}, {r})", "containsAny": "_containsAny({l}, {r})",
           "getTag": "_getTag(E, {l}, {r})", "hasTag": "_hasTag(E, {l}, {r})"}
_BOOL_OPS = {"<", "<=", ">", ">=", "contains", "containsAll", "containsAny", "hasTag", "==",
             "!=", "in", "&&", "||", "!", "has", "like", "is", "isEmpty"}
_BOOL_FUNCTIONS = {"lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual", "isIpv4",
                   "isIpv6", "isLoopback", "isMulticast", "isInRange"}
_VARS = {"principal": ("P", "PA"), "action": ("A", "AA"), "resource": ("R", "RA"),
         "context": ("C", None)}
_READS_CONTEXT = re.compile(r"\bC\b")  # the context's name in generated code
_MAX_DEPTH = 150  # deeper expressions are left to cedarpy (Python's parser nests less deep)


class Compiler:
    """Accumulates the source of many policies sharing one constant table."""

    def __init__(self) -> None:
        self.constants: dict[str, Any] = {}
        self._by_value: dict[tuple[type, Any], str] = {}
        self.lines: list[str] = []
        self.contextual: set[str] = set()  # the functions whose code reads the context
        self._temps = 0

    # -- constants ---------------------------------------------------------------------------

    def const(self, v: Any) -> str:
        try:
            k = (type(v), v)
            name = self._by_value.get(k)
        except TypeError:  # unhashable (a record)
            k, name = None, None
        if name is None:
            name = f"_k{len(self.constants)}"
            self.constants[name] = v
            if k is not None:
                self._by_value[k] = name
        return name

    # -- policies ----------------------------------------------------------------------------

    def policy(self, fname: str, est: Mapping[str, Any],
               slots: Mapping[str, UID] | None = None, *, indexed: bool = False) -> None:
        """Compile ``est`` as function ``fname``. ``indexed``: leave out the scopes' ``==``
        and ``in`` tests (a :class:`~pdp.cedar.scopes.ScopeIndex` lookup has made them)."""
        slots = slots or {}
        parts = [p for p in (self._scope(est.get("principal"), "principal", slots, indexed),
                             self._scope(est.get("action"), "action", slots, indexed),
                             self._scope(est.get("resource"), "resource", slots, indexed))
                 if p]
        for cond in est.get("conditions") or []:
            kind = cond.get("kind")
            code = self._bool(cond.get("body"), slots, 0)
            if kind == "when":
                parts.append(code)
            elif kind == "unless":
                parts.append(f"(not {code})")
            else:
                raise decode.Unsupported(f"condition kind {kind!r:.40}")
        body = " and ".join(parts) if parts else "True"
        if _READS_CONTEXT.search(body):  # (a C in a literal would only make a policy that
            self.contextual.add(fname)   # does not read it count as reading it: the safe way)
        self.lines.append(f"def {fname}(P, A, R, C, E, PA, AA, RA):\n    return {body}\n")

    def _slot_or_entity(self, c: Mapping[str, Any], slots: Mapping[str, UID]) -> str:
        if "slot" in c:
            if c["slot"] not in slots:
                raise decode.Unsupported(f"unlinked slot {c['slot']!r:.40}")
            return self.const(slots[c["slot"]])
        return self.const(decode.uid(c["entity"]))

    def _scope(self, c: Any, var: str, slots: Mapping[str, UID], indexed: bool = False
               ) -> str | None:
        if not isinstance(c, Mapping):
            raise decode.Unsupported(f"{var} scope")
        v, anc = _VARS[var]
        op = c.get("op")
        if op == "All":
            return None
        if indexed and op in ("==", "in"):
            return None
        if op == "==":
            return f"({v} == {self._slot_or_entity(c, slots)})"
        if op == "in":
            if "entities" in c:
                k = self.const(CSet(decode.uid(e) for e in c["entities"]))
                return f"({v} in {k} or not {anc}.isdisjoint({k}))"
            k = self._slot_or_entity(c, slots)
            return f"({v} == {k} or {k} in {anc})"
        if op == "is":
            code = f"({v}[0] == {self.const(str(c['entity_type']))})"
            if "in" in c and not indexed:
                k = self._slot_or_entity(c["in"], slots)
                code = f"({code} and ({v} == {k} or {k} in {anc}))"
            return code
        raise decode.Unsupported(f"{var} scope operator {op!r:.40}")

    # -- expressions -------------------------------------------------------------------------

    def _bool(self, node: Any, slots: Mapping[str, UID], depth: int) -> str:
        code, kind = self.expr(node, slots, depth)
        # `_b` written out for a bool (the common case): `_b` itself raises Cedar's error
        return code if kind == "bool" else \
            f"((_w := {code}) is True or (_w is not False and _b(_w)))"

    def expr(self, node: Any, slots: Mapping[str, UID], depth: int) -> tuple[str, str]:
        """(Python expression, kind): kind ``bool`` means it yields a bool or raises;
        ``entity`` a uid; ``const`` a constant (code is its name); else ``any``."""
        if depth > _MAX_DEPTH:
            raise decode.Unsupported("expression nested too deeply")
        if not isinstance(node, Mapping) or len(node) != 1:
            raise decode.Unsupported("malformed expression")
        ((op, arg),) = node.items()
        d = depth + 1
        if op == "Value":
            v = decode.value(arg)
            return self.const(v), "bool" if type(v) is bool else "const"
        if op == "Var":
            if arg not in _VARS:
                raise decode.Unsupported(f"variable {arg!r:.40}")
            return _VARS[arg][0], "entity" if arg != "context" else "any"
        if op == "Slot":
            if arg not in slots:
                raise decode.Unsupported(f"unlinked slot {arg!r:.40}")
            return self.const(slots[arg]), "const"
        if op in ("!", "neg", "isEmpty"):
            code, kind = self.expr(arg["arg"], slots, d)
            if op == "!":
                return (f"(not {code})" if kind == "bool" else f"_not({code})"), "bool"
            return (f"_neg({code})" if op == "neg" else f"_isEmpty({code})"), \
                "bool" if op == "isEmpty" else "any"
        if op in ("&&", "||"):
            # a chain `a && b && c` (nested to the left) becomes one flat Python `and`
            operands = [arg["right"]]
            left = arg["left"]
            while isinstance(left, Mapping) and len(left) == 1 and op in left:
                operands.append(left[op]["right"])
                left = left[op]["left"]
            operands.append(left)
            codes = [self._bool(x, slots, d) for x in reversed(operands)]
            return "(" + (" and " if op == "&&" else " or ").join(codes) + ")", "bool"
        if op in ("==", "!="):
            code = self._eq(arg["left"], arg["right"], slots, d)
            return (code if op == "==" else f"(not {code})"), "bool"
        if op == "in":
            return self._in(arg["left"], arg["right"], slots, d), "bool"
        if op in _BINARY:
            left = self.expr(arg["left"], slots, d)[0]
            right = self.expr(arg["right"], slots, d)[0]
            return _BINARY[op].format(l=left, r=right), "bool" if op in _BOOL_OPS else "any"
        if op == ".":
            left = self.expr(arg["left"], slots, d)[0]
            return self._attr(left, self.const(str(arg["attr"]))), "any"
        if op == "has":
            return self._has(arg["left"], arg["attr"], slots, d), "bool"
        if op == "like":
            return self._like(arg, slots, d), "bool"
        if op == "is":
            return self._is(arg, slots, d), "bool"
        if op == "if-then-else":
            cond = self._bool(arg["if"], slots, d)
            then, tk = self.expr(arg["then"], slots, d)
            other, ok = self.expr(arg["else"], slots, d)
            return f"({then} if {cond} else {other})", "bool" if tk == ok == "bool" else "any"
        if op == "Set":
            items = [self.expr(x, slots, d) for x in arg]
            if all(c in self.constants for c, _ in items):
                values = [self.constants[c] for c, _ in items]
                return self.const(runtime._mkset(*values)), "const"
            return f"_set({', '.join(c for c, _ in items)})", "any"
        if op == "Record":
            items = [(self.const(str(k)), self.expr(x, slots, d)[0]) for k, x in arg.items()]
            return "{" + ", ".join(f"{k}: {c}" for k, c in items) + "}", "any"
        return self._call(op, arg, slots, d)

    def _eq(self, left: Any, right: Any, slots: Mapping[str, UID], d: int) -> str:
        lc, lk = self.expr(left, slots, d)
        rc, rk = self.expr(right, slots, d)
        for code in (lc, rc):
            if code in self.constants and type(self.constants[code]) in (str, UID):
                return f"({lc} == {rc})"
        if lk == rk == "entity":
            return f"({lc} == {rc})"
        return f"_ceq({lc}, {rc})"

    def _in(self, left: Any, right: Any, slots: Mapping[str, UID], d: int) -> str:
        lc, lk = self.expr(left, slots, d)
        rc, rk = self.expr(right, slots, d)
        if lc in ("P", "A", "R") and rc in self.constants:
            k = self.constants[rc]
            anc = lc + "A"
            if type(k) is UID:
                return f"({lc} == {rc} or {rc} in {anc})"
            if type(k) is CSet and all(type(x) is UID for x in k):
                return f"({lc} in {rc} or not {anc}.isdisjoint({rc}))"
        return f"_in(E, {lc}, {rc})"

    @staticmethod
    def _attr(left: str, name: str) -> str:
        """``left.name``; read straight from the request's entities and context (the common
        case), with ``_attr`` (which raises Cedar's error) when the attribute is missing."""
        if left in ("P", "A", "R"):
            return (f"(_v[{name}] if {name} in (_v := E.attrs.get({left}, _NOD))"
                    f" else _attr(E, {left}, {name}))")
        if left == "C":
            return f"(C[{name}] if {name} in C else _attr(E, C, {name}))"
        return f"_attr(E, {left}, {name})"

    def _has(self, left: Any, attr: Any, slots: Mapping[str, UID], d: int) -> str:
        path = [attr] if isinstance(attr, str) else list(attr)
        if not path or not all(isinstance(a, str) for a in path):
            raise decode.Unsupported("malformed `has`")
        base = self.expr(left, slots, d)[0]
        tests = []
        for i, name in enumerate(path):
            k = self.const(name)
            tests.append(f"({k} in E.attrs.get({base}, _NOD))" if base in ("P", "A", "R")
                         else f"({k} in C)" if base == "C" else f"_has(E, {base}, {k})")
            if i + 1 < len(path):
                base = self._attr(base, k)
        return "(" + " and ".join(tests) + ")"

    def _like(self, arg: Mapping[str, Any], slots: Mapping[str, UID], d: int) -> str:
        segments = [""]
        for elem in arg["pattern"]:
            if elem == "Wildcard":
                segments.append("")
            elif isinstance(elem, Mapping) and isinstance(elem.get("Literal"), str):
                segments[-1] += elem["Literal"]
            else:
                raise decode.Unsupported("malformed `like` pattern")
        left = self.expr(arg["left"], slots, d)[0]
        return f"{self.const(runtime.Like(segments))}({left})"

    def _is(self, arg: Mapping[str, Any], slots: Mapping[str, UID], d: int) -> str:
        left = self.expr(arg["left"], slots, d)[0]
        etype = self.const(str(arg["entity_type"]))
        if "in" not in arg:
            return f"_is({left}, {etype})"
        self._temps += 1
        t = f"_t{self._temps}"
        right = self.expr(arg["in"], slots, d)[0]
        return f"(_is(({t} := {left}), {etype}) and _in(E, {t}, {right}))"

    def _call(self, name: str, args: Any, slots: Mapping[str, UID], d: int) -> tuple[str, str]:
        fn = FUNCTIONS.get(name)
        if fn is None or not isinstance(args, list):
            raise decode.Unsupported(f"extension function or operator `{name:.60}`")
        arity, impl = fn
        compiled = [self.expr(a, slots, d) for a in args]
        if (arity is not None and len(args) != arity) or not args:  # an error when reached
            wrong = self.const(runtime.ext_call(impl, arity, name))
            return f"{wrong}({', '.join(c for c, _ in compiled)})", "any"
        kind = "bool" if name in _BOOL_FUNCTIONS else "any"
        if all(c in self.constants for c, _ in compiled):
            try:  # fold constant calls; a failing one stays a call (it errs when reached)
                return self.const(impl(*(self.constants[c] for c, _ in compiled))), \
                    "bool" if kind == "bool" else "const"
            except EvalError:
                pass
        return f"{self.const(impl)}({', '.join(c for c, _ in compiled)})", kind

    # -- output ------------------------------------------------------------------------------

    def namespace(self) -> dict[str, Any]:
        ns = dict(runtime.NAMESPACE)
        ns["_ceq"] = ceq
        ns.update(self.constants)
        return ns
