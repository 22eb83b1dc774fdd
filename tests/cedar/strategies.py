"""Hypothesis strategies for Cedar: policy text over every construct the language has, entity
graphs (hierarchies, records, sets, extension values, dangling references) and requests."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

TYPES = ("User", "Group", "Doc")
IDS = ("a", "b", "c")
ACTIONS = ("read", "write", "admin")
ATTRS = ("n", "s", "flag", "tags", "owner", "rec", "addr", "amount", "when", "dur")

LONGS = st.sampled_from([0, 1, -1, 2, 7, 100, 2**62, 2**63 - 1, -(2**63), 4611686018427387904])
STRINGS = st.sampled_from(["", "a", "ab", "abc", "b*c", "a\\*b", "x", "héllo", "A", " "])
IP_TEXT = st.sampled_from(["127.0.0.1", "10.0.0.1/8", "10.1.2.3", "192.168.1.0/24", "::1",
                           "ff02::1", "224.0.0.1", "2001:db8::/32", "10.0.0.0/33", "01.2.3.4",
                           "1.2.3", "::ffff:1.2.3.4", "0.0.0.0/0", "fe80::1/64", "127.1.1.1/7"])
DECIMAL_TEXT = st.sampled_from(["0.0", "1.5", "-1.5", "1.50", "12.3456", "1.23456", "1.",
                                "922337203685477.5807", "922337203685477.5808", "-0.0001",
                                "abc"])
DATETIME_TEXT = st.sampled_from([
    "2024-01-01", "2024-02-29", "2023-02-29", "1970-01-01T00:00:00Z",
    "2024-06-01T12:30:00.250Z", "2024-06-01T12:30:00+0230", "2024-06-01T12:30:00.001-1100",
    "1969-12-31T23:59:59Z", "0001-01-01", "9999-12-31T23:59:59.999Z", "2024-13-01",
    "2024-06-01T24:00:00Z", "2024-06-01T12:30:00+2400", "2024-06-01 12:30:00"])
DURATION_TEXT = st.sampled_from(["1d", "2h", "30m", "45s", "250ms", "1d2h3m4s5ms", "-1d",
                                 "-90m", "0ms", "1ms2s", "", "-", "9223372036854775807ms",
                                 "106751991167d", "1m30s"])
PATTERNS = st.sampled_from(['"a*"', '"*b*"', '"*"', '"a\\*b"', '"*c"', '"ab"', '"a*b*c"',
                            '""', '"h*o"', '"**"'])


def _q(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def entity_literal() -> st.SearchStrategy[str]:
    return st.builds(lambda t, i: f'{t}::"{i}"', st.sampled_from(TYPES), st.sampled_from(IDS))


def _leaf(kind: str) -> st.SearchStrategy[str]:
    var = st.sampled_from(["principal", "resource"])
    attr_of = lambda name: st.one_of(  # noqa: E731
        var.map(lambda v: f"{v}.{name}"), st.just(f"context.{name}"))
    return {
        "long": st.one_of(LONGS.map(lambda n: f"({n})" if n < 0 else str(n)), attr_of("n"),
                          st.just("resource.rec.x")),
        "str": st.one_of(STRINGS.map(_q), attr_of("s"), st.just("principal.rec.y")),
        "bool": st.one_of(st.sampled_from(["true", "false"]), attr_of("flag")),
        "entity": st.one_of(st.sampled_from(["principal", "resource", "action"]),
                            entity_literal(), attr_of("owner"),
                            st.just('Action::"read"')),
        "set": st.one_of(attr_of("tags"), st.just("[]"), st.just('["a", "b"]'),
                         st.just('[User::"a", Group::"b"]')),
        "record": st.one_of(attr_of("rec"), st.just("context"), st.just('{x: 1, y: "a"}')),
        "ip": st.one_of(IP_TEXT.map(lambda s: f"ip({_q(s)})"), attr_of("addr")),
        "decimal": st.one_of(DECIMAL_TEXT.map(lambda s: f"decimal({_q(s)})"),
                             attr_of("amount")),
        "datetime": st.one_of(DATETIME_TEXT.map(lambda s: f"datetime({_q(s)})"),
                              attr_of("when")),
        "duration": st.one_of(DURATION_TEXT.map(lambda s: f"duration({_q(s)})"),
                              attr_of("dur")),
    }[kind]


KINDS = ("long", "str", "bool", "entity", "set", "record", "ip", "decimal", "datetime",
         "duration")


def expr(kind: str, depth: int) -> st.SearchStrategy[str]:
    """A Cedar expression meant to be of ``kind``; now and then of any kind, to reach Cedar's
    type errors."""
    if depth <= 0:
        return _leaf(kind)
    sub = lambda k: expr(k, depth - 1)  # noqa: E731
    anything = st.sampled_from(KINDS).flatmap(sub)
    options: list[st.SearchStrategy[str]] = [_leaf(kind)]
    ite = st.builds(lambda c, a, b: f"(if {c} then {a} else {b})", sub("bool"), sub(kind),
                    sub(kind))
    options.append(ite)
    if kind == "long":
        options += [
            st.builds(lambda a, o, b: f"({a} {o} {b})", sub("long"),
                      st.sampled_from(["+", "-", "*"]), sub("long")),
            sub("long").map(lambda a: f"(-{a})"),
            st.builds(lambda d, m: f"{d}.{m}()", sub("duration"),
                      st.sampled_from(["toDays", "toHours", "toMinutes", "toSeconds",
                                       "toMilliseconds"])),
            sub("entity").map(lambda e: f'{e}.getTag("n")'),
        ]
    elif kind == "bool":
        options += [
            st.builds(lambda a, o, b: f"({a} {o} {b})", anything, st.sampled_from(["==", "!="]),
                      anything),
            st.builds(lambda k, o: (k, o), st.sampled_from(["long", "datetime", "duration",
                                                            "decimal", "str"]),
                      st.sampled_from(["<", "<=", ">", ">="])).flatmap(
                lambda ko: st.builds(lambda a, b: f"({a} {ko[1]} {b})", sub(ko[0]),
                                     sub(ko[0]))),
            st.builds(lambda a, o, b: f"({a} {o} {b})", sub("bool"),
                      st.sampled_from(["&&", "||"]), sub("bool")),
            sub("bool").map(lambda a: f"(!{a})"),
            st.builds(lambda a, b: f"({a} in {b})", sub("entity"),
                      st.one_of(sub("entity"), sub("set"))),
            st.builds(lambda a, n: f"({a} has {n})", st.one_of(sub("entity"), sub("record")),
                      st.sampled_from([*ATTRS, "x", "y", "rec.x", "rec.z", "owner.n"])),
            st.builds(lambda a, p: f"({a} like {p})", sub("str"), PATTERNS),
            st.builds(lambda a, t: f"({a} is {t})", sub("entity"), st.sampled_from(TYPES)),
            st.builds(lambda a, t, b: f"({a} is {t} in {b})", sub("entity"),
                      st.sampled_from(TYPES), st.one_of(sub("entity"), sub("set"))),
            st.builds(lambda s, x: f"{s}.contains({x})", sub("set"), anything),
            st.builds(lambda s, m, t: f"{s}.{m}({t})", sub("set"),
                      st.sampled_from(["containsAll", "containsAny"]), sub("set")),
            sub("set").map(lambda s: f"{s}.isEmpty()"),
            st.builds(lambda e, t: f"{e}.hasTag({t})", sub("entity"),
                      st.sampled_from(['"n"', '"s"', '"x"'])),
            st.builds(lambda a, m: f"{a}.{m}()", sub("ip"),
                      st.sampled_from(["isIpv4", "isIpv6", "isLoopback", "isMulticast"])),
            st.builds(lambda a, b: f"{a}.isInRange({b})", sub("ip"), sub("ip")),
            st.builds(lambda a, m, b: f"{a}.{m}({b})", sub("decimal"),
                      st.sampled_from(["lessThan", "lessThanOrEqual", "greaterThan",
                                       "greaterThanOrEqual"]), sub("decimal")),
        ]
    elif kind == "set":
        options.append(st.lists(anything, max_size=3).map(lambda xs: f"[{', '.join(xs)}]"))
        options.append(st.lists(sub("entity"), max_size=3).map(
            lambda xs: f"[{', '.join(xs)}]"))
    elif kind == "record":
        options.append(st.builds(lambda a, b: f"{{x: {a}, y: {b}}}", sub("long"), sub("str")))
        options.append(sub("record").map(lambda r: f"{r}.rec"))
    elif kind == "datetime":
        options += [st.builds(lambda a, b: f"{a}.offset({b})", sub("datetime"), sub("duration")),
                    sub("datetime").map(lambda a: f"{a}.toDate()")]
    elif kind == "duration":
        options += [st.builds(lambda a, b: f"{a}.durationSince({b})", sub("datetime"),
                              sub("datetime")),
                    sub("datetime").map(lambda a: f"{a}.toTime()")]
    elif kind == "str":
        options.append(sub("entity").map(lambda e: f'{e}.getTag("s")'))
    typed = st.one_of(*options)
    return st.one_of(typed, typed, typed, typed, typed, typed, typed, typed, typed, anything)


def scope(var: str) -> st.SearchStrategy[str]:
    ent = entity_literal()
    if var == "action":
        act = st.sampled_from(ACTIONS).map(lambda a: f'Action::"{a}"')
        return st.one_of(st.just("action"), act.map(lambda a: f"action == {a}"),
                         act.map(lambda a: f"action in {a}"),
                         st.lists(act, min_size=1, max_size=3).map(
                             lambda xs: f"action in [{', '.join(xs)}]"))
    return st.one_of(st.just(var), ent.map(lambda e: f"{var} == {e}"),
                     ent.map(lambda e: f"{var} in {e}"),
                     st.sampled_from(TYPES).map(lambda t: f"{var} is {t}"),
                     st.builds(lambda t, e: f"{var} is {t} in {e}", st.sampled_from(TYPES), ent))


def policy(depth: int = 2) -> st.SearchStrategy[str]:
    condition = st.builds(lambda k, e: f"{k} {{ {e} }}", st.sampled_from(["when", "unless"]),
                          expr("bool", depth))
    return st.builds(
        lambda eff, p, a, r, conds: f"{eff}({p}, {a}, {r}) {' '.join(conds)};",
        st.sampled_from(["permit", "permit", "forbid"]), scope("principal"), scope("action"),
        scope("resource"), st.lists(condition, max_size=2))


def policy_set() -> st.SearchStrategy[str]:
    return st.lists(policy(), min_size=1, max_size=4).map("\n".join)


# -- data --------------------------------------------------------------------------------


def _uid(t: str, i: str) -> dict[str, str]:
    return {"type": t, "id": i}


UIDS = st.builds(_uid, st.sampled_from(TYPES), st.sampled_from(IDS))


def _extn(fn: str, text: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    return text.map(lambda s: {"__extn": {"fn": fn, "arg": s}})


VALID_IP = st.sampled_from(["127.0.0.1", "10.0.0.1/8", "::1", "224.0.0.1", "192.168.1.7"])
VALID_DECIMAL = st.sampled_from(["0.0", "1.5", "-1.5", "12.3456"])
VALID_DATETIME = st.sampled_from(["2024-01-01", "1970-01-01T00:00:00Z",
                                  "2024-06-01T12:30:00+0230"])
VALID_DURATION = st.sampled_from(["1d", "-90m", "1h30m", "0ms"])

ATTR_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "n": LONGS, "s": STRINGS, "flag": st.booleans(),
    "tags": st.lists(st.one_of(STRINGS, LONGS, st.booleans()), max_size=3),
    "owner": UIDS.map(lambda u: {"__entity": u}),
    "rec": st.fixed_dictionaries({"x": LONGS, "y": STRINGS},
                                 optional={"rec": st.just({"x": 1})}),
    "addr": _extn("ip", VALID_IP), "amount": _extn("decimal", VALID_DECIMAL),
    "when": _extn("datetime", VALID_DATETIME), "dur": _extn("duration", VALID_DURATION),
}
# now and then a value of the wrong type, as untyped data has
ANY_VALUE = st.sampled_from(list(ATTR_VALUES)).flatmap(lambda k: ATTR_VALUES[k])


def attributes() -> st.SearchStrategy[dict[str, Any]]:
    return st.lists(st.sampled_from(ATTRS), unique=True, min_size=len(ATTRS) - 2,
                    max_size=len(ATTRS)).flatmap(
        lambda names: st.fixed_dictionaries({
            n: st.one_of(ATTR_VALUES[n], ATTR_VALUES[n], ATTR_VALUES[n], ANY_VALUE)
            for n in names}))


def entities() -> st.SearchStrategy[list[dict[str, Any]]]:
    everyone = [(t, i) for t in TYPES for i in IDS]
    actions = [_uid("Action", a) for a in ACTIONS]

    def entity(ti: tuple[str, str]) -> st.SearchStrategy[dict[str, Any]]:
        later = everyone[everyone.index(ti) + 1:]  # parents come later: no cycles
        parents = (st.lists(st.sampled_from(later), max_size=2, unique=True)
                   if later else st.just([]))
        return st.fixed_dictionaries({
            "uid": st.just(_uid(*ti)), "attrs": attributes(),
            "parents": parents.map(lambda ps: [_uid(*p) for p in ps]),
            "tags": st.dictionaries(st.sampled_from(["n", "s", "x"]), ANY_VALUE, max_size=2)})

    action_entities = st.just([{"uid": actions[0], "attrs": {}, "parents": [actions[2]]},
                               {"uid": actions[1], "attrs": {}, "parents": [actions[2]]}])
    users = st.lists(st.sampled_from(everyone), unique=True, min_size=6,
                     max_size=len(everyone)).flatmap(
        lambda chosen: st.tuples(*(entity(ti) for ti in chosen)).map(list))
    return st.builds(lambda a, b: a + b, users, action_entities)


def request() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "principal": UIDS, "action": st.sampled_from(ACTIONS).map(lambda a: _uid("Action", a)),
        "resource": UIDS, "context": attributes()})
