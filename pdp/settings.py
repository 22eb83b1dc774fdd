"""One typed settings object (environment variables with the ``PDP_`` prefix).

Built once at the edge (the CLI or a test) and passed in; nothing reads the environment at
import time. Command-line flags are applied on top with :meth:`Settings.model_copy`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

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

    # -- reload / admin -----------------------------------------------------------------
    watch: bool = Field(default=True, description="Reload the policy directory when it changes.")
    admin_token: SecretStr | None = None
    poll_interval: float = Field(
        default=1.0, gt=0, description="Seconds between polls of the shared version row.")

    # -- storage --------------------------------------------------------------------------
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the entity store (SQLite file if unset).")
    data_dir: Path = Path(".pdp")
    decision_log: Literal["on", "off"] = "on"
    decision_log_url: str | None = None
    decision_log_personal_data: Literal["full", "hashed", "omitted"] = "hashed"
    decision_log_queue: int = Field(default=100_000, ge=1)
    decision_log_retention_days: float = Field(default=30.0, gt=0)
    page_token_key: SecretStr | None = None

    def policies_dir(self) -> Path:
        return self.policies if self.policies is not None else shipped_policies_dir() / "default"

    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"
