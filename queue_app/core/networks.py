"""IP networks named in the configuration (`METRICS_ALLOW`, `WEBHOOK_ALLOWED_NETWORKS`), and
whether an address falls in one of them."""

from __future__ import annotations

import ipaddress

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value) -> list[Network]:
    """Addresses and networks, comma separated ("127.0.0.1,10.0.0.0/8") or a list: a wrong
    one raises ValueError (call it at start-up, so it fails there and not later)."""
    if isinstance(value, str):
        value = value.split(",")
    return [
        ipaddress.ip_network(item.strip(), strict=False) for item in value or () if item.strip()
    ]


def address_of(text: str | None) -> Address | None:
    """The address in `text` (an IPv6 zone dropped, an IPv4-mapped IPv6 address as IPv4), or
    None when it is not one."""
    try:
        address = ipaddress.ip_address((text or "").split("%")[0])
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def within(address: Address, networks) -> bool:
    return any(address in net for net in networks)
