"""Socket.IO plumbing: strict packets, the event dispatcher, payload validation, per-socket
sessions, error acks.
"""
