"""Typed settings, read from FLOORGATE_* environment variables (and a .env file)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["debug", "info", "warning", "error"]


# Below these an overload threshold is its clock's own grain.
CLOCK_GRAIN = {
    # uvloop's clock ticks in milliseconds: an idle loop already reads 1 ms late.
    "overload_lag_s": (0.005, "the timer's own grain: every wake-up would count as behind"),
    # The kernel counts a connection's wait in its ticks (4 to 10 ms).
    "overload_queue_wait_s": (0.02, "the kernel clock's own grain"),
}


class Settings(BaseSettings):
    """Everything the gateway reads from its environment, in one place."""

    model_config = SettingsConfigDict(env_prefix="FLOORGATE_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=4000, ge=0, le=65535)
    policies: Path = Path("policies")
    # Seconds between checks of the policy files for a change; 0 turns the watcher off.
    policy_poll_s: float = Field(default=1.0, ge=0)
    log_level: LogLevel = "info"
    keys_file: Path | None = None
    # Inline keys, `key=workflow[|workflow...]` separated by commas; hashed as soon as read.
    api_keys: SecretStr | None = None
    admin_key: SecretStr | None = None
    redis_url: SecretStr | None = None
    max_body_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    # A client slower than this to send its request body gets a 408 and is let go.
    client_body_timeout_s: float = Field(default=30.0, gt=0)
    # A request's head (request line and headers): at most this large (431), and in this long
    # from its first byte (408).
    max_header_bytes: int = Field(default=64 * 1024, gt=0)
    client_header_timeout_s: float = Field(default=10.0, gt=0)
    # An upstream response past these is refused instead of held in memory: its status line
    # and headers, and a body read whole (a streamed body is relayed, never held).
    upstream_max_header_bytes: int = Field(default=64 * 1024, gt=0)
    upstream_max_body_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    # Shared state (gateway/state/): every Redis key starts with this; a second segment
    # (`floorgate:staging:`) lets several gateways share one Redis.
    redis_key_prefix: str = Field(default="floorgate:", pattern=r"^floorgate:([A-Za-z0-9_.-]+:)?$")
    redis_timeout_s: float = Field(default=0.5, gt=0)  # connect, read and pool-wait timeouts
    redis_max_connections: int = Field(default=16, ge=1)
    # FLOORGATE_REDIS_URL names one node of a Redis Cluster (the client finds the others).
    redis_cluster: bool = False
    # How long feedback can still be attributed to a response.
    ledger_retention_s: float = Field(default=14 * 86400, gt=0)
    # Records waiting for the store (Redis down); past this, new ones are counted as dropped.
    ledger_buffer_max: int = Field(default=100_000, ge=1)
    ledger_flush_s: float = Field(default=0.05, gt=0)
    # Bytes the in-memory ledger's records may hold (~120 a record): 32 MiB keeps ~270,000.
    ledger_memory_max: int = Field(default=32 * 2**20, ge=2**16)
    gate_refresh_s: float = Field(default=1.0, gt=0)  # how often live gates re-read the stats
    # Limits (gateway/limits.py): the longest a request waits on the store to check them, and
    # how long a request in flight holds a concurrency slot if its replica dies.
    limits_timeout_s: float = Field(default=0.25, gt=0)
    limits_lease_s: float = Field(default=660.0, gt=0)
    # Overload (gateway/overload.py): new model requests get a 503 `overloaded` while the
    # event loop has been at least overload_lag_s behind at every wake-up for overload_for_s,
    # or while every new connection that arrived over overload_for_s waited at least
    # overload_queue_wait_s in the kernel's accept queue (0 turns either rule off), and beyond
    # max_in_flight model requests at once (0: no cap).
    overload_lag_s: float = Field(default=0.05, ge=0)
    overload_queue_wait_s: float = Field(default=0.25, ge=0)
    overload_for_s: float = Field(default=1.0, ge=0.5, le=60)
    max_in_flight: int = Field(default=0, ge=0)

    @field_validator("api_keys", "admin_key")
    @classmethod
    def _no_empty_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # An empty key would be the empty token's: `Authorization: Bearer ` would pass.
        if value is not None and not value.get_secret_value().strip():
            name = f"FLOORGATE_{(info.field_name or '').upper()}"
            raise ValueError(f"{name} is set but empty: unset it, or set it to a real key")
        return value

    @field_validator("overload_lag_s", "overload_queue_wait_s")
    @classmethod
    def _above_clock_grain(cls, value: float, info: ValidationInfo) -> float:
        least_s, why = CLOCK_GRAIN[info.field_name or ""]
        if 0 < value < least_s:
            name = f"FLOORGATE_{(info.field_name or '').upper()}"
            raise ValueError(
                f"{name} under {least_s * 1000:g} ms is {why}; set {least_s:g} or more, or 0"
            )
        return value

    @property
    def body_limits(self) -> tuple[int, float]:
        """What read_body takes: the largest body, and how long it may take to arrive."""
        return self.max_body_bytes, self.client_body_timeout_s

    @property
    def binds_loopback_only(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False
