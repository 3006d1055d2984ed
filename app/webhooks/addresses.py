"""Which addresses a webhook may reach: the server-side request forgery rules.

A target is refused when it is (or, for IPv6 forms that carry an IPv4 address, embeds) a
loopback, private, shared (100.64.0.0/10, carrier-grade NAT: never a public service, so
refused), link-local (169.254.0.0/16 and fe80::/10, where cloud metadata services answer),
multicast, unspecified (0.0.0.0, ::), site-local or otherwise reserved / non-global address.
``WAYPOINT_WEBHOOKS_ALLOW_PRIVATE=true`` lifts the rule (development, tests).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


def refusal(address: IPAddress) -> str | None:
    """Why a webhook may not connect to ``address``, or None when it is a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
        if embedded is not None:
            reason = refusal(embedded)
            return f"{reason} (IPv4 in IPv6)" if reason else None
        if address.teredo is not None or address in _NAT64_LOCAL:
            return "reserved"
        if address.is_site_local:
            return "site-local"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "shared"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "reserved"
    return None


def literal_address(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is written as one, including the short and numeric
    IPv4 forms resolvers accept (``127.1``, ``2130706433``, ``0x7f.0.0.1``)."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host) and host[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def url_refusal(url: str, *, allow_private: bool) -> str | None:
    """Why ``url`` cannot be a webhook target, judged from its text alone (creation time)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "The URL is not valid."
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "The URL must be http:// or https:// with a host."
    if parts.username is not None or parts.password is not None:
        return "The URL must not carry credentials."
    if port == 0:
        return "The URL's port is not valid."
    if allow_private:
        return None
    host = parts.hostname.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return "The URL points at this machine (localhost)."
    address = literal_address(host)
    if address is not None and (reason := refusal(address)) is not None:
        return f"The URL points at a {reason} address."
    return None
