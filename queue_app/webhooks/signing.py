"""The signature of a webhook delivery.

`X-QueueApp-Signature: sha256=<hex>` where `<hex>` is HMAC-SHA256, keyed with the endpoint's
secret, of `"<X-QueueApp-Timestamp>.<raw body>"` (UTF-8). A receiver recomputes it over the
raw body it got, compares in constant time, and refuses timestamps too far from its clock
(replays of an old request).
"""

from __future__ import annotations

import hashlib
import hmac


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(signature(secret, timestamp, body), header or "")
