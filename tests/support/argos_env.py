"""Point argostranslate at a throw-away data dir for the test process, before it is imported.

argostranslate reads ``ARGOS_PACKAGES_DIR`` and ``XDG_*`` when first imported and never again,
so tests call :func:`argos_packages_path` before importing it: the first call configures the
environment for the whole process (``translation.paths.configure_argos_env`` on a temporary
data dir, i.e. the server's own layout) and every call returns where packages install.
If another test already configured and imported argostranslate, its choice is kept, unless it
points into the user's home directory (then the tests refuse to touch it).
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from pathlib import Path

from translation.paths import configure_argos_env

_configured = False


def configure_argos_for_tests() -> None:
    """Configure argostranslate's environment once per process, into a temporary data dir."""
    global _configured
    if _configured:
        return
    if "argostranslate.settings" not in sys.modules:
        data_dir = Path(tempfile.mkdtemp(prefix="tradetalk-argos-test-"))
        atexit.register(shutil.rmtree, data_dir, ignore_errors=True)
        configure_argos_env(data_dir)
    _configured = True
    packages = argos_packages_path()
    if Path.home() in packages.parents:
        raise RuntimeError(f"argostranslate was imported unconfigured; it uses {packages}")


def argos_packages_path() -> Path:
    """Where argostranslate installs packages in this test process."""
    configure_argos_for_tests()
    import argostranslate.settings

    return Path(argostranslate.settings.package_data_dir).resolve()
