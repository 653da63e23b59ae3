"""`public_url` when the config does not set it: derived from `api.listen` (docs/configuration.md).

A specific listen host is used as it is. A wildcard one (0.0.0.0, ::) names no address nodes can use,
so the host's own address is taken: the one on its route to the first DHCP subnet (the provisioning
side), else its hostname. `dgxie serve` prints the result and how it was found in one start-up line.
"""

from __future__ import annotations

import ipaddress
import socket

WILDCARDS = {"", "0.0.0.0", "::", "[::]", "*"}


def _route_address(cidr: ipaddress.IPv4Network) -> str | None:
    """This host's address on its route towards CIDR (a UDP connect sends nothing), or None."""
    target = next(iter(cidr.hosts()), cidr.network_address)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((str(target), 67))
            addr = str(s.getsockname()[0])
    except OSError:
        return None
    return None if addr.startswith("0.") else addr


def derive_public_url(listen: str, subnets: list[ipaddress.IPv4Network]) -> tuple[str, str]:
    """(URL, how it was found) for `api.listen` LISTEN; SUBNETS are the DHCP subnets, first = preferred."""
    host, _, port = listen.rpartition(":")
    if host not in WILDCARDS:
        return f"http://{host}:{port}", f"the host of api.listen {listen}"
    for cidr in subnets[:1]:
        addr = _route_address(cidr)
        if addr is not None:
            return f"http://{addr}:{port}", f"api.listen {listen} is every address: this host's address towards " \
                                            f"DHCP subnet {cidr}"
    name = socket.gethostname()
    why = f"no route to DHCP subnet {subnets[0]}" if subnets else "no DHCP subnet is configured"
    return f"http://{name}:{port}", f"api.listen {listen} is every address and {why}: this host's name {name}"
