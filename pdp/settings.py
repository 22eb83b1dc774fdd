"""One typed settings object (environment variables with the ``PDP_`` prefix).

Built once at the edge (the CLI or a test) and passed in; nothing reads the environment at
import time. Command-line flags are applied on top with :meth:`Settings.model_copy`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings", "shipped_policies_dir"]


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
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = Field(
        default=None, description="Base URL advertised in metadata (http://HOST:PORT if unset).")
    workers: int = Field(default=1, ge=1, description="uvicorn worker processes.")
    log_level: str = "info"

    # -- translation --------------------------------------------------------------------
    namespace: str = Field(
        default="", description="Cedar namespace prefixed to types and actions ('' = none).")
    action_properties_key: str = Field(
        default="action_properties", description="Context key that carries action.properties.")

    # -- request limits -----------------------------------------------------------------
    max_body_bytes: int = Field(default=1_048_576, ge=1)
    max_depth: int = Field(default=32, ge=2)
    max_batch: int = Field(default=1000, ge=1)

    # -- decisions ----------------------------------------------------------------------
    explain: bool = Field(default=False, description="Always put reasons in decision context.")
    decision_cache: Literal["on", "off"] = "on"
    decision_cache_size: int = Field(default=65_536, ge=0)
    entity_depth: int = Field(
        default=3, ge=0, description="Attribute-reference depth of the per-request entity slice.")
    bench_noop: Literal["on", "off"] = Field(
        default="off", description="Serve POST /bench/noop (reads the body, answers a fixed "
        "decision): the baseline the HTTP benchmark compares the AuthZEN endpoints with.")

    # -- reload / admin -----------------------------------------------------------------
    watch: bool = Field(default=True, description="Reload the policy directory when it changes.")
    admin_token: SecretStr | None = None
    poll_interval: float = Field(
        default=1.0, gt=0, description="Seconds between polls of the shared version row and "
        "of the policy generation file (a reload asked of one worker reaches the others).")

    # -- storage --------------------------------------------------------------------------
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the entity store (SQLite file if unset).")
    data_dir: Path = Path(".pdp")
    entity_store: Literal["sql", "memory"] = Field(
        default="sql", description="'sql': the database (default); 'memory': entities.json only, "
        "no database, no entity admin API.")
    entity_max_staleness: float = Field(
        default=10.0, gt=0, description="Seconds a replica may decide on its entity mirror "
        "without a successful poll of the database; past that, decisions fail with 503.")
    decision_log: Literal["on", "off"] = "on"
    decision_log_url: str | None = None
    decision_log_personal_data: Literal["full", "hashed", "omitted"] = "hashed"
    decision_log_queue: int = Field(default=100_000, ge=1)
    decision_log_retention_days: float = Field(default=30.0, gt=0)
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

    # -- COAZ: mapping ---------------------------------------------------------------------
    coaz_identity_claim: str = Field(
        default="sub", min_length=1,
        description="Token claim naming the subject (an on-behalf-of claim instead of sub).")
    coaz_deny_code_binding: int = Field(
        default=-32001, description="JSON-RPC code of a denial (binding dialect, defaults).")
    coaz_deny_code_sep: int = Field(
        default=-32401, description="JSON-RPC code of a denial (SEP dialect).")
    coaz_catalog_cache: int = Field(
        default=64, ge=1, description="Compiled tool catalogs kept by /coaz/v1/* (LRU).")
    pep_token: SecretStr | None = Field(
        default=None, description="Bearer token PEPs must send to /coaz/v1/*; enables `claims`.")
    pep_auth: Literal["on", "off"] = Field(
        default="on", description="'off' accepts `claims` without PEP_TOKEN (development only).")

    # -- MCP gateway (`pdp gateway`) -------------------------------------------------------
    gateway_upstream: str | None = Field(
        default=None, description="URL of the upstream MCP server's Streamable HTTP endpoint.")
    gateway_upstream_token: SecretStr | None = Field(
        default=None, description="Bearer token the gateway sends upstream (never the client's).")
    gateway_upstream_timeout: float = Field(
        default=30.0, gt=0, description="Seconds to connect to / send to the upstream.")
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(default=8090, ge=0, le=65535)
    gateway_public_url: str | None = Field(
        default=None, description="Base URL clients reach the gateway at (http://HOST:PORT).")
    gateway_path: str = Field(default="/mcp", description="Path of the gateway's MCP endpoint.")
    gateway_pdp_url: str | None = Field(
        default=None, description="Remote AuthZEN PDP base URL (in-process engine if unset).")
    gateway_pdp_token: SecretStr | None = Field(
        default=None, description="Bearer token sent to the remote PDP (its PDP_PEP_TOKEN).")
    gateway_pdp_timeout: float = Field(
        default=2.0, gt=0, description="Seconds to wait for the remote PDP.")
    gateway_tools_file: Path | None = Field(
        default=None, description="tools/list result pinning the mappings (instead of "
        "learning them from the upstream's tools/list responses).")
    gateway_max_body_bytes: int = Field(default=4_194_304, ge=1)

    @field_validator("authorization_servers", "token_issuers", "token_algorithms", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    def policies_dir(self) -> Path:
        return self.policies if self.policies is not None else shipped_policies_dir() / "default"

    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"
