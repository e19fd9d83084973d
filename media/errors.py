"""Errors raised by the media engine (all subclasses of `MediaError`)."""

from __future__ import annotations


class MediaError(Exception):
    """Base class of every error the media engine raises on purpose."""


class InvalidSdpError(MediaError):
    """The SDP offer or answer is malformed or carries no usable media."""


class PeerExistsError(MediaError):
    """A peer with this id is already in the room."""


class UnknownPeerError(MediaError):
    """No peer with this id is in the room."""


class RoomClosedError(MediaError):
    """The room was closed; it accepts no more peers."""


class NegotiationError(MediaError):
    """A renegotiation failed: no answer in time, or an unusable answer."""
