"""Real-time media engines (WebRTC via aiortc); knows nothing of Socket.IO or Redis."""
