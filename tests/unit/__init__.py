"""Fast unit tests: no processes, no network, no Redis server; seconds for the whole folder."""
