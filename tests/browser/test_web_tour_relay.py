"""A browser viewer served by a tour relay (issue 21): the web client is unchanged. Nodes A, B
signal only, C and D hold media, and every viewer is relayed (`TRADETALK_TOUR_LOCAL_VIEWERS=0`):
the host's page on A, a Spanish-speaking viewer's page on B; the tour runs on C or D, the
viewer's media comes from the other one. kill -9 of that relay: the page hears `tour.moved`
("media server lost"), joins again by itself and plays the tour from the owner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.test_web_cluster import (
    RECORD_TOUR,
    TOUR_NEW_PC,
    TOUR_STATE,
    Cluster,
    wait_tour_video,
    watch_across,
)


@pytest.fixture
def relay_cluster(tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path, env={"TRADETALK_TOUR_LOCAL_VIEWERS": "0"})
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def test_a_relayed_viewer_watches_and_rejoins_when_its_relay_dies(
    relay_cluster: Cluster, new_page, shot, media_browser
) -> None:
    cluster = relay_cluster
    host, viewer, tour_id = watch_across(cluster, new_page, media_browser, "Línea de prensas", "es")
    owner = cluster.node_of(cluster.owner(tour_id)["owner"])
    relay = cluster.nodes["D" if owner.name == "C" else "C"]
    owner_log = owner.server.log.read_text()
    assert f"tour {tour_id}: relay link to {relay.node_id} open" in owner_log, owner_log
    viewer.evaluate(RECORD_TOUR)
    shot(viewer, "relayed-viewer-es")

    relay.server.kill()
    try:
        viewer.wait_for_function("() => window.moved.length >= 1", timeout=15000)
        viewer.wait_for_function(TOUR_NEW_PC, timeout=15000)
    except Exception:
        raise AssertionError(f"{viewer.evaluate(TOUR_STATE)}\n{cluster.logs()}") from None
    assert viewer.evaluate("() => window.moved[0].reason") == "media server lost"
    wait_tour_video(viewer)
    expect(host.locator("#tour-count")).to_have_text("1 watching")
    shot(viewer, "relayed-viewer-es-after-relay-lost")
    assert not host.errors and not viewer.errors, (host.errors, viewer.errors)
