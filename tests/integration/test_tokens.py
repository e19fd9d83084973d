"""Signed tokens: issue, verify, and every way a token can be refused."""

from __future__ import annotations

import subprocess
import sys
import time

import jwt
import pytest

from server.tokens import (
    CLOCK_SKEW_S,
    Identity,
    TokenError,
    TokenKey,
    check_identity,
    issue_token,
    verify_token,
)
from tests.support.peers import REPO

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
        ("a.b.c.d", "malformed token"),
        ("x" * 3000, "malformed token"),
        ("eyJ.é", "malformed token"),
        ("eyJzdWIiOiJhIn0.c2ln", "old-format token"),
    ],
)
def test_refused_shapes(token: object, reason: str) -> None:
    with pytest.raises(TokenError, match=reason):
        verify_token(SECRET, token)


def test_bad_signature_and_tampering() -> None:
    token = issue_token(SECRET, ALICE)
    with pytest.raises(TokenError, match="bad token signature"):
        verify_token(b"another-secret-of-32-bytes-or-so!", token)
    head, _body, sig = token.split(".")
    forged = issue_token(SECRET, Identity("mallory", "M", "agent", "en")).split(".")[1]
    with pytest.raises(TokenError, match="bad token signature"):
        verify_token(SECRET, f"{head}.{forged}.{sig}")


def test_expired() -> None:
    token = issue_token(SECRET, ALICE, ttl=1)
    with pytest.raises(TokenError, match="expired"):
        verify_token(SECRET, token, now=time.time() + 1 + CLOCK_SKEW_S + 1)


def claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    base = {"sub": "alice", "name": "Alice", "role": "buyer", "lang": "en"}
    return {**base, "iat": now, "exp": now + 600, **changes}


def test_a_jwt_minted_by_pyjwt_directly_is_accepted() -> None:
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    assert verify_token(SECRET, token) == ALICE


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_algorithms_are_refused(alg: str) -> None:
    token = jwt.encode(claims(), SECRET, algorithm=alg)
    with pytest.raises(TokenError, match="algorithm must be HS256"):
        verify_token(SECRET, token)


def test_alg_none_is_refused() -> None:
    token = jwt.encode(claims(), None, algorithm="none")
    with pytest.raises(TokenError, match="algorithm must be HS256"):
        verify_token(SECRET, token)


def test_clock_skew_is_allowed_a_little() -> None:
    now = int(time.time())
    just_expired = jwt.encode(claims(exp=now - 5), SECRET, algorithm="HS256")
    assert verify_token(SECRET, just_expired) == ALICE
    with pytest.raises(TokenError, match="expired"):
        verify_token(SECRET, jwt.encode(claims(exp=now - 120), SECRET, algorithm="HS256"))
    future = jwt.encode(claims(iat=now + 600, exp=now + 1200), SECRET, algorithm="HS256")
    with pytest.raises(TokenError, match="future"):
        verify_token(SECRET, future)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"sub": "alice\n"}, "user id"),
        ({"lang": "en\n"}, "lang"),
        ({"name": "\ud800"}, "name"),
        ({"role": ["buyer"]}, "role"),
        ({"exp": "soon"}, "malformed"),
    ],
)
def test_claims_are_checked_whole(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(TokenError, match=reason):
        verify_token(SECRET, jwt.encode(claims(**changes), SECRET, algorithm="HS256"))


def test_missing_claims_are_named() -> None:
    body = claims()
    del body["iat"]
    with pytest.raises(TokenError, match="'iat'"):
        verify_token(SECRET, jwt.encode(body, SECRET, algorithm="HS256"))


def test_issuer_and_audience_when_set() -> None:
    key = TokenKey.of(SECRET, "https://crm.example", "tradetalk")
    assert verify_token(key, issue_token(key, ALICE)) == ALICE
    good = claims(iss="https://crm.example", aud="tradetalk")
    assert verify_token(key, jwt.encode(good, SECRET, algorithm="HS256")) == ALICE
    with pytest.raises(TokenError, match="issuer"):
        verify_token(key, jwt.encode({**good, "iss": "evil"}, SECRET, algorithm="HS256"))
    with pytest.raises(TokenError, match="audience"):
        verify_token(key, jwt.encode({**good, "aud": "other"}, SECRET, algorithm="HS256"))
    with pytest.raises(TokenError, match="'iss'"):
        verify_token(key, issue_token(SECRET, ALICE))


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
