"""Browser tests: the web client in Debian's Chromium, driven by Playwright."""
