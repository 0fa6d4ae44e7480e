"""Links printed on tickets and shown as QR codes."""

from flask import current_app


def ticket_tracking_url(token: str) -> str:
    """Where a customer follows a visit live on a phone: `PUBLIC_BASE_URL/t/<visit token>`.

    The one place that builds this URL: the kiosk's QR code, the printed ticket and (later)
    the mobile pages all use it, so they always agree.
    """
    base = (current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    return f"{base}/t/{token}"
