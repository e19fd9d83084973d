"""Benchmarks: each prints TradeTalk's figures beside a baseline measured in the same run.

Run each from the repository root as a module, e.g. `.venv/bin/python -m bench.chat --help`:
the repository root is then on the import path, so the benches import `server`, `translation`,
`media` and the test helpers (`tests.support`) as packages, with no `sys.path` edits.
"""
