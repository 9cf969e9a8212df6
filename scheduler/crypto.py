"""Encryption at rest for credentials: Fernet with key rotation (MultiFernet).

The first key in `HERALD_ENCRYPTION_KEYS` encrypts; every key decrypts. To rotate, put a new key
first, keep the old ones, run `manage.py rotate_encryption_keys`, then drop the old keys.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        # Development only (settings refuse to start without keys when DEBUG is off).
        derived = base64.urlsafe_b64encode(hashlib.sha256(settings.SECRET_KEY.encode()).digest())
        return MultiFernet([Fernet(derived)])
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "HERALD_ENCRYPTION_KEYS must hold Fernet keys (32 url-safe base64 bytes each)."
        ) from exc


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.HERALD_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt with any configured key; raises ImproperlyConfigured if no key fits."""
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "Stored credentials cannot be decrypted with HERALD_ENCRYPTION_KEYS: "
            "was a key removed before `manage.py rotate_encryption_keys` ran?"
        ) from exc


def rotate(token: str) -> str:
    return fernet().rotate(token.encode()).decode()


class EncryptedJSONField(models.TextField):  # type: ignore[type-arg]
    """A JSON value stored as a Fernet token: a database dump holds no plaintext secret."""

    _pyi_private_set_type: Any
    _pyi_private_get_type: Any

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return {}
        return json.loads(decrypt(value))

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(decrypt(value)) if value else {}
        return value

    def get_prep_value(self, value: Any) -> str:
        return encrypt(json.dumps(value or {}))
