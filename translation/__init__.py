"""Offline translation and speech-recognition engines (no Socket.IO, no Redis)."""
