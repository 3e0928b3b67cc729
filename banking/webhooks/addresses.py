"""Which URLs a webhook may be sent to: a guard against server-side request forgery.

A subscriber chooses the URL and the server makes the request, so without a check a
user could make the bank's server call its own private network (the database, Redis,
Rasa's API, a cloud metadata service at 169.254.169.254). Allowed are http and https URLs
without user info whose host resolves only to public addresses; a private, loopback,
link-local or otherwise reserved address is refused (also when an IPv6 address carries it:
NAT64's 64:ff9b::/96, ::/96, 6to4) unless its host is named in
`webhooks.allowed_private_hosts` (tests and a local receiver list 127.0.0.1 there;
compared with the URL's host in lower case).

The check runs when a subscription is made and again before every delivery attempt,
so a name later pointed at a private address is refused then. The attempt connects to the
address that was checked (naming the host in the Host header and in TLS's server name),
not to a second look-up's answer: a name that changes its address between look-ups (DNS
rebinding) cannot slip a private address past the check.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

MAX_URL_CHARS = 2048


class UnsafeUrl(ValueError):
    """The URL may not receive webhooks; the message says why (safe to show the user)."""


@dataclass(frozen=True)
class Target:
    """Where a checked URL's request goes: `url` with its host replaced by the checked
    address, and the names the request must still carry."""

    url: str
    host_header: str
    server_name: str  # for TLS: certificate check and SNI


def check_url(url: str, allowed_private_hosts: list[str]) -> Target:
    """Raises UnsafeUrl unless `url` may receive webhooks."""
    if len(url) > MAX_URL_CHARS:
        raise UnsafeUrl(f"The URL is longer than {MAX_URL_CHARS} characters.")
    if any(ord(character) <= 0x20 or ord(character) == 0x7F for character in url):
        raise UnsafeUrl("The URL may not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UnsafeUrl("The URL is not valid.") from error
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl("The URL must start with http:// or https://.")
    host = parts.hostname
    if not host:
        raise UnsafeUrl("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("The URL may not carry a user name or password.")
    port = port or (443 if parts.scheme == "https" else 80)
    addresses = _addresses(host, port)
    allowed = host in {name.lower() for name in allowed_private_hosts}
    if not allowed and not all(_public(address) for address in addresses):
        raise UnsafeUrl(
            "The URL's host is a private, loopback or reserved address; webhooks go to "
            "public addresses only."
        )
    shown = f"[{addresses[0]}]" if addresses[0].version == 6 else str(addresses[0])
    pinned = urlunsplit(parts._replace(netloc=f"{shown}:{port}"))
    return Target(url=pinned, host_header=parts.netloc, server_name=host)


# IPv6 forms that carry an IPv4 address in their last 32 bits: NAT64's well-known prefix
# (a NAT64 gateway forwards 64:ff9b::10.0.0.1 to 10.0.0.1) and the old IPv4-compatible
# form (::10.0.0.1). Python calls both global whatever IPv4 address they carry.
_CARRY_IPV4 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("::/96"))
# NAT64 prefixes a network chooses for itself (RFC 8215): never a public destination.
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A public address, and so is any IPv4 address it carries (NAT64, 6to4, ::a.b.c.d)."""
    if not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return True
    if address in _LOCAL_NAT64:
        return False
    carried = next((net for net in _CARRY_IPV4 if address in net), None)
    if carried is not None:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF).is_global
    return address.sixtofour is None or address.sixtofour.is_global


def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError) as error:  # gaierror, or a name IDNA cannot encode
        raise UnsafeUrl("The URL's host name cannot be resolved.") from error
    addresses = []
    for *_, sockaddr in infos:
        # Text for IPv4 and IPv6, the only families a host name resolves to here.
        host_address = str(sockaddr[0])
        address = ipaddress.ip_address(host_address.split("%")[0])  # drop an IPv6 zone
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        addresses.append(address)
    return addresses
