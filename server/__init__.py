"""TradeTalk server: Socket.IO chat, calls and tours on aiohttp, history in Redis."""
