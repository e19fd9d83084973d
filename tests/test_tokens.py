"""Signed tokens: issue, verify, and every way a token can be refused."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from server.tokens import Identity, TokenError, check_identity, issue_token, verify_token
from tests.peers import REPO

SECRET = b"k" * 32
ALICE = Identity("alice", "Alice", "buyer", "en")


def test_round_trip() -> None:
    assert verify_token(SECRET, issue_token(SECRET, ALICE)) == ALICE


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "missing token"),
        ("", "missing token"),
        (42, "malformed token"),
        ("no-dot", "malformed token"),
        ("a.b.c", "malformed token"),
        ("x" * 3000, "malformed token"),
    ],
)
def test_refused_shapes(token: object, reason: str) -> None:
    with pytest.raises(TokenError, match=reason):
        verify_token(SECRET, token)


def test_bad_signature_and_tampering() -> None:
    token = issue_token(SECRET, ALICE)
    with pytest.raises(TokenError, match="bad token signature"):
        verify_token(b"other-secret", token)
    _body, sig = token.split(".")
    forged = issue_token(SECRET, Identity("mallory", "M", "agent", "en")).split(".")[0]
    with pytest.raises(TokenError, match="bad token signature"):
        verify_token(SECRET, f"{forged}.{sig}")


def test_expired() -> None:
    token = issue_token(SECRET, ALICE, ttl=1)
    with pytest.raises(TokenError, match="expired"):
        verify_token(SECRET, token, now=time.time() + 2)


def test_identity_checks() -> None:
    with pytest.raises(TokenError, match="role"):
        check_identity("bob", "Bob", "admin", "en")
    with pytest.raises(TokenError, match="lang"):
        check_identity("bob", "Bob", "buyer", "english")
    with pytest.raises(TokenError, match="user id"):
        check_identity("bad id!", "Bob", "buyer", "en")


def test_cli_prints_a_token_signed_with_the_data_dir_secret(tmp_path) -> None:
    env = {"TRADETALK_DATA": str(tmp_path), "PATH": "/usr/bin:/bin"}
    args = [sys.executable, "-m", "server.cli", "token", "--user", "sup1", "--name", "Li Wei"]
    args += ["--role", "supplier", "--lang", "zh", "--ttl", "60"]
    out = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, check=True)
    secret = (tmp_path / "secret").read_bytes()
    assert oct((tmp_path / "secret").stat().st_mode & 0o777) == "0o600"
    assert verify_token(secret, out.stdout.strip()) == Identity("sup1", "Li Wei", "supplier", "zh")
    bad = subprocess.run([*args[:-1], "klingon"], env=env, cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 2 and "lang" in bad.stderr
