"""Another git revision of this repository, extracted for a benchmark's same-run baseline."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def baseline_tree(rev: str, root: Path) -> Path:
    """Revision `rev` of this repository extracted under `root` (for `--baseline`)."""
    tree = root / f"baseline-{rev.replace('/', '-')}"
    tree.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", rev], cwd=REPO, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree
