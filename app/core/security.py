"""Password hashing, JWT access tokens and opaque tokens. No FastAPI in here."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jose import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.core.config import Settings, get_settings

ALGORITHMS = ["HS256"]
ACCESS_TOKEN_TYPE = "access"
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "sub", "jti")


class InvalidToken(Exception):
    """Any reason a bearer token is not acceptable."""


@lru_cache
def password_hasher() -> PasswordHash:
    s = get_settings()
    return PasswordHash(
        (
            Argon2Hasher(
                time_cost=s.argon2_time_cost,
                memory_cost=s.argon2_memory_cost,
                parallelism=s.argon2_parallelism,
            ),
        )
    )


@lru_cache
def dummy_password_hash() -> str:
    """Verified against when the e-mail is unknown, so both paths cost the same."""
    return password_hasher().hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return password_hasher().hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    hasher = password_hasher()
    if password_hash is None:
        hasher.verify(password, dummy_password_hash())
        return False
    try:
        return hasher.verify(password, password_hash)
    except Exception:  # a malformed stored hash is a failed login, not a crash
        return False


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    role: str
    scopes: frozenset[str]
    session_id: uuid.UUID | None
    jti: str


def create_access_token(
    *,
    user_id: uuid.UUID,
    role: str,
    scopes: list[str],
    session_id: uuid.UUID | None,
    settings: Settings | None = None,
    now: dt.datetime | None = None,
) -> tuple[str, int]:
    settings = settings or get_settings()
    now = now or dt.datetime.now(dt.UTC)
    lifetime = settings.access_token_minutes * 60
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": str(user_id),
        "role": role,
        "scope": " ".join(scopes),
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + lifetime,
        "jti": secrets.token_urlsafe(16),
        "typ": ACCESS_TOKEN_TYPE,
    }
    if session_id is not None:
        claims["sid"] = str(session_id)
    return jwt.encode(claims, _key(settings), algorithm=ALGORITHMS[0]), lifetime


def decode_access_token(token: str, settings: Settings | None = None) -> AccessClaims:
    settings = settings or get_settings()
    try:
        claims = jwt.decode(
            token,
            _key(settings),
            algorithms=ALGORITHMS,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={f"require_{claim}": True for claim in REQUIRED_CLAIMS},
        )
        if claims.get("typ") != ACCESS_TOKEN_TYPE:
            raise InvalidToken("not an access token")
        role = claims["role"]
        scope = claims["scope"]
        if not isinstance(role, str) or not isinstance(scope, str):
            raise InvalidToken("malformed claims")
        sid = claims.get("sid")
        return AccessClaims(
            user_id=uuid.UUID(str(claims["sub"])),
            role=role,
            scopes=frozenset(scope.split()),
            session_id=uuid.UUID(str(sid)) if sid else None,
            jti=str(claims["jti"]),
        )
    except InvalidToken:
        raise
    except Exception as exc:  # every decode failure, whatever library raised it, is a 401
        raise InvalidToken(type(exc).__name__) from None


def _key(settings: Settings) -> str:
    key = settings.signing_key
    if not key:
        raise InvalidToken("no signing key")
    return key


def new_opaque_token(prefix: str) -> str:
    return f"{prefix}{secrets.token_urlsafe(32)}"


def hash_opaque_token(token: str) -> str:
    """Opaque tokens carry 256 random bits, so a plain SHA-256 is a safe lookup hash."""
    return hashlib.sha256(token.encode()).hexdigest()
