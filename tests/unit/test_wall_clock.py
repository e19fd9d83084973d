"""A speaker's audio seconds on the owner's wall clock (`server/media_sessions/subtitles.py`
WallClock): a stretch with no packets is booked where it happened, a stall made up by a burst
is booked back, and a late first packet does not shift every later line."""

from __future__ import annotations

from server.media_sessions.subtitles import WallClock

FRAME = 0.02


def feed(clock: WallClock, start: float, seconds: float, *, at: float | None = None) -> float:
    """Frames covering `seconds` of audio said from `start`, each arriving when said (or all
    at `at`: a burst). Returns the wall time after the last frame."""
    now = start
    for _ in range(round(seconds / FRAME)):
        now += FRAME
        clock.arrived(now if at is None else at, FRAME)
    return now


def test_audio_in_real_time_maps_one_to_one() -> None:
    clock = WallClock(gap_s=0.5)
    feed(clock, 2.0, 3.0)
    assert abs(clock.wall(1.0) - 3.02) < 1e-6


def test_jitter_below_the_gap_books_nothing() -> None:
    clock = WallClock(gap_s=0.5)
    feed(clock, 0.0, 2.0)
    feed(clock, 2.3, 2.0)  # 0.3 s late, then on time (the stream stays behind by 0.3 s)
    assert clock.ahead_s == 0
    assert abs(clock.wall(1.0) - 1.02) < 1e-6


def test_a_muted_stretch_is_booked_where_it_happened() -> None:
    clock = WallClock(gap_s=0.5)
    feed(clock, 0.0, 2.0)
    feed(clock, 12.0, 2.0)  # ten seconds with no packets
    assert abs(clock.wall(1.0) - 1.02) < 1e-6
    assert abs(clock.wall(3.0) - 13.02) < 0.03


def test_a_stall_made_up_by_a_burst_is_booked_back() -> None:
    clock = WallClock(gap_s=0.5)
    feed(clock, 0.0, 2.0)
    feed(clock, 2.0, 1.0, at=3.0)  # the loop was busy for a second, then all of it at once
    feed(clock, 3.0, 2.0)
    assert abs(clock.wall(4.0) - 4.02) < 0.03


def test_a_late_first_packet_does_not_shift_later_lines() -> None:
    clock = WallClock(gap_s=0.5)
    # the first 0.7 s of audio arrive together 0.7 s late (a busy start), then in real time
    feed(clock, 1.0, 0.7, at=1.7)
    feed(clock, 1.7, 10.0)
    assert abs(clock.wall(0.0) - 1.02) < 0.03  # the first word where it was said
    assert abs(clock.wall(8.0) - 9.02) < 0.03
