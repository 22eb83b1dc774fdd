"""One typed settings object (environment variables with the ``PDP_`` prefix).

Built once at the edge (the CLI or a test) and passed in; nothing reads the environment at
import time. Command-line flags are applied on top with :meth:`Settings.model_copy`.

What a part of the PDP is configured with, derived from :class:`Settings` at the edge (token
validation: :class:`pdp.tokens.TokenSettings`; search: :class:`pdp.search.SearchOptions`), is
a :class:`SettingsModel`: a frozen pydantic model whose every field has a description, which
refuses unknown fields and raises :class:`pdp.errors.InvalidSettings` naming each refused
field.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pdp.errors import InvalidSettings

__all__ = ["Settings", "SettingsModel", "TokenIssuer", "check_public_url", "refusal",
           "shipped_policies_dir"]

_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def check_public_url(value: str) -> str:
    """``value`` if it is an absolute ``https`` URL (``http`` only for a loopback host) with
    no query, fragment or user info; ValueError otherwise."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError on a malformed port)
    except ValueError as exc:
        raise ValueError(f"public URL {value!r}: {exc}") from None
    host = (parts.hostname or "").lower()
    loopback = host in _LOOPBACK_NAMES or host.startswith("127.")
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError(f"public URL {value!r}: must be an absolute https:// URL")
    if parts.scheme == "http" and not loopback:
        raise ValueError(f"public URL {value!r}: http is allowed only for a loopback host; "
                         "use https")
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ValueError(f"public URL {value!r}: must have no query or fragment")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"public URL {value!r}: must have no user info")
    return value

def refusal(model: str, error: ValidationError) -> str:
    """One line naming each field pydantic refused and why (``leeway: must be ...``)."""
    parts = []
    for item in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in item["loc"])
        why = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {why}" if where else why)
    return f"{model}: " + "; ".join(parts)


class SettingsModel(BaseModel):
    """Base of the typed settings a part of the PDP is built with: frozen, no unknown field,
    a description on every field (tests check it); invalid values raise
    :class:`pdp.errors.InvalidSettings` from the constructor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    if not TYPE_CHECKING:  # type checkers keep the typed constructor pydantic declares

        def __init__(self, /, **values: Any) -> None:
            try:
                super().__init__(**values)
            except ValidationError as exc:
                raise InvalidSettings(refusal(type(self).__name__, exc)) from None


class TokenIssuer(BaseModel):
    """One more authorization server whose access tokens are accepted (an entry of
    ``PDP_TOKEN_MORE_ISSUERS``, a JSON array)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: str = Field(min_length=1, description="Its `iss` value.")
    jwks_url: str | None = Field(default=None, description="Its JWKS URL.")
    jwks_file: Path | None = Field(default=None, description="Its JWKS file.")
    introspection_url: str | None = Field(
        default=None, description="Its RFC 7662 introspection endpoint.")
    introspection_client_id: str | None = Field(
        default=None, description="Client id this server authenticates to it with.")
    introspection_client_secret: SecretStr | None = Field(
        default=None, description="The client secret.")
    introspection_client_auth: Literal["client_secret_basic", "client_secret_post"] = Field(
        default="client_secret_basic", description="How the client authenticates.")
    introspection_require_audience: bool = Field(
        default=True, description="Refuse an introspection answer without `aud`.")


def shipped_policies_dir() -> Path:
    """Where the shipped policy sets live: inside the wheel, or at the checkout's top level."""
    packaged = Path(__file__).resolve().parent / "_shipped_policies"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "policies"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PDP_", extra="ignore", frozen=True)

    # -- serving ------------------------------------------------------------------------
    policies: Path | None = Field(
        default=None, description="Policy-set directory; the shipped policies/default if unset.")
    host: str = Field(default="127.0.0.1", description="Bind address. A non-loopback address "
                      "needs PEP credentials (or ALLOW_UNAUTHENTICATED).")
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port.")
    public_url: str | None = Field(
        default=None, description="Base URL advertised in metadata (http://HOST:PORT if unset).")
    workers: int = Field(default=1, ge=1, description="uvicorn worker processes.")
    log_level: str = Field(default="info", description="Log level (uvicorn's loggers included).")
    opentelemetry: bool = Field(
        default=False, description="FastAPI's native OpenTelemetry traces, metrics and logs "
        "through the globally configured providers (off: not even looked up, about 3 µs per "
        "request saved).")
    log_format: Literal["text", "json"] = Field(
        default="text", description="'json': one JSON object per line, with the request id.")
    shutdown_timeout: float = Field(
        default=30.0, gt=0, description="Seconds a stopping server (SIGTERM) waits for "
        "in-flight requests before closing their connections.")
    playground: bool = Field(
        default=False, description="Serve the policy playground page at /playground: open on "
        "a loopback address without PEP credentials, otherwise only with an admin credential "
        "(the server refuses to start without one).")
    tls_certfile: Path | None = Field(
        default=None, description="PEM certificate (chain): serve HTTPS.")
    tls_keyfile: Path | None = Field(default=None, description="PEM private key of the "
                                     "certificate.")
    tls_keyfile_password: SecretStr | None = Field(
        default=None, description="Password of an encrypted TLS_KEYFILE.")
    tls_client_ca: Path | None = Field(
        default=None, description="PEM CA bundle: require client certificates it signed "
        "(mutual TLS).")
    require_tls: bool = Field(
        default=False, description="Refuse to start with PEP credentials on a non-loopback "
        "address without TLS (otherwise a warning: credentials would cross the network in "
        "clear).")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Addresses of reverse proxies whose X-Forwarded-For "
        "/ X-Forwarded-Proto are believed (comma-separated; '*' for any). Empty: the headers "
        "are ignored and the client address is the socket's peer.")
    allowed_hosts: Annotated[list[str], NoDecode] | None = Field(
        default=None, description="Host header values answered (comma-separated; 'name', "
        "'*.domain' or '*'); others get 400. Unset: any host with PEP credentials; without "
        "them the loopback names plus PUBLIC_URL's host (against DNS rebinding).")

    # -- translation --------------------------------------------------------------------
    namespace: str = Field(
        default="", description="Cedar namespace prefixed to types and actions ('' = none).")
    type_names: dict[str, str] = Field(
        default_factory=dict, description="AuthZEN entity types that are not Cedar names, "
        "with the Cedar type policies use for each (JSON object, e.g. {\"support-agent\": "
        "\"support_agent\", \"ref/prompt\": \"ref_prompt\"}); reversible: a Cedar name in "
        "it is refused as an AuthZEN type. Applies to evaluation requests.")
    action_properties_key: str = Field(
        default="action_properties", description="Context key that carries action.properties.")

    # -- request limits -----------------------------------------------------------------
    max_body_bytes: int = Field(
        default=1_048_576, ge=1, description="Largest request body in bytes (413 beyond).")
    max_depth: int = Field(
        default=32, ge=2, description="Deepest JSON nesting of a request body (400 beyond).")
    max_batch: int = Field(
        default=1000, ge=1, description="Most evaluations in one batch request (413 beyond).")
    max_search_page: int = Field(
        default=1000, ge=1, description="Most results per search page (a larger page.limit "
        "is lowered to it, as AuthZEN allows).")
    header_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a client has to send a request's head "
        "(request line and headers) from the connection or its first byte (pdp serve).")
    max_header_bytes: int = Field(
        default=32_768, ge=1024, description="Largest request head (request line and "
        "headers) `pdp serve` reads; a longer one is answered 431.")
    max_search_scan: int = Field(
        default=10_000, ge=1, description="Most candidate entities one search request examines; "
        "past it the page ends early (fewer results, a next_token to continue).")
    request_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to receive a request body (408 past it) "
        "and to answer requests that await work (503 `timeout`).")
    rate_limit: float | None = Field(
        default=None, gt=0, description="Requests per second per client on /access/v1/ and "
        "/coaz/v1/ (token bucket per process; off if unset).")
    rate_limit_burst: int | None = Field(
        default=None, ge=1, description="Bucket size: requests a client may send at once "
        "(RATE_LIMIT rounded up, at least 1, if unset).")

    # -- decisions ----------------------------------------------------------------------
    explain: bool = Field(default=False, description="Always put reasons in decision context.")
    decision_cache: Literal["on", "off"] = Field(
        default="on", description="Cache decisions, keyed by the request, the policy-set "
        "version and the entity-store version.")
    decision_cache_bytes: int = Field(
        default=67_108_864, ge=0, description="Memory budget of the decision cache in bytes "
        "(each entry is charged its key, its decision and the LRU's bookkeeping; the least "
        "recently used go first); 0 turns the cache off.")
    decision_cache_size: int | None = Field(
        default=None, description="Replaced by PDP_DECISION_CACHE_BYTES (a memory budget, "
        "not a count of entries): setting it stops the PDP at start with a message saying so.")
    entity_depth: int = Field(
        default=3, ge=0, description="Attribute-reference depth of the per-request entity slice.")
    forbid_errors: Literal["deny", "skip"] = Field(
        default="deny", description="'deny': a forbid policy whose evaluation errors denies "
        "(the error is in the explanation and the decision log); 'skip': Cedar's own "
        "semantics (the erroring forbid is ignored and a permit may stand).")
    trusted_properties: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Entity attributes request properties may set on "
        "an entity the store holds (comma-separated `attr` or `type.attr`); every other "
        "property of a stored entity is ignored (the store is authoritative).")
    evaluator: Literal["native", "cedarpy"] = Field(
        default="native", description="Who evaluates the policies: `native` (pdp.cedar, "
        "Cedar's semantics compiled to Python; a policy set it does not compile is left to "
        "cedarpy) or `cedarpy` (Cedar itself, for every decision).")
    http_lane: Literal["direct", "asgi"] = Field(
        default="direct", description="How `pdp serve` answers POST to the decision "
        "endpoints: `direct` (its HTTP protocol calls the same checks and endpoints as the "
        "application, without an ASGI request: several times less CPU per request) or "
        "`asgi` (through the application like every other request). Requests the direct "
        "lane cannot answer exactly as the application would (bearer JWTs, Expect: "
        "100-continue, pipelined behind another request) always go through ASGI.")
    bench_noop: Literal["on", "off"] = Field(
        default="off", description="Serve POST /bench/noop (reads the body, answers a fixed "
        "decision): the baseline the HTTP benchmark compares the AuthZEN endpoints with.")

    # -- reload / admin -----------------------------------------------------------------
    watch: bool = Field(default=True, description="Reload the policy directory when it changes.")
    admin_token: SecretStr | None = Field(
        default=None, description="Plain admin bearer token (prefer ADMIN_API_KEYS, hashed).")
    admin_api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Admin API keys, hashed: NAME=sha256:HEX entries "
        "(comma-separated). Admin and PEP credentials never stand in for each other.")
    reload_settle: float = Field(
        default=0.5, ge=0, description="Seconds the policy directory must stay unchanged "
        "(two reads of every file agreeing) before a change goes live.")
    poll_interval: float = Field(
        default=1.0, gt=0, description="Seconds between polls of the shared version row and "
        "of the policy generation file (a reload asked of one worker reaches the others).")

    # -- storage --------------------------------------------------------------------------
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the entity store (SQLite file if unset).")
    data_dir: Path = Field(
        default=Path(".pdp"), description="Where the SQLite files (entities.db, decisions.db), "
        "the reload generation file and the workers' metrics live; the same for every worker. "
        "Relative to the working directory of the command.")
    entity_store: Literal["sql", "memory"] = Field(
        default="sql", description="'sql': the database (default); 'memory': entities.json only, "
        "no database, no entity admin API.")
    entity_max_staleness: float = Field(
        default=10.0, gt=0, description="Seconds a replica may decide on its entity mirror "
        "without a successful poll of the database; past that, decisions fail with 503.")
    decision_log: Literal["on", "off"] = Field(
        default="on", description="Record every decision in the decision log.")
    decision_log_url: str | None = Field(
        default=None, description="SQLite file or PostgreSQL URL of the decision log "
        "(DATA_DIR/decisions.db if unset).")
    decision_log_personal_data: Literal["full", "hashed", "omitted"] = Field(
        default="hashed", description="'full' stores context and properties; 'hashed' an "
        "HMAC-SHA256 of each value under PDP_DECISION_LOG_HASH_KEY; 'omitted' neither, and "
        "request values are removed from error messages.")
    decision_log_queue: int = Field(
        default=100_000, ge=1, description="Decisions held in memory for the writer; beyond "
        "that new ones are dropped and counted.")
    decision_log_retention_days: float = Field(
        default=30.0, gt=0, description="Older decision-log records are deleted (checked "
        "every 10 minutes).")
    decision_log_hash_key: SecretStr | None = Field(
        default=None, description="Key (hex, at least 16 bytes) of the HMAC-SHA256 digests "
        "PDP_DECISION_LOG_PERSONAL_DATA=hashed stores; unset: the file decision-log.key in the "
        "data directory, generated with mode 0600 on first use. The same on every replica "
        "whose digests are compared; rotating it is in docs/decision-log.md.")
    decision_log_write_interval: float = Field(
        default=0.01, gt=0, le=1.0, description="Seconds between appends of accepted "
        "decisions to the segment file in the data directory: at most this much is lost "
        "when the process is killed outright (kill -9).")
    decision_log_fsync_interval: float = Field(
        default=0.2, gt=0, le=60.0, description="Seconds between fsyncs of the segment file: "
        "at most this much (plus the write interval) is lost when the machine stops.")
    decision_log_ingest: Literal["process", "thread"] = Field(
        default="process", description="Where the decision log's SQL ingest runs: "
        "'process', a feeder process each serving process starts, supervises and stops "
        "(at a lower CPU priority, and not sharing the interpreter lock with decisions); "
        "'thread', a thread of the serving process.")
    page_token_key: SecretStr | None = Field(
        default=None, description="Secret that signs search page tokens; the same on every "
        "replica (random per process if unset: tokens then work only where they were issued).")

    # -- COAZ: access tokens (the MCP gateway and /coaz/v1/*) ------------------------------
    resource_id: str | None = Field(
        default=None, description="The MCP server's resource identifier (RFC 8707 / RFC 9728): "
        "the audience tokens must carry and $token.aud (the gateway: PUBLIC_URL + PATH if unset).")
    authorization_servers: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Authorization-server issuer URLs named in the "
        "protected-resource metadata (comma-separated).")
    token_issuers: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Accepted `iss` values (comma-separated; "
        "AUTHORIZATION_SERVERS if unset).")
    token_jwks_url: str | None = Field(default=None, description="JWKS URL of the issuer.")
    token_jwks_file: Path | None = Field(
        default=None, description="JWKS file (instead of a URL; for tests and air-gapped setups).")
    token_algorithms: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["RS256", "PS256", "ES256", "EdDSA"],
        description="Accepted JWS algorithms (comma-separated); `none` is never accepted.")
    token_leeway: int = Field(
        default=30, ge=0, le=300, description="Seconds of clock skew allowed for exp / nbf / iat.")
    scopes_supported: Annotated[list[str] | None, NoDecode] = Field(
        default=None, description="scopes_supported of the protected-resource metadata "
        "(RFC 9728; comma-separated; omitted if unset).")
    token_types: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["at+jwt", "JWT"],
        description="Accepted JOSE `typ` of JWT access tokens (comma-separated; compared "
        "case-insensitively, `application/` optional; a token without `typ` is refused). "
        "An ID-JAG (`oauth-id-jag+jwt`) is never accepted.")
    token_introspection_url: str | None = Field(
        default=None, description="RFC 7662 introspection endpoint of the TOKEN_ISSUERS: "
        "validates opaque tokens (every token when no JWKS is set).")
    token_introspection_client_id: str | None = Field(
        default=None, description="Client id this server authenticates to the "
        "introspection endpoint with.")
    token_introspection_client_secret: SecretStr | None = Field(
        default=None, description="Client secret for the introspection endpoint.")
    token_introspection_client_auth: Literal["client_secret_basic", "client_secret_post"] = (
        Field(default="client_secret_basic", description="How the client authenticates to "
              "the introspection endpoint: HTTP Basic or form parameters."))
    token_introspection_require_audience: bool = Field(
        default=True, description="Refuse an introspection answer without `aud` (false: "
        "accept it; an `aud` that is present must still name this server).")
    token_cache_seconds: float = Field(
        default=10.0, ge=0, le=3600, description="Seconds an accepted token is remembered "
        "(never past its exp): a token revoked at the authorization server is refused at "
        "most this long after. 0: validated on every request.")
    token_more_issuers: list[TokenIssuer] = Field(
        default_factory=list, description="More authorization servers, each with its own "
        "JWKS or introspection endpoint (JSON array of objects: issuer, jwks_url | jwks_file, "
        "introspection_url, introspection_client_id, introspection_client_secret, "
        "introspection_client_auth, introspection_require_audience).")

    # -- COAZ: mapping ---------------------------------------------------------------------
    coaz_identity_claim: str = Field(
        default="sub", min_length=1,
        description="Token claim naming the subject (an on-behalf-of claim instead of sub).")
    coaz_client_claims: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["client_id", "azp"], description="Token claims naming the "
        "OAuth client (comma-separated, first present wins): context.agent of the default "
        "mappings, and the subject of a client token.")
    coaz_sub_is_client: bool = Field(
        default=True, description="A token whose sub equals its client is a client "
        "(machine) token, as RFC 9068 has client-credentials tokens carry (one without sub "
        "always is).")
    coaz_client_subject_type: str = Field(
        default="client", min_length=1, description="subject.type of a client token.")
    coaz_methods: dict[str, Any] = Field(
        default_factory=dict, description="Method table on top of the default mappings "
        "(JSON object): method → \"allow\" (forward, no decision), \"deny\", or a mapping "
        "envelope {\"evaluation\": {...}} / {\"evaluations\": {...}} with CEL over params "
        "and token. Unknown methods stay denied.")
    coaz_deny_code_binding: int = Field(
        default=-32401, description="JSON-RPC code of a denial (binding dialect, default "
        "mappings, unknown methods). -32401 as the SEP dialect, not the binding draft's "
        "-32001, which the official MCP SDK uses for its own request timeout.")
    coaz_deny_code_sep: int = Field(
        default=-32401, description="JSON-RPC code of a denial (SEP dialect).")
    coaz_catalog_cache: int = Field(
        default=64, ge=1, description="Compiled tool catalogs kept by /coaz/v1/* (LRU).")

    # -- PEP authentication (/access/v1/*, /coaz/v1/*; see pdp.auth) ------------------------
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="PEP API keys, hashed: NAME=sha256:HEX entries "
        "(comma-separated; several at once for rotation). `pdp keys new` makes one.")
    api_keys_file: Path | None = Field(
        default=None, description="More PEP API-key entries, one per line (# comments); "
        "re-read when it changes (within POLL_INTERVAL), so keys rotate without a restart.")
    api_key_any_scheme: bool = Field(
        default=False, description="Also accept a PEP API key sent as `Authorization: <key>` "
        "or `Authorization: Basic <key>` (the AuthZEN interop runners' forms); off: only "
        "`Authorization: Bearer <key>` and `X-API-Key`.")
    tenants: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Tenant names (comma-separated) whose metadata is "
        "served at /.well-known/authzen-configuration/{tenant} (404 for any other).")
    pep_jwt_issuers: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Accepted `iss` of PEP bearer JWTs (comma-separated).")
    pep_jwt_audience: str | None = Field(
        default=None, description="`aud` PEP bearer JWTs must carry (PUBLIC_URL if unset).")
    pep_jwks_url: str | None = Field(
        default=None, description="JWKS URL of the PEPs' authorization server (enables JWTs).")
    pep_jwks_file: Path | None = Field(
        default=None, description="JWKS file instead of a URL (enables JWTs).")
    pep_jwt_scope: str = Field(
        default="authzen:evaluate", description="Scope PEP bearer JWTs must carry "
        "(`scope` or `scp`); '' requires none.")
    allow_unauthenticated: bool = Field(
        default=False, description="Serve without PEP credentials on a non-loopback address.")

    # -- MCP gateway (`pdp gateway`) -------------------------------------------------------
    gateway_upstream: str | None = Field(
        default=None, description="URL of the upstream MCP server's Streamable HTTP endpoint.")
    gateway_upstream_token: SecretStr | None = Field(
        default=None, description="Bearer token the gateway sends upstream (never the client's).")
    gateway_upstream_timeout: float = Field(
        default=30.0, gt=0, description="Seconds to connect to / send to the upstream.")
    gateway_host: str = Field(default="127.0.0.1", description="Bind address of the gateway.")
    gateway_port: int = Field(default=8090, ge=0, le=65535, description="Port of the gateway.")
    gateway_public_url: str | None = Field(
        default=None, description="Base URL clients reach the gateway at (http://HOST:PORT).")
    gateway_path: str = Field(default="/mcp", description="Path of the gateway's MCP endpoint.")
    gateway_pdp_url: str | None = Field(
        default=None, description="Remote AuthZEN PDP base URL (in-process engine if unset).")
    gateway_pdp_token: SecretStr | None = Field(
        default=None, description="Bearer token sent to the remote PDP (one of its API keys).")
    gateway_pdp_timeout: float = Field(
        default=2.0, gt=0, description="Seconds to wait for the remote PDP.")
    gateway_tools_file: Path | None = Field(
        default=None, description="tools/list result pinning the mappings (instead of "
        "learning them from the upstream's tools/list responses).")
    gateway_max_body_bytes: int = Field(
        default=4_194_304, ge=1, description="Largest MCP message body the gateway accepts.")
    gateway_max_batch: int = Field(
        default=100, ge=1, description="Most messages in one JSON-RPC batch (protocol versions "
        "that allow batches); a larger batch is refused whole with -32600.")
    gateway_allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins browsers may call the MCP endpoint from "
        "(comma-separated, e.g. https://app.example.com); a request with another Origin gets "
        "403. The gateway's own public origin if unset. Requests without Origin are not "
        "affected.")
    gateway_cors: bool = Field(
        default=False, description="Answer CORS preflights from the allowed origins and "
        "add CORS headers for them (browser-based MCP clients).")
    gateway_filter_tools: bool = Field(
        default=False, description="Filter tools/list answers for the caller: a tool whose "
        "request does not depend on its arguments is listed only if the caller may call it; "
        "one whose request does is listed marked _meta org.openid.authzen/authorization = "
        "per-call; a tool with a refused definition is never listed.")
    gateway_deny_as_tool_result: bool = Field(
        default=False, description="Answer a denied tools/call with a tool result "
        "(isError: true, the reason as its text) instead of a JSON-RPC error.")
    gateway_tools_ttl: float = Field(
        default=300.0, ge=0, description="Seconds the learned tool definitions are trusted: "
        "past that, the gateway lists the upstream's tools again before deciding a call "
        "(also at once after notifications/tools/list_changed on any session). 0: no expiry.")

    @field_validator("authorization_servers", "token_issuers", "token_algorithms", "api_keys",
                     "admin_api_keys", "pep_jwt_issuers", "token_types", "coaz_client_claims",
                     "gateway_allowed_origins", "scopes_supported", "trusted_properties",
                     "tenants", "trusted_proxies", "allowed_hosts",
                     mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("decision_log_hash_key")
    @classmethod
    def _hex_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None  # an empty variable is an unset one
        if value is not None:
            try:
                key = bytes.fromhex(value.get_secret_value().strip())
            except ValueError:
                raise ValueError("must be hex (e.g. the output of `openssl rand -hex 32`)",
                                 ) from None
            if len(key) < 16:
                raise ValueError("must be at least 16 bytes (32 hex digits)")
        return value

    @field_validator("type_names")
    @classmethod
    def _reversible_type_names(cls, value: dict[str, str]) -> dict[str, str]:
        from pdp.authzen.type_names import TypeNames

        TypeNames(value)  # ValueError: not a reversible table of Cedar names
        return value

    @field_validator("public_url", "gateway_public_url")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return check_public_url(value)

    @field_validator("decision_cache_size")
    @classmethod
    def _replaced_by_bytes(cls, value: int | None) -> int | None:
        if value is not None:
            raise ValueError("PDP_DECISION_CACHE_SIZE is replaced by PDP_DECISION_CACHE_BYTES, "
                             "the cache's memory budget in bytes (default 67108864); unset it")
        return value

    def policies_dir(self) -> Path:
        return self.policies if self.policies is not None else shipped_policies_dir() / "default"

    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        scheme = "https" if self.tls_certfile is not None else "http"
        return f"{scheme}://{host}:{self.port}"
