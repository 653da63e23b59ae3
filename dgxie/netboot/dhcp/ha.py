"""Two DHCP servers on one segment, Kea-HA style load balancing (pure: no I/O, no config).

Each client belongs to one of the two servers by the RFC 3074 hash of its client identifier
(option 61, or `chaddr` without one) modulo 2, as Kea's HA hook computes it: server 0 (the
`dhcp.ha` name that sorts first) answers the clients whose hash is even, server 1 the odd ones.
Each server allocates new dynamic addresses only from its own part of every pool (`split_pool`:
server 0 the lower half, server 1 the upper half), so the two can never give one address to two
MACs, even when they cannot see each other. When the partner has been silent for the takeover
time the service sets `partner_down`, and this server answers every client (still allocating
only from its own part; a client keeps a lease it already holds, as the lease table knows it).
Reservations with a fixed address are answered by both servers at all times.
"""

from __future__ import annotations

from dataclasses import dataclass

# RFC 3074 section 6: the mixing table of the Pearson hash (256 distinct values).
MIX = bytes((
    251, 175, 119, 215, 81, 14, 79, 191, 103, 49, 181, 143, 186, 157, 0,
    232, 31, 32, 55, 60, 152, 58, 17, 237, 174, 70, 160, 144, 220, 90, 57,
    223, 59, 3, 18, 140, 111, 166, 203, 196, 134, 243, 124, 95, 222, 179,
    197, 65, 180, 48, 36, 15, 107, 46, 233, 130, 165, 30, 123, 161, 209, 23,
    97, 16, 40, 91, 219, 61, 100, 10, 210, 109, 250, 127, 22, 138, 29, 108,
    244, 67, 207, 9, 178, 204, 74, 98, 126, 249, 167, 116, 34, 77, 193,
    200, 121, 5, 20, 113, 71, 35, 128, 13, 182, 94, 25, 226, 227, 199, 75,
    27, 41, 245, 230, 224, 43, 225, 177, 26, 155, 150, 212, 142, 218, 115,
    241, 73, 88, 105, 39, 114, 62, 255, 192, 201, 145, 214, 168, 158, 221,
    148, 154, 122, 12, 84, 82, 163, 44, 139, 228, 236, 205, 242, 217, 11,
    187, 146, 159, 64, 86, 239, 195, 42, 106, 198, 118, 112, 184, 172, 87,
    2, 173, 117, 176, 229, 247, 253, 137, 185, 99, 164, 102, 147, 45, 66,
    231, 52, 141, 211, 194, 206, 246, 238, 56, 110, 78, 248, 63, 240, 189,
    93, 92, 51, 53, 183, 19, 171, 72, 50, 33, 104, 101, 69, 8, 252, 83, 120,
    76, 135, 85, 54, 202, 125, 188, 213, 96, 235, 136, 208, 162, 129, 190,
    132, 156, 38, 47, 1, 7, 254, 24, 4, 216, 131, 89, 21, 28, 133, 37, 153,
    149, 80, 170, 68, 6, 169, 234, 151))
assert len(set(MIX)) == 256


def lb_hash(key: bytes) -> int:
    """RFC 3074 `loadb_p_hash`: a Pearson hash seeded with the length, last byte first."""
    h = len(key) & 0xFF
    for b in reversed(key):
        h = MIX[h ^ b]
    return h


def split_pool(pool: tuple[int, int], index: int) -> tuple[int, int] | None:
    """Server `index`'s part of `pool` (inclusive bounds): 0 the lower half, 1 the upper half
    (the odd address goes to server 0); None when the pool is too small to have a part for it."""
    lo, hi = pool
    mid = lo + (hi - lo + 1 + 1) // 2  # first address of the upper half
    part = (lo, mid - 1) if index == 0 else (mid, hi)
    return part if part[0] <= part[1] else None


@dataclass
class HaFilter:
    """Which clients this server answers: its own hash bucket, or all while the partner is down."""

    index: int  # 0 or 1
    partner_down: bool = False

    def owner(self, client_id: bytes | None, mac: bytes) -> int:
        """The server (0 or 1) a client belongs to: option 61 when present and not empty, else chaddr."""
        return lb_hash(client_id or mac) % 2

    def serves(self, client_id: bytes | None, mac: bytes) -> bool:
        return self.partner_down or self.owner(client_id, mac) == self.index
