"""``pdp eval [REQUEST]``: decide an AuthZEN evaluation (or evaluations) request offline, and
say why.

REQUEST is a file holding the request JSON, the JSON itself (an argument starting with
``{``), or ``-`` (the default) for standard input. A body with ``evaluations`` is a batch,
decided with its ``evaluations_semantic``. The policy set is ``--policies DIR`` (default: the
server's, ``PDP_POLICIES``, else the shipped default set), with its ``entities.json`` in
memory; nothing is written anywhere. The first line says which policy set decided (with
``--format json``, a note on standard error when it is the shipped default).

The default output is for people: the decision and its outcome (``permit``, ``forbid``: a
forbid policy matched, ``no_permit``: no permit policy matched, ``error``), the determining
policies with the ``file:line`` they start at, and the evaluation errors::

    policy set: policies/default
    decision: deny (forbid)
    determining policies:
      legal-hold-freezes-documents  policies/default/documents.cedar:48
    errors: none

``--format json`` prints the AuthZEN response body instead, as the server answers it; with
``--explain`` its ``context`` also holds ``outcome``, ``reasons`` (the determining policy
ids), ``errors`` and ``policies`` (``[{"id", "file", "line", "column"}]``).

A body with ``message`` is a COAZ request, as ``POST /coaz/v1/authorize`` takes it
(``{"message": <MCP JSON-RPC message>, "tools": [...], "claims": {...} | "token": "<JWT>",
"server": "<resource id>"}``): it goes through the same COAZ flow (mapping, decisions, the
JSON-RPC error) and ``--format json`` prints the endpoint's answer. ``claims`` are taken as
validated; a ``token`` is validated with the ``PDP_TOKEN_*`` settings.

Exit status: 0 when the request was decided (permit or deny; with ``--exit-code``, 1 on a
deny, of any item of a batch, or a COAZ message not allowed); 2 when the request or the
policy set is invalid.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from pdp.authzen import load_json
from pdp.cli.check import diagnostic_path, format_diagnostic
from pdp.cli.text import plain
from pdp.errors import PDPError, PolicyLoadError
from pdp.service import PDPService
from pdp.settings import Settings

__all__ = ["register", "run"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "eval", help="decide an evaluation or evaluations request offline, and say why",
        description=plain(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("request", nargs="?", default="-",
                   help="request file, inline JSON, or - for stdin (the default)")
    p.add_argument("--policies", type=Path, help="policy-set directory")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="text (default) or json: the AuthZEN response body")
    p.add_argument("--json", action="store_const", const="json", dest="format",
                   help="same as --format json")
    p.add_argument("--explain", action="store_true",
                   help="json: put the reasons and the policies' places in `context`")
    p.add_argument("--exit-code", action="store_true", help="exit 1 when the decision is deny")
    p.set_defaults(run=run)


def _read(request: str) -> str:
    if request == "-":
        return sys.stdin.read()
    if request.lstrip().startswith("{"):
        return request
    return Path(request).read_text(encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    # offline: the policy set's entities.json only; never write to a server's database
    overrides: dict[str, Any] = {"decision_log": "off", "entity_store": "memory",
                                 "watch": False}
    if args.policies is not None:
        overrides["policies"] = args.policies
    settings = Settings().model_copy(update=overrides)
    directory = settings.policies_dir()
    explain = args.format == "text" or args.explain
    coaz: dict[str, Any] | None = None
    try:
        text = _read(args.request)
        service = PDPService.from_settings(settings)
        body = load_json(text)
        if isinstance(body, dict) and "message" in body:
            coaz = asyncio.run(_coaz(service, body, explain))
            result = {"evaluations": coaz["decisions"]}
        else:
            result = service.evaluations(body, explain=explain)
    except PolicyLoadError as exc:
        for d in exc.diagnostics:
            print(format_diagnostic(directory, d), file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot read the request: {exc}", file=sys.stderr)
        return 2
    except (PDPError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    answers = result["evaluations"] if "evaluations" in result else [result]
    for answer in answers:  # the server's locations are relative to the policy set
        for place in (answer.get("context") or {}).get("policies", []):
            if "file" in place:
                place["file"] = diagnostic_path(directory, place["file"])
    chosen = args.policies is not None or settings.policies is not None
    used = f"policy set: {directory}" + (
        "" if chosen else " (the shipped default; choose with --policies)")
    if coaz is not None:
        return _print_coaz(coaz, used, args, chosen)
    if args.format == "json":
        if not chosen:  # never silently the shipped example set
            print(used, file=sys.stderr)
        print(json.dumps(result))
    elif "evaluations" in result:
        print(used)
        for i, answer in enumerate(answers):
            print(f"evaluations[{i}]:")
            print(_text(answer, "  "))
    else:
        print(used)
        print(_text(result, ""))
    denied = any(not a.get("decision") for a in answers)
    return 1 if args.exit_code and denied else 0


async def _coaz(service: PDPService, body: dict[str, Any], explain: bool) -> dict[str, Any]:
    """The ``/coaz/v1/authorize`` answer to ``body``, by the one COAZ flow."""
    from pdp.coaz import DenialStyle, ToolCatalog
    from pdp.coaz_service import (
        CoazCore,
        LocalDecider,
        authorize_body,
        mapping_options,
        method_table,
        parse_call,
    )

    settings = service.settings
    call = parse_call(body, settings.resource_id)
    catalog = ToolCatalog.from_tools_list(call.tools or [], server_id=call.server)
    core = CoazCore(LocalDecider(service),
                    mapping_options(settings, settings.resource_id, method_table(settings)),
                    style=DenialStyle(explain=explain), ask_policies=False, settings=settings)
    try:
        result = await core.authorize(call.message, catalog, claims=call.claims,
                                      token=call.token, server=call.server)
    finally:
        await core.aclose()
    return authorize_body(result)


def _print_coaz(answer: dict[str, Any], used: str, args: argparse.Namespace,
                chosen: bool) -> int:
    if args.format == "json":
        if not chosen:
            print(used, file=sys.stderr)
        print(json.dumps(answer))
    else:
        print(used)
        dialect = f" ({answer['dialect']})" if "dialect" in answer else ""
        verdict = "allowed" if answer["allow"] else "not allowed"
        print(f"coaz: {answer['outcome']}{dialect}, {verdict}")
        for i, decision in enumerate(answer["decisions"]):
            print(f"evaluations[{i}]:")
            print(_text(decision, "  "))
        error = answer.get("error")
        if error is not None:
            print(f"error: {error['code']} {error['message']}")
    return 1 if args.exit_code and not answer["allow"] else 0


def _text(answer: dict[str, Any], indent: str) -> str:
    ctx = answer.get("context") or {}
    outcome = ctx.get("outcome", "permit" if answer.get("decision") else "no_permit")
    lines = [f"decision: {'permit' if answer.get('decision') else 'deny'} ({outcome})"]
    error = ctx.get("error")
    if error is not None:
        lines.append(f"not evaluated: {error.get('message', error)}")
    places = ctx.get("policies", [])
    if places:
        lines.append("determining policies:")
        width = max(len(p["id"]) for p in places)
        for p in places:
            where = f"{p['file']}:{p['line']}" if "file" in p else "(unknown)"
            lines.append(f"  {p['id'].ljust(width)}  {where}")
    elif error is None:
        lines.append("determining policies: none")
    errors = ctx.get("errors", [])
    lines.append("errors: none" if not errors else "errors:")
    lines.extend(f"  {e}" for e in errors)
    return "\n".join(indent + line for line in lines)
