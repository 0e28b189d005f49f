"""Where the farm may send a tenant's callbacks: never into its own network.

A callback URL is a tenant's to choose, so without a check any tenant could make the farm POST
to its loopback, its private network or a cloud metadata service (SSRF). A URL is refused at
submit when its host is, or resolves to, an address that is not public: loopback, private,
link-local (169.254.169.254 included), unique-local, multicast, unspecified or reserved, in any
spelling (decimal, octal and hex IPv4 too, and IPv4 inside IPv6). At delivery the host is
resolved and checked again, and the farm connects to the address it checked, so a DNS answer
that changed in between (rebinding) cannot redirect the callback. Redirects are never followed.

Operators allow their own internal receivers with `VOICEFARM_CALLBACK_ALLOW_CIDRS`.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from voicefarm.errors import InvalidRequest
from voicefarm.settings import Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Target:
    """A checked callback: the URL to connect to (the checked address in place of the host),
    and what the tenant's URL named, for the Host header and for TLS (SNI and the certificate)."""

    url: str
    host: str  # the host name, for TLS
    host_header: str  # host[:port], as the tenant's URL had it


def _kind(address: Address) -> str | None:
    """Why an address is not public, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind in ("loopback", "link_local", "multicast", "unspecified", "private"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if address.is_global else "reserved"


def check(url: str, settings: Settings) -> Target:
    """The target to deliver this callback to; InvalidRequest, naming the reason, when the URL's
    host is or resolves to an address the farm must not call."""
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidRequest(f"callback_url {url!r} must be an http or https URL with a host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = {ipaddress.ip_address(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except (socket.gaierror, UnicodeError):
        raise InvalidRequest(f"callback_url host {host!r} does not resolve") from None
    allowed = [ipaddress.ip_network(cidr) for cidr in settings.callback_allow_cidrs]
    for address in sorted(found, key=str):
        kind = _kind(address)
        if kind is not None and not any(address in network for network in allowed):
            raise InvalidRequest(
                f"callback_url host {host!r} is {address}, a {kind} address: callbacks go to public addresses "
                "only (an operator can allow internal receivers with VOICEFARM_CALLBACK_ALLOW_CIDRS)"
            )
    chosen = min(found, key=str)
    netloc = f"[{chosen}]:{port}" if chosen.version == 6 else f"{chosen}:{port}"
    url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    return Target(url, host, parts.netloc.rsplit("@", 1)[-1])
