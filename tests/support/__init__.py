"""The helpers tests share, importable from one place (`from tests.support import ...`): real
Socket.IO clients and tokens, server processes, WebRTC call and tour clients, and the small
waits and filters every media test uses (each defined once)."""

from tests.support.call_clients import CallClient, call_entries, call_transcript, speech_with_pauses
from tests.support.peers import (
    REPO,
    SECRET,
    SHARED,
    Peer,
    ServerProcess,
    finals,
    new_user,
    sign_in_once,
    start_call,
    token_for,
)
from tests.support.rtc_clients import RtcClient, wait_until
from tests.support.tour_clients import TourClient

__all__ = [
    "REPO",
    "SECRET",
    "SHARED",
    "CallClient",
    "Peer",
    "RtcClient",
    "ServerProcess",
    "TourClient",
    "call_entries",
    "call_transcript",
    "finals",
    "new_user",
    "sign_in_once",
    "speech_with_pauses",
    "start_call",
    "token_for",
    "wait_until",
]
