"""Service configuration, read from the environment (``ROUTER_*``) by pydantic-settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["LOCAL_HOSTS", "ServiceSettings"]

#: Addresses that only this machine can reach: the service may listen there without a token.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class ServiceSettings(BaseSettings):
    """What ``router serve`` runs with. Every field reads ``ROUTER_<NAME>`` from the environment."""

    model_config = SettingsConfigDict(env_prefix="ROUTER_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///router-ledger.sqlite",
        description="the ledger (decisions, stock, events): sqlite:///FILE for one worker, "
        "postgresql+psycopg://... for several",
    )
    scenario: str = Field(default="scenarios/national.yaml", description="the scenario file: network, stock, tiers")
    model: str = Field(default="champion", description="delay-risk model: champion, none (analytic), or a directory")
    stock_pool: str | None = Field(default=None, description="the ledger's stock pool (default: the scenario's name)")
    workers: int = Field(default=1, ge=1, le=64, description="worker processes")
    host: str = Field(default="127.0.0.1", description="address to listen on")
    port: int = Field(default=8000, ge=1, le=65535)
    token: SecretStr | None = Field(default=None, description="bearer token required by every write endpoint")
    log_format: Literal["json", "console"] = "json"
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="largest request body accepted")
    max_batch: int = Field(default=500, ge=1, le=10_000, description="most orders or events in one request")
    pii_policy: Literal["mask", "drop"] = Field(
        default="mask",
        description="personal fields of an order's contact (name, street, phone, email) in stored records: "
        "mask keeps a masked form, drop keeps nothing; the record lists the fields either way",
    )

    def problems(self) -> list[str]:
        """Why this configuration must not start (empty when it may)."""
        out = []
        if self.workers > 1 and self.database_url.startswith("sqlite"):
            out.append(
                f"ROUTER_WORKERS={self.workers} with a SQLite ledger: SQLite is for one worker (one writer at a "
                "time); use PostgreSQL (ROUTER_DATABASE_URL=postgresql+psycopg://...) for several"
            )
        if self.host not in LOCAL_HOSTS and self.token is None:
            out.append(
                f"ROUTER_HOST={self.host} listens beyond this machine without a token: set ROUTER_TOKEN "
                "(write endpoints then require 'Authorization: Bearer <token>')"
            )
        return out
