"""Reading a server's Prometheus `/metrics` in tests and benchmarks."""

from __future__ import annotations

import contextlib

import aiohttp


async def gauges(url: str, token: str) -> dict[str, float]:
    """The server's unlabelled `tradetalk_*` values, by name without the prefix (`/metrics`
    served on the public port behind `TRADETALK_METRICS_TOKEN=token`)."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/metrics", headers=headers) as response:
            assert response.status == 200, response.status
            text = await response.text()
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("tradetalk_") and "{" not in name:
            with contextlib.suppress(ValueError):
                values[name.removeprefix("tradetalk_")] = float(value)
    return values
