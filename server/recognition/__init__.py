"""Speech recognition off the media node: `tradetalk worker` processes fed through Redis Streams
(docs/architecture.md, "Recognition workers")."""
