"""Realtime event handlers that are not media: chat and the agent inbox, and the resource bounds."""
