"""Where a webhook may be sent: public addresses, and the networks the operator names.

An endpoint's URL is typed by an admin, and the server then POSTs to it from inside the bank's
network. Without a rule, a URL could make the server call what only it can reach: the
database, Redis, the metrics page, a cloud's metadata service (169.254.169.254), any internal
system (server-side request forgery). So a delivery goes only to an address that is public
(routable on the internet: not loopback, private, link-local, shared, multicast, reserved or
unspecified; an IPv6 address that carries an IPv4 one, mapped, 6to4 or Teredo, by that one
too), or that lies in `WEBHOOK_ALLOWED_NETWORKS` (comma separated, e.g. the bank's
warehouse at "10.20.0.0/16"; the testing profile names loopback, where the tests' receivers
listen).

Checked twice:
- when an endpoint is saved, if its host is an address, or a name that is always local
  ("localhost", "*.localhost"): the admin reads the refusal at once. A host name is not looked
  up then (a lookup from a request handler could hang on DNS); the delivery checks it.
- at each delivery (`connect_to`): the host is looked up, every address it resolves to must
  pass (a name answering one public and one private address is refused), and the connection
  goes to the address checked, not to a second lookup, so a name that changes its answer
  between the check and the connection (DNS rebinding) reaches nothing unchecked. The request
  still names the host (the Host header, and TLS checks the certificate against the name).
  A refused delivery is a failed attempt whose error says why; it is retried as any other.
"""

from __future__ import annotations

import socket

from flask import current_app

from ..core.networks import Address, address_of, parse_networks, within


class Refused(Exception):
    """The destination is not allowed (the message says which address and why)."""


def allowed_networks() -> list:
    return parse_networks(current_app.config.get("WEBHOOK_ALLOWED_NETWORKS", ""))


def is_public(address: Address) -> bool:
    if address.version == 6:  # 6to4 and Teredo carry an IPv4 address: it must be public too
        embedded = [address.sixtofour, *(address.teredo or ())]
        if any(inner is not None and not is_public(inner) for inner in embedded):
            return False
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_unspecified
    )


def check_address(address: Address, networks, host: str) -> None:
    if is_public(address) or within(address, networks):
        return
    raise Refused(
        f"{host} is {address}, not a public address: webhooks go to public addresses and to "
        "the networks named in WEBHOOK_ALLOWED_NETWORKS"
    )


def always_local(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host == "localhost" or host.endswith(".localhost")


def check_when_saved(host: str) -> None:
    """Refuse a host that is an address outside the rule, or a name that is always local."""
    networks = allowed_networks()
    address = address_of(host)
    if address is not None:
        check_address(address, networks, host)
    elif always_local(host):
        check_address(address_of("127.0.0.1"), networks, host)


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the resolver's order, once each."""
    found = []
    for *_rest, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        if sockaddr[0] not in found:
            found.append(sockaddr[0])
    return found


def connect_to(host: str, port: int) -> str:
    """The address a delivery to `host` connects to: the first it resolves to, once every one
    of them passed the rule. `Refused` otherwise (`OSError` when it does not resolve)."""
    networks = allowed_networks()
    addresses = resolve(host, port)
    for text in addresses:
        address = address_of(text)
        if address is None:
            raise Refused(f"{host} resolved to {text!r}, which is not an address")
        check_address(address, networks, host)
    if not addresses:
        raise OSError(f"{host} does not resolve")
    return addresses[0]
