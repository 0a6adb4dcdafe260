"""Per-stack generated secrets, kept in the stack folder with owner-only permissions."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

_KEYS = (
    "jwt_secret",
    "api_secret_key",
    "fernet_key",
    "mssql_password",
    "snowflake_password",
    "admin_password",
    "operator_password",
    "viewer_password",
)


def load_or_create(state_dir: Path) -> dict[str, str]:
    path = state_dir / "secrets.json"
    existing: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    for key in _KEYS:
        if key not in existing:
            existing[key] = _generate(key)
            changed = True
    if changed:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(existing, handle, indent=2)
    return existing


def _generate(key: str) -> str:
    if key == "fernet_key":
        from cryptography.fernet import Fernet

        return Fernet.generate_key().decode()
    if key == "jwt_secret":
        return secrets.token_hex(48)  # 96 characters: Airflow wants at least 64 bytes
    if key == "mssql_password":
        return "Dt1!" + secrets.token_urlsafe(18)  # meets SQL Server's complexity rules
    return secrets.token_urlsafe(24)
