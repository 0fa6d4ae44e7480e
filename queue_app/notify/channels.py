"""How a message leaves: one `send(message)` per channel, raising `ChannelError` on failure.

- `email`: SMTP with `smtplib` (MAIL_SERVER, MAIL_PORT, MAIL_USE_TLS for STARTTLS or MAIL_USE_SSL
  for SMTPS, MAIL_USERNAME/MAIL_PASSWORD, MAIL_DEFAULT_SENDER, MAIL_TIMEOUT_S). A multipart
  message: the text, the HTML alternative with its inline images (attachments that carry a
  `content_id`) and the other attachments.
- `sms`, `whatsapp`: an HTTP gateway (SMS_GATEWAY_URL, WHATSAPP_GATEWAY_URL, GATEWAY_TOKEN,
  GATEWAY_TIMEOUT_S): `POST {"to", "text", "channel"}` as JSON; any answer but 2xx is a failure.
  An unset URL means the channel is not configured: a permanent failure, so the outbox moves on
  to the message's next channel at once.

`message` is anything with the attributes of an `OutboxMessage` (`id`, `channel`, `recipient`,
`subject`, `body`, `html`, `attachments`, `locale`): the outbox hands over a detached snapshot.
Each message carries a stable id (`Message-ID` for e-mail, `Idempotency-Key` for gateways)
derived from its outbox row, so a copy sent again after a crash can be recognised downstream.
"""

from __future__ import annotations

import base64
import json
import smtplib
import ssl
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from flask import current_app

from .models import Channel


class ChannelError(Exception):
    """Sending failed. `permanent`: trying this channel again will not help."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class ChannelNotConfigured(ChannelError):
    def __init__(self, channel: str):
        super().__init__(f"{channel} is not configured", permanent=True)


def send(message) -> None:
    """Send `message` through its channel; raise `ChannelError` when it did not go out."""
    channel = Channel(message.channel)
    sender = _SENDERS[channel]
    sender(message, current_app.config)


# --- e-mail ----------------------------------------------------------------------------------


def message_id(message) -> str:
    return f"<outbox-{message.id}@{_domain(current_app.config)}>"


def _domain(config) -> str:
    sender = str(config.get("MAIL_DEFAULT_SENDER") or "")
    address = sender.rsplit("<", 1)[-1].rstrip(">")
    return address.rsplit("@", 1)[-1] if "@" in address else "queue-app.invalid"


def build_email(message, config) -> EmailMessage:
    email = EmailMessage()
    email["From"] = config["MAIL_DEFAULT_SENDER"]
    email["To"] = message.recipient
    email["Subject"] = message.subject or ""
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = message_id(message) if message.id else make_msgid()
    email.set_content(message.body)
    attachments = list(message.attachments or ())
    inline = [a for a in attachments if a.get("content_id")]
    if message.html:
        email.add_alternative(message.html, subtype="html")
        html_part = email.get_payload()[-1]
        for item in inline:
            maintype, subtype = item["content_type"].split("/", 1)
            html_part.add_related(
                base64.b64decode(item["data_b64"]),
                maintype=maintype,
                subtype=subtype,
                cid=f"<{item['content_id']}>",
                filename=item["filename"],
                disposition="inline",
            )
    for item in attachments:
        if item.get("content_id") and message.html:
            continue
        maintype, subtype = item["content_type"].split("/", 1)
        params = {"method": "PUBLISH"} if item["content_type"] == "text/calendar" else {}
        email.add_attachment(
            base64.b64decode(item["data_b64"]),
            maintype=maintype,
            subtype=subtype,
            filename=item["filename"],
            params=params,
        )
    if message.locale:  # last: set_content and the multipart steps move "Content-*" headers
        email["Content-Language"] = message.locale
    return email


def _send_email(message, config) -> None:
    if not config.get("MAIL_SERVER"):
        raise ChannelNotConfigured("email")
    email = build_email(message, config)
    host, port = config["MAIL_SERVER"], int(config["MAIL_PORT"])
    timeout = float(config.get("MAIL_TIMEOUT_S", 10))
    try:
        if config.get("MAIL_USE_SSL"):
            smtp = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            if config.get("MAIL_USE_TLS") and not config.get("MAIL_USE_SSL"):
                smtp.starttls(context=ssl.create_default_context())
            if config.get("MAIL_USERNAME"):
                smtp.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD") or "")
            smtp.send_message(email)
    except smtplib.SMTPRecipientsRefused as exc:
        raise ChannelError(f"recipient refused: {exc.recipients}", permanent=True) from exc
    except (smtplib.SMTPException, OSError) as exc:  # OSError: refused, unreachable, timeout
        raise ChannelError(f"smtp {host}:{port}: {exc!r}") from exc


# --- SMS and WhatsApp through an HTTP gateway ------------------------------------------------


def _gateway(url_key: str, channel: Channel):
    def send_through_gateway(message, config) -> None:
        url = config.get(url_key)
        if not url:
            raise ChannelNotConfigured(channel.value)
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            # urllib would also open file: and ftp: URLs; a gateway is reached over HTTP only
            raise ChannelError(f"{channel.value} gateway URL is not http(s)", permanent=True)
        payload = {"to": message.recipient, "text": message.body, "channel": channel.value}
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Idempotency-Key": f"outbox-{message.id}-{channel.value}",
        }
        if config.get("GATEWAY_TOKEN"):
            headers["Authorization"] = f"Bearer {config['GATEWAY_TOKEN']}"
        request = urllib.request.Request(
            url, data=json.dumps(payload).encode(), headers=headers, method="POST"
        )
        timeout = float(config.get("GATEWAY_TIMEOUT_S", 10))
        try:
            # bandit B310 (file: and custom schemes): the scheme is checked above
            with urllib.request.urlopen(request, timeout=timeout) as response:  # nosec B310
                status = response.status
        except urllib.error.HTTPError as exc:  # a non-2xx answer
            raise ChannelError(f"{channel.value} gateway answered {exc.code}") from exc
        except (TimeoutError, urllib.error.URLError, OSError) as exc:
            raise ChannelError(f"{channel.value} gateway: {exc!r}") from exc
        if not 200 <= status < 300:
            raise ChannelError(f"{channel.value} gateway answered {status}")

    return send_through_gateway


_SENDERS = {
    Channel.EMAIL: _send_email,
    Channel.SMS: _gateway("SMS_GATEWAY_URL", Channel.SMS),
    Channel.WHATSAPP: _gateway("WHATSAPP_GATEWAY_URL", Channel.WHATSAPP),
}


def configured(channel: Channel | str) -> bool:
    """Whether `channel` has what it needs to send (a server or a gateway URL)."""
    key = {
        Channel.EMAIL: "MAIL_SERVER",
        Channel.SMS: "SMS_GATEWAY_URL",
        Channel.WHATSAPP: "WHATSAPP_GATEWAY_URL",
    }[Channel(channel)]
    return bool(current_app.config.get(key))
