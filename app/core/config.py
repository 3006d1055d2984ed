"""Settings, read once from the environment (prefix ``WAYPOINT_``)."""

import os
import secrets
import sys
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_PRODUCTION_SECRET_BYTES = 32


class Settings(BaseSettings):
    # Errors never repeat the values they refuse: one of them may be a secret.
    model_config = SettingsConfigDict(
        env_prefix="WAYPOINT_", extra="ignore", hide_input_in_errors=True
    )

    env: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///var/waypoint.db"
    secret_key: SecretStr | None = None
    var_dir: Path = Path("var")

    access_token_minutes: int = Field(default=15, ge=1)
    refresh_token_days: int = Field(default=30, ge=1)
    jwt_issuer: str = "waypoint"
    jwt_audience: str = "waypoint-api"

    cors_origins: list[str] = []

    login_failures_per_account: int = Field(default=10, ge=1)
    login_failures_per_address: int = Field(default=100, ge=1)
    login_window_seconds: int = Field(default=900, ge=1)

    # Argon2id cost; production keeps pwdlib's defaults, tests lower them.
    argon2_time_cost: int = 3
    argon2_memory_cost: int = 65536
    argon2_parallelism: int = 4

    max_body_bytes: int = 1024 * 1024
    idempotency_ttl_hours: int = Field(default=24, ge=1)
    # Per worker process and pool (PostgreSQL: one pool for reads, one for writes); keep
    # workers x 2 x (pool + overflow) under PostgreSQL's max_connections.
    db_pool_size: int = Field(default=15, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    # Requests a worker serves at once; the rest wait in arrival order (app/core/admission.py).
    max_concurrent_requests: int = Field(default=10, ge=1)
    # Load shedding: a request that would wait longer than this for a turn is refused at once
    # with 503 + Retry-After (app/core/admission.py).
    max_queue_wait_ms: int = Field(default=250, ge=1)

    # Database faults answer 503 + Retry-After instead of hanging (app/core/deadlines.py).
    # PostgreSQL: time to open a connection, and the server-side statement_timeout. A request
    # whose database work has not finished after both together is cut and answered 503.
    db_connect_timeout_seconds: int = Field(default=3, ge=2)  # libpq's minimum is 2
    db_statement_timeout_ms: int = Field(default=5000, ge=1)
    # Waiting for a pooled connection when all are in use.
    db_pool_timeout_seconds: float = Field(default=5, gt=0)
    # SQLite: how long a write waits for a lock held by another process (a backup, a shell).
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=1)
    # /readyz: how long the database may take to answer SELECT 1.
    ready_timeout_seconds: float = Field(default=1, gt=0)
    # SIGTERM: seconds in-flight requests get to finish before the server closes them.
    shutdown_timeout_seconds: int = Field(default=20, ge=1)
    # Networks (besides loopback) allowed to read GET /metrics, e.g. ["10.0.0.0/8"].
    metrics_allow: list[str] = []

    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed: comma-separated
    # addresses or networks ("10.0.0.5,10.1.0.0/16"), "*" for any. None by default.
    trusted_proxies: str = ""

    webhooks_allow_private: bool = False
    # The first retry of a failed delivery after this many seconds, then doubling (jittered).
    webhook_retry_seconds: float = Field(default=30, gt=0)
    # How often an idle delivery worker looks for due deliveries (it is also woken by a commit
    # of this process that wrote some); false: this process runs no delivery worker.
    webhook_poll_seconds: float = Field(default=0.5, gt=0)
    webhook_worker: bool = True
    # Outbound e-mail (app/mail/, docs/email.md). Without an SMTP URL messages are written to
    # a Maildir under ``var_dir`` / "mail", so a development server needs no mail server.
    smtp_url: SecretStr | None = None  # smtp://[user:password@]host[:port] or smtps://...
    mail_from: str = "Waypoint <no-reply@localhost>"
    # The frontend that completes the account flows (its pages receive the links' tokens).
    app_url: str = "http://127.0.0.1:8000"
    # Where the API itself is reached from outside, for links the API answers; unset: the
    # address ``waypoint serve`` listens on.
    public_url: str | None = None
    require_verified_therapists: bool = False
    # The first retry of a message the SMTP server did not take after this many seconds, then
    # doubling (jittered) up to an hour; a message is retried for MAIL_RETRY_HOURS.
    mail_retry_seconds: float = Field(default=30, gt=0)
    mail_retry_hours: float = Field(default=48, ge=24)
    # How often an idle mail worker looks for due messages (a commit of this process that
    # queued one wakes it at once); false: this process runs no mail worker.
    mail_poll_seconds: float = Field(default=1.0, gt=0)
    mail_worker: bool = True

    # Retention (app/retention, docs/retention.md): how long rows that only grow are kept.
    # Delivered or failed webhook deliveries, after their last attempt.
    webhook_retention_days: int = Field(default=30, ge=1)
    # Sent or given-up mail messages, after their last attempt.
    mail_retention_days: int = Field(default=30, ge=1)
    # In-app notifications (reminders, lagging alerts) are kept this long, read or not.
    notification_retention_days: int = Field(default=180, ge=1)
    # Refresh tokens, logins, care invites and personal tokens past their expiry or revocation.
    auth_retention_days: int = Field(default=30, ge=1)
    # The sync feed's change rows; a follower whose cursor is older starts over (410). Below a
    # month, a follower used once a month would start over every time.
    sync_retention_days: int = Field(default=90, ge=30)
    # Seconds between two sweeps of a worker; rows deleted per transaction.
    retention_sweep_seconds: float = Field(default=600, gt=0)
    retention_batch_size: int = Field(default=500, ge=1, le=5000)
    # false: this process runs no retention sweep (another process does).
    retention_worker: bool = True
    log_level: str = "INFO"
    log_json: bool = True

    @model_validator(mode="after")
    def _production_needs_a_real_secret(self) -> "Settings":
        if self.env == "production":
            raw = self.secret_key.get_secret_value().encode() if self.secret_key else b""
            if len(raw) < MIN_PRODUCTION_SECRET_BYTES:
                raise ValueError(
                    "WAYPOINT_SECRET_KEY must be set to at least "
                    f"{MIN_PRODUCTION_SECRET_BYTES} bytes when WAYPOINT_ENV=production"
                )
        return self

    @cached_property
    def signing_key(self) -> str:
        """The JWT key: configured, or in development one generated once and kept in var/."""
        if self.secret_key is not None and self.secret_key.get_secret_value():
            return self.secret_key.get_secret_value()
        return _development_secret(self.var_dir)

    @property
    def mail_links_base(self) -> str:
        """The frontend's address, without a trailing slash, for the links in messages."""
        return self.app_url.rstrip("/")

    @property
    def api_links_base(self) -> str:
        """The API's public address, without a trailing slash (links the API answers)."""
        return (self.public_url or "http://127.0.0.1:8000").rstrip("/")


def _development_secret(var_dir: Path) -> str:
    path = var_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker wrote it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return secret


@lru_cache
def get_settings() -> Settings:
    return Settings()


def settings_or_exit() -> Settings:
    """The settings, or one line on stderr naming what is wrong, and exit status 1: what an
    operator starting the service should read instead of a traceback."""
    try:
        return get_settings()
    except ValidationError as exc:
        print(f"waypoint: cannot start: {describe_settings_error(exc)}", file=sys.stderr)
        raise SystemExit(1) from None


def describe_settings_error(exc: ValidationError) -> str:
    """Each problem as ``WAYPOINT_NAME: message``, on one line, never with the value given."""
    problems = []
    for error in exc.errors(include_input=False, include_context=False, include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["loc"]:
            name = "WAYPOINT_" + str(error["loc"][0]).upper()
            problems.append(f"{name}: {message}")
        else:
            problems.append(message)
    return "; ".join(problems).replace("\n", " ")
