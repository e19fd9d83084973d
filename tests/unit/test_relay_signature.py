"""Relay links between nodes are signed with the cluster's secret
(server.media_sessions.relay_links)."""

from __future__ import annotations

import time

from server.media_sessions.relay_links import (
    SIGNATURE_HEADER,
    TIME_HEADER,
    link_authentic,
    link_headers,
    relay_signature,
)

SECRET = b"s" * 32


def test_a_signed_link_request_names_its_node() -> None:
    headers = link_headers(SECRET, "t_0123456789abcdef", "host2")
    assert link_authentic(SECRET, "t_0123456789abcdef", headers) == "host2"


def test_another_secret_tour_or_an_old_stamp_is_refused() -> None:
    headers = link_headers(SECRET, "t_0123456789abcdef", "host2")
    assert link_authentic(b"x" * 32, "t_0123456789abcdef", headers) is None
    assert link_authentic(SECRET, "t_fedcba9876543210", headers) is None
    stamp = f"{time.time() - 120:.3f}"
    old = {**headers, TIME_HEADER: stamp}
    old[SIGNATURE_HEADER] = relay_signature(SECRET, "t_0123456789abcdef", "host2", stamp)
    assert link_authentic(SECRET, "t_0123456789abcdef", old) is None
    assert link_authentic(SECRET, "t_0123456789abcdef", {}) is None
    assert link_authentic(SECRET, "t_0123456789abcdef", {**headers, TIME_HEADER: "x"}) is None
