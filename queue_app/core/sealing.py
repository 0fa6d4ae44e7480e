"""Values the server must read back but a copy of the database must not reveal: the webhook
signing secrets (whoever holds one can sign a webhook the bank's systems will trust).

Sealed with Fernet (`cryptography`: AES-128-CBC and HMAC-SHA256, with a timestamp) under a key
derived from `SECRET_KEY` by HKDF-SHA256 with a label per purpose, so there is no second key
to keep. Stored as `fernet:<token>`. A value sealed under an earlier key still opens while
that key is listed in `SECRET_KEY_FALLBACKS` (Flask's setting for rotating `SECRET_KEY`); a
new seal always uses the current key. Without the key the value is lost: `Unreadable`.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

PREFIX = "fernet:"


class Unreadable(Exception):
    """The value was sealed under a key this server no longer has (or is not sealed)."""


def derive_key(secret_key: str | bytes, purpose: str) -> bytes:
    """The Fernet key of `purpose` under `secret_key`."""
    raw = secret_key.encode() if isinstance(secret_key, str) else secret_key
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"queue_app:{purpose}".encode()
    ).derive(raw)
    return base64.urlsafe_b64encode(derived)


def _box(purpose: str) -> MultiFernet:
    config = current_app.config
    keys = [config["SECRET_KEY"], *(config.get("SECRET_KEY_FALLBACKS") or ())]
    return MultiFernet([Fernet(derive_key(key, purpose)) for key in keys if key])


def seal(value: str, purpose: str) -> str:
    return PREFIX + _box(purpose).encrypt(value.encode()).decode()


def unseal(stored: str, purpose: str) -> str:
    if not stored.startswith(PREFIX):
        raise Unreadable("the value is not sealed")
    try:
        return _box(purpose).decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise Unreadable(
            "sealed under another SECRET_KEY: list the earlier key in SECRET_KEY_FALLBACKS"
        ) from None
