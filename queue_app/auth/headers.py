"""Security headers on every answer (flask-talisman), and HTTPS in production.

Every profile sends the same Content-Security-Policy, so the browser tests (which report
console errors, and a CSP violation is one) prove the pages satisfy it:

- scripts and stylesheets from this site's own files only (`'self'`): no inline `<script>`
  code, no `style="..."` attributes, no `on...=` handlers in the templates. Data a page's
  script needs travels as `<script type="application/json">` (never executed, so not a script
  for the CSP); bars whose size is data are drawn as SVG (`rect width=`), not inline styles.
- `img-src 'self' data:`: the favicon is an SVG data URI (templates/_favicon.html); QR codes
  and charts are inline SVG elements, which need nothing.
- `connect-src 'self'`: fetches and the Socket.IO connection (polling and the WebSocket, which
  CSP Level 3 counts as the same origin) go to this site; `CSP_CONNECT_SRC` adds origins
  (e.g. `wss://queue.bank.example` for browsers that predate that rule).
- `frame-ancestors 'none'` (and `X-Frame-Options: DENY`): no page may be framed (clickjacking
  of the counter and admin forms); `form-action 'self'`, `base-uri 'self'`,
  `object-src 'none'`.

Besides: `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin` (customer pages
carry their secret token in the path: it never leaves the site in a Referer; a view that
sets its own, e.g. the device-token redirect's `no-referrer`, keeps it), a
`Permissions-Policy` that turns off what no page uses (camera, microphone, geolocation,
payment, USB).

HTTPS: `FORCE_HTTPS` (production only) redirects plain-HTTP requests to HTTPS, except the
paths of `HTTPS_EXEMPT_PATHS` (an entry ending in `/` is a prefix): the probes `/healthz`,
`/readyz`, `/metrics` (load balancers and Prometheus ask over the private network) and the
API `/api/` (a redirect would not protect a bearer token already sent in clear, and turns a
POST into a GET in many clients: API callers are configured with the https URL, and the proxy
refuses plain HTTP); `HSTS_MAX_AGE_S` > 0 (production) sends
`Strict-Transport-Security` on HTTPS answers. Behind a proxy the scheme comes from
`X-Forwarded-Proto` through ProxyFix (`PROXY_COUNT`). The embedded `python run.py` on
http://127.0.0.1 and the tests get neither.
"""

from __future__ import annotations

from flask import Flask, request
from flask_talisman import Talisman

# features no page uses: a script injected anyway cannot reach them
PERMISSIONS_POLICY = {
    "camera": "()",
    "microphone": "()",
    "geolocation": "()",
    "payment": "()",
    "usb": "()",
}


def _words(value) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return [str(v) for v in value if str(v).strip()]


def content_security_policy(config) -> dict[str, str]:
    """The policy of every page, from the configuration (`CSP_CONNECT_SRC`)."""
    connect = ["'self'", *_words(config.get("CSP_CONNECT_SRC"))]
    return {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "font-src": "'self'",
        "connect-src": " ".join(connect),
        "media-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }


class _Talisman(Talisman):
    """Talisman with two local rules: the health probes are never redirected to HTTPS, and a
    view's own Referrer-Policy is kept (talisman would overwrite it)."""

    exempt_paths: frozenset[str] = frozenset()

    def _force_https(self):
        path = request.path
        if any(path == p or (p.endswith("/") and path.startswith(p)) for p in self.exempt_paths):
            return None
        return super()._force_https()

    def _set_referrer_policy_headers(self, headers):
        headers.setdefault("Referrer-Policy", self.referrer_policy)


def init_security_headers(app: Flask) -> None:
    """One talisman per application (its options live on the instance, and a test process
    builds apps of several profiles)."""
    config = app.config
    hsts_max_age = int(config.get("HSTS_MAX_AGE_S") or 0)
    talisman = _Talisman()
    talisman.exempt_paths = frozenset(_words(config.get("HTTPS_EXEMPT_PATHS")))
    talisman.init_app(
        app,
        force_https=bool(config.get("FORCE_HTTPS")),
        force_https_permanent=True,
        frame_options="DENY",
        strict_transport_security=hsts_max_age > 0,
        strict_transport_security_max_age=hsts_max_age,
        strict_transport_security_include_subdomains=bool(config.get("HSTS_INCLUDE_SUBDOMAINS")),
        content_security_policy=content_security_policy(config),
        content_security_policy_report_uri=config.get("CSP_REPORT_URI") or None,
        referrer_policy="same-origin",
        permissions_policy=PERMISSIONS_POLICY,
        # the cookie flags stay the configuration's (config.py): talisman would force
        # Secure on every profile, and the embedded server speaks plain HTTP
        session_cookie_secure=bool(config.get("SESSION_COOKIE_SECURE")),
        session_cookie_http_only=bool(config.get("SESSION_COOKIE_HTTPONLY", True)),
        session_cookie_samesite=config.get("SESSION_COOKIE_SAMESITE") or "Lax",
        x_content_type_options=True,
    )
    app.extensions["talisman"] = talisman
