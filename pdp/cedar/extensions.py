"""Cedar's extension types: ``decimal``, ``ipaddr``, ``datetime`` and ``duration``.

Parsing follows Cedar's own rules (patterns anchored at both ends, ranges checked) with fixed,
non-ambiguous regular expressions; every failure is an :class:`EvalError`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from pdp.cedar.values import (
    LONG_MAX,
    LONG_MIN,
    DateTime,
    Decimal,
    Duration,
    EvalError,
    Ext,
    IPAddr,
    type_name,
)

__all__ = ["FUNCTIONS", "parse_decimal", "parse_ip", "parse_datetime", "parse_duration"]

_DECIMAL = re.compile(r"(-?[0-9]+)\.([0-9]+)")
_DURATION = re.compile(
    r"-?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?(?:([0-9]+)ms)?")
_DATETIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
                       r"(?:T([0-9]{2}):([0-9]{2}):([0-9]{2})"
                       r"(?:\.([0-9]{3}))?(?:(Z)|([+-])([0-9]{2})([0-9]{2})))?")
_IP_CHARS = re.compile(r"[0-9a-fA-F:./]*")
_DAY = 86_400_000


def _ext_error(fn: str, msg: str) -> EvalError:
    return EvalError(f"error while evaluating `{fn}` extension function: {msg}")


def _string(v: Any, ext: str) -> str:
    if type(v) is not str:
        raise EvalError(f"type error: expected string, got {type_name(v)}")
    return v


def _int(digits: str) -> int:
    """A decimal integer of any length (leading zeros allowed); too large for 64 bits is
    reported as 2**64 rather than converting thousands of digits."""
    sign = -1 if digits.startswith("-") else 1
    body = digits.lstrip("-").lstrip("0")
    return sign * (int(body) if len(body) <= 20 and body else (2**64 if body else 0))


def parse_decimal(s: str) -> Decimal:
    m = _DECIMAL.fullmatch(s)
    if m is None:
        raise _ext_error("decimal", f"`{s}` is not a well-formed decimal value")
    left, right = m.group(1), m.group(2)
    if len(right) > 4:
        raise _ext_error("decimal", f"too many digits after the decimal in `{s}`")
    whole = _int(left)
    if not LONG_MIN <= whole <= LONG_MAX:
        raise _ext_error("decimal", "overflow when converting to decimal")
    frac = int(right) * 10 ** (4 - len(right))
    value = whole * 10_000 + (-frac if left.startswith("-") else frac)
    if not LONG_MIN <= whole * 10_000 <= LONG_MAX or not LONG_MIN <= value <= LONG_MAX:
        raise _ext_error("decimal", "overflow when converting to decimal")
    return Decimal(value)


def _prefix(s: str, limit: int, width: int) -> int:
    if len(s) > width or not s.isascii() or not s.isdigit() or (s.startswith("0") and s != "0"):
        raise _ext_error("ipaddr", f"error parsing prefix `{s}`")
    n = int(s)
    if n > limit:
        raise _ext_error("ipaddr", f"error parsing prefix: {n} is larger than the limit {limit}")
    return n


def parse_ip(s: str) -> IPAddr:
    if len(s) > 43 or _IP_CHARS.fullmatch(s) is None:
        raise _ext_error("ipaddr", f"invalid IP address: {s}")
    if s.count(":") >= 2 and s.count(".") >= 2:
        raise _ext_error("ipaddr", "We do not accept IPv4 embedded in IPv6")
    addr_s, slash, prefix_s = s.partition("/")
    try:
        addr = ipaddress.ip_address(addr_s)
    except ValueError:
        raise _ext_error("ipaddr", f"invalid IP address: {s}") from None
    if addr.version == 4:
        prefix = _prefix(prefix_s, 32, 2) if slash else 32
    else:
        prefix = _prefix(prefix_s, 128, 3) if slash else 128
    return IPAddr((addr.version, int(addr), prefix))


def _days_from_civil(y: int, m: int, d: int) -> int:
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _month_days(y: int, m: int) -> int:
    if m == 2:
        return 29 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 28
    return 30 if m in (4, 6, 9, 11) else 31


def parse_datetime(s: str) -> DateTime:
    m = _DATETIME.fullmatch(s)
    if m is None:
        raise _ext_error("datetime", f"invalid datetime `{s}`")
    y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not 1 <= mo <= 12 or not 1 <= d <= _month_days(y, mo):
        raise _ext_error("datetime", f"invalid date: {s[:10]}")
    ms = _days_from_civil(y, mo, d) * _DAY
    if m.group(4) is not None:
        h, mi, sec = int(m.group(4)), int(m.group(5)), int(m.group(6))
        if h > 23 or mi > 59 or sec > 59:
            raise _ext_error("datetime", f"invalid hour/minute/second: {s[11:19]}")
        ms += ((h * 60 + mi) * 60 + sec) * 1000 + int(m.group(7) or 0)
        if m.group(9) is not None:
            oh, om = int(m.group(10)), int(m.group(11))
            if oh >= 24 or om >= 60:
                raise _ext_error("datetime", f"invalid offset range: {oh}{om}")
            off = (oh * 3600 + om * 60) * 1000
            ms += -off if m.group(9) == "+" else off
    return DateTime(ms)


def parse_duration(s: str) -> Duration:
    m = _DURATION.fullmatch(s)
    if m is None or s in ("", "-"):
        raise _ext_error("duration", "invalid duration pattern")
    d, h, mi, sec, ms = (_int(g) if g is not None else 0 for g in m.groups())
    total = (((d * 24 + h) * 60 + mi) * 60 + sec) * 1000 + ms
    if s.startswith("-"):
        total = -total
    if not LONG_MIN <= total <= LONG_MAX:
        raise _ext_error("duration", "Duration overflows internal representation")
    return Duration(total)


# -- functions and methods, by Cedar name ----------------------------------------------------


def _as(v: Any, cls: type[Ext], fn: str) -> Any:
    if type(v) is not cls:
        raise EvalError(f"type error: expected {cls.name}, got {type_name(v)}")
    return v.v


def _long(n: int, fn: str, what: str) -> int:
    if not LONG_MIN <= n <= LONG_MAX:
        raise _ext_error(fn, f"overflows when {what}")
    return n


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // b
    return q if a >= 0 else -q


def _mask(full: int, bits: int, prefix: int) -> int:
    return (full << (bits - prefix)) & full


def _is_in_range(a: Any, *ranges: Any) -> bool:
    v, addr, prefix = _as(a, IPAddr, "isInRange")
    found = False
    for r in ranges:
        rv, raddr, rprefix = _as(r, IPAddr, "isInRange")
        if rv != v:
            continue
        bits = 32 if v == 4 else 128
        full = (1 << bits) - 1
        net, bcast = addr & _mask(full, bits, prefix), addr | (full >> prefix)
        rnet, rbcast = raddr & _mask(full, bits, rprefix), raddr | (full >> rprefix)
        found = found or (rnet <= net and bcast <= rbcast)
    return found


def _loopback(a: Any) -> bool:
    v, addr, prefix = _as(a, IPAddr, "isLoopback")
    if v == 4:
        return bool((addr >> 24) == 127 and prefix >= 8)
    return bool(addr == 1 and prefix >= 128)


def _multicast(a: Any) -> bool:
    v, addr, prefix = _as(a, IPAddr, "isMulticast")
    if v == 4:
        return bool((addr >> 28) == 0xE and prefix >= 4)
    return bool((addr >> 120) == 0xFF and prefix >= 8)


def _offset(a: Any, b: Any) -> DateTime:
    x, y = _as(a, DateTime, "offset"), _as(b, Duration, "offset")
    return DateTime(_long(x + y, "offset", "adding an offset"))


def _since(a: Any, b: Any) -> Duration:
    x, y = _as(a, DateTime, "durationSince"), _as(b, DateTime, "durationSince")
    return Duration(_long(x - y, "durationSince", "computing the duration"))


def _to_date(a: Any) -> DateTime:
    x = _as(a, DateTime, "toDate")
    return DateTime(_long(x - x % _DAY, "toDate", "computing the date"))


def _cmp(op: Callable[[int, int], bool], fn: str) -> Callable[[Any, Any], bool]:
    def method(a: Any, b: Any) -> bool:
        return op(_as(a, Decimal, fn), _as(b, Decimal, fn))
    return method


FUNCTIONS: dict[str, tuple[int | None, Callable[..., Any]]] = {
    # name: (number of arguments, or None for at least one; implementation)
    "decimal": (1, lambda s: parse_decimal(_string(s, "decimal"))),
    "ip": (1, lambda s: parse_ip(_string(s, "ipaddr"))),
    "datetime": (1, lambda s: parse_datetime(_string(s, "datetime"))),
    "duration": (1, lambda s: parse_duration(_string(s, "duration"))),
    "lessThan": (2, _cmp(lambda x, y: x < y, "lessThan")),
    "lessThanOrEqual": (2, _cmp(lambda x, y: x <= y, "lessThanOrEqual")),
    "greaterThan": (2, _cmp(lambda x, y: x > y, "greaterThan")),
    "greaterThanOrEqual": (2, _cmp(lambda x, y: x >= y, "greaterThanOrEqual")),
    "isIpv4": (1, lambda a: _as(a, IPAddr, "isIpv4")[0] == 4),
    "isIpv6": (1, lambda a: _as(a, IPAddr, "isIpv6")[0] == 6),
    "isLoopback": (1, _loopback),
    "isMulticast": (1, _multicast),
    "isInRange": (None, _is_in_range),
    "offset": (2, _offset),
    "durationSince": (2, _since),
    "toDate": (1, _to_date),
    "toTime": (1, lambda a: Duration(_as(a, DateTime, "toTime") % _DAY)),
    "toMilliseconds": (1, lambda a: _as(a, Duration, "toMilliseconds")),
    "toSeconds": (1, lambda a: _trunc_div(_as(a, Duration, "toSeconds"), 1000)),
    "toMinutes": (1, lambda a: _trunc_div(_as(a, Duration, "toMinutes"), 60_000)),
    "toHours": (1, lambda a: _trunc_div(_as(a, Duration, "toHours"), 3_600_000)),
    "toDays": (1, lambda a: _trunc_div(_as(a, Duration, "toDays"), _DAY)),
}
