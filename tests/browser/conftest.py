"""Fixtures for the browser tests: a dev-mode server in a thread, and Debian's Chromium."""

from __future__ import annotations

import asyncio
import re
import shutil
import threading
import time
import wave
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from server.app import create_app
from server.config import Settings
from server.storage.embedded_redis import EmbeddedRedis
from tests.support.peers import REPO, SECRET
from translation.translator import Translator

CHROMIUM = Path("/usr/bin/chromium")
# What a page must come to show, it may show later than Playwright's 5-s default on a loaded
# 2-core CI machine (servers, browsers and recognizers share it): the same assertions, more
# patience.
expect.set_options(timeout=15_000)
# Fake camera and microphone, no permission prompt, media plays without a click.
MEDIA_ARGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ARTIFACTS = REPO / "tests" / "artifacts" / "browser"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


class ThreadedServer:
    """The TradeTalk app (dev mode) served by aiohttp on its own event loop in a thread."""

    def __init__(self, settings: Settings, redis_url: str, translator: Any = None) -> None:
        self.app = create_app(settings, redis_url, translator)
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(self.app, shutdown_timeout=2)
        self.url = ""

    def start(self, timeout: float = 60) -> str:
        """Start serving on a free port; return the base URL."""
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self.loop)
        self.url = future.result(timeout)
        return self.url

    async def _start(self) -> str:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        """Close sockets, run the app's cleanup, stop the loop."""
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)

    async def _stop(self) -> None:
        await self.runner.cleanup()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)


@pytest.fixture(scope="session")
def web_server(
    redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory, translator: Translator
) -> Iterator[str]:
    """Base URL of a dev-mode server (the dev sign-in endpoint is on). It translates with the
    session's real engines: Apertium en<->es and the test-built Argos ko->en, en->ko, en->zh."""
    vendor = REPO / "web_client" / "node_modules" / "socket.io-client" / "dist"
    assert (vendor / "socket.io.esm.min.js").is_file(), (
        "socket.io-client is not installed: run `npm install --prefix web_client`"
    )
    settings = Settings(data_dir=tmp_path_factory.mktemp("web"), secret=SECRET, dev=True)
    server = ThreadedServer(settings, redis_server.url, translator)
    yield server.start()
    server.stop()


def launch_chromium(playwright: Playwright, extra_args: Sequence[str] = ()) -> Browser:
    """Launch Debian's Chromium headless with the common flags plus `extra_args`."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args]
    )


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    """Playwright's driver; fails (never skips) when Debian's Chromium is not installed.

    Module-scoped: Playwright's sync API runs an event loop in the main thread while it is
    open, which would clash with the async tests of later modules."""
    assert CHROMIUM.exists() or shutil.which("chromium"), (
        "Debian's chromium is missing: apt-get install chromium (scripts/setup-system.sh)"
    )
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    """Debian's Chromium (never a downloaded browser), with no camera or microphone and
    Chromium's own autoplay policy: sound only after a click in the page (no capture runs)."""
    browser = launch_chromium(playwright_driver)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def launch_browser(playwright_driver: Playwright) -> Iterator[Callable[[Sequence[str]], Browser]]:
    """`launch_browser(extra_args)`: another Chromium of this module, with the common flags plus
    `extra_args` (fake devices, a microphone's recording, denied prompts); each one launched is
    closed after the module."""
    browsers: list[Browser] = []

    def launch(extra_args: Sequence[str]) -> Browser:
        browsers.append(launch_chromium(playwright_driver, extra_args))
        return browsers[-1]

    yield launch
    for browser in browsers:
        browser.close()


SPEECH = REPO.parent / "shared" / "testdata" / "speech" / "ko_test.wav"
SILENCE_S = 3.0


def speech_with_silence(folder: Path, speech: Path = SPEECH) -> Path:
    """A recording (the Korean one by default) followed by silence (Chromium loops the fake
    microphone's file)."""
    assert speech.is_file(), f"missing test recording {speech}"
    out = folder / f"{speech.stem}_then_silence.wav"
    with wave.open(str(speech), "rb") as source:
        params = source.getparams()
        frames = source.readframes(source.getnframes())
    silence = b"\0" * int(SILENCE_S * params.framerate) * params.sampwidth * params.nchannels
    with wave.open(str(out), "wb") as target:
        target.setparams(params)
        target.writeframes(frames + silence)
    return out


def speaking_mic_args(folder: Path, speech: Path = SPEECH) -> list[str]:
    """Chromium flags for a fake camera and a fake microphone that speaks `speech` (written to
    `folder` with silence after it), then is silent."""
    return [*MEDIA_ARGS, f"--use-file-for-fake-audio-capture={speech_with_silence(folder, speech)}"]


@pytest.fixture(scope="module")
def korean_mic_browser(
    launch_browser: Callable[[Sequence[str]], Browser], tmp_path_factory: pytest.TempPathFactory
) -> Browser:
    """A Chromium whose fake microphone speaks Korean, then is silent (fake camera: the test
    pattern): the speaker of a call, the host of a tour."""
    return launch_browser(speaking_mic_args(tmp_path_factory.mktemp("fake-mic")))


@pytest.fixture(scope="module")
def media_browser(launch_browser: Callable[[Sequence[str]], Browser]) -> Browser:
    """A Chromium with the default fake camera and microphone (a beep, no speech): listeners and
    tour viewers."""
    return launch_browser(MEDIA_ARGS)


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    """Open pages in fresh browser contexts (separate sessionStorage); closed after the test.
    `make(viewport, on=other_browser)` opens one in another browser.

    Every page collects console errors and JS dialogs in `page.errors` / `page.dialogs`."""
    contexts: list[BrowserContext] = []

    def make(viewport: dict[str, int] = DESKTOP, on: Browser | None = None) -> Page:
        context = (on or browser).new_context(viewport=viewport)
        contexts.append(context)
        page = context.new_page()
        page.errors = []  # type: ignore[attr-defined]
        page.dialogs = []  # type: ignore[attr-defined]
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))  # type: ignore[attr-defined]

        def on_dialog(dialog) -> None:
            page.dialogs.append(dialog.message)  # type: ignore[attr-defined]
            dialog.dismiss()

        page.on("dialog", on_dialog)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """Save a screenshot as tests/artifacts/browser/<test>/<nn>-<step>.png."""
    folder = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    count = [0]

    def save(page: Page, step: str) -> Path:
        count[0] += 1
        path = folder / f"{count[0]:02d}-{step}.png"
        page.screenshot(path=str(path), full_page=False)
        return path

    return save


def sign_in(page: Page, base_url: str, name: str, role: str, lang: str) -> str:
    """Sign in through the dev form; return the user id the page shows."""
    page.goto(base_url + "/")
    page.locator("#signin-name").fill(name)  # by id: the form speaks the browser's last language
    page.locator("#signin-role").select_option(role)
    page.locator("#signin-lang").select_option(lang)  # the form now speaks `lang`
    page.locator("#signin-submit").click()
    my_id = page.locator("#my-id")
    expect(my_id).to_have_text(re.compile(r"\S+"))
    expect(page.locator("#status")).to_be_hidden()
    return my_id.inner_text()


def open_conversation(starter: Page, other: Page, other_id: str, subject: str) -> None:
    """`starter` (an English page) starts a conversation about `subject` with `other_id`;
    `other` opens it from its inbox. Both then show it."""
    starter.get_by_label("Start a conversation with (user id)").fill(other_id)
    starter.get_by_label("Subject (optional)").fill(subject)
    starter.get_by_role("button", name="Start").click()
    expect(starter.locator("#conv-title")).to_have_text(subject)
    other.locator("#inbox-list li.inbox-item a").click()
    expect(other.locator("#conv-title")).to_have_text(subject)


# Playwright runs `page.evaluate`, `wait_for_function` and every `expect(...)` with a user
# gesture (CDP `userGesture: true`), which gives the page the activation Chromium's autoplay
# policy asks for. A test of what a page does *without* a click reads it through its own CDP
# session instead, whose evaluations carry no gesture.


def quiet_eval(page: Page, expression: str) -> Any:
    """Evaluate `expression` in the page without a user gesture; return its value."""
    session = getattr(page, "quiet_cdp", None)
    if session is None:
        session = page.context.new_cdp_session(page)
        page.quiet_cdp = session  # type: ignore[attr-defined]
    answer = session.send(
        "Runtime.evaluate",
        {"expression": expression, "returnByValue": True, "awaitPromise": True},
    )
    if "exceptionDetails" in answer:
        raise AssertionError(f"{expression!r} failed: {answer['exceptionDetails']}")
    return answer["result"].get("value")


def wait_quietly(page: Page, expression: str, timeout_s: float = 30, what: str = "") -> Any:
    """Poll `expression` without a user gesture until it is truthy; return that value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = quiet_eval(page, expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or expression}; last {value!r}")
        time.sleep(0.2)
