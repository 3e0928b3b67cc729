"""Accounts and tokens (seeds/000's /api/auth/...) on the real app, and the signing secret."""

import base64
import json
import os
import stat
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient

from banking.auth import AuthSettings, SecretError, signing_secret
from banking.passwords import BCRYPT_ROUNDS, _unmatchable_hash, hash_password
from server import create_app, load_settings, main
from tests.conftest import RULES_ONLY, VOICE_OFF, bearer, free_port, settings_for
from tests.test_server import ROOT, log_in, running_server, wait_for

DEMO_PASSWORD = "password123"
DEMO_EMAILS = {
    1: "john@example.com",
    2: "jane@example.com",
    3: "ravi@example.com",
    4: "mary@example.com",
    5: "mike@example.com",
}
NEW = {"email": "Alex@BankBot.dev", "password": "BankBot2026!", "name": "Alex Doe"}


def login(client: TestClient, email: str, password: str) -> httpx.Response:
    return client.post("/api/auth/login", data={"username": email, "password": password})


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def me(client: TestClient, token: str) -> httpx.Response:
    return client.get("/api/auth/me", headers=auth(token))


def refused(response: httpx.Response, message: str | None = None) -> bool:
    """A 401 in seeds/002's error shape, naming the bearer scheme."""
    body = response.json()
    return (
        response.status_code == 401
        and body["status"] == "error"
        and body["error_code"] == "UNAUTHORIZED"
        and response.headers["WWW-Authenticate"] == "Bearer"
        and (message is None or body["message"] == message)
    )


def test_register_returns_working_tokens_for_a_new_customer(client: TestClient) -> None:
    response = client.post("/api/auth/register", json=NEW)
    assert response.status_code == 201
    body = response.json()
    assert body["token_type"] == "bearer"
    assert (body["name"], body["email"]) == ("Alex Doe", "alex@bankbot.dev")
    assert body["user_id"] > 5  # after the demo users
    assert NEW["password"] not in response.text
    assert me(client, body["access_token"]).json() == {
        "user_id": body["user_id"],
        "email": "alex@bankbot.dev",
        "name": "Alex Doe",
        "role": "customer",
    }
    assert client.app.state.services.dialogue.assistant.ledger.balance(body["user_id"]) == 0
    again = login(client, "  ALEX@bankbot.dev ", NEW["password"])
    assert again.status_code == 200
    assert again.json()["user_id"] == body["user_id"]


def test_an_email_registers_once_whatever_its_case(client: TestClient) -> None:
    assert client.post("/api/auth/register", json=NEW).status_code == 201
    twice = client.post("/api/auth/register", json={**NEW, "email": "alex@bankbot.DEV"})
    assert twice.status_code == 409
    assert twice.json() == {
        "status": "error",
        "error_code": "EMAIL_ALREADY_REGISTERED",
        "message": "Email already registered.",
    }
    taken = client.post("/api/auth/register", json={**NEW, "email": DEMO_EMAILS[1]})
    assert taken.status_code == 409


def test_registrations_at_once_make_one_account(client: TestClient) -> None:
    with ThreadPoolExecutor(4) as pool:
        codes = sorted(
            pool.map(lambda _: client.post("/api/auth/register", json=NEW).status_code, range(4))
        )
    assert codes == [201, 409, 409, 409]


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"password": "Ab1!"}, "password", "at least 8 characters"),
        ({"password": "abcdefghij"}, "password", "one letter and one digit or symbol"),
        ({"password": "1234567890"}, "password", "one letter and one digit or symbol"),
        ({"password": " BankBot2026!"}, "password", "start or end with a space"),
        ({"password": "é" * 37}, "password", "at most 72 bytes"),
        ({"password": "my-alex-2026"}, "password", "cannot contain your email"),
        ({"password": None}, "password", None),
        ({"email": "not-an-email"}, "email", None),
        ({"email": "a@b"}, "email", None),
        ({"email": "x" * 250 + "@b.io"}, "email", None),
        ({"name": "   "}, "name", None),
        ({"name": "n" * 101}, "name", None),
    ],
)
def test_bad_registrations_are_422_naming_the_field_and_never_echo_the_password(
    client: TestClient, change: dict, field: str, problem: str | None
) -> None:
    body = {key: value for key, value in {**NEW, **change}.items() if value is not None}
    response = client.post("/api/auth/register", json=body)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"][-1] == field
    if problem:
        assert problem in error["msg"]
    if change.get("password"):
        assert change["password"] not in response.text
    assert login(client, NEW["email"], NEW["password"]).status_code == 401


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"email": "a\\u0000b@x.io", "password": "BankBot2026!", "name": "A"}', "email"),
        ('{"email": "ab@x.io", "password": "BankBot2026!", "name": "A\\u0000"}', "name"),
        ('{"email": "ab@x.io", "password": "Bank\\ud800Bot2026!", "name": "A"}', "password"),
        ('{"email": "a\\ud800b@x.io", "password": "BankBot2026!", "name": "A"}', "email"),
    ],
)
def test_text_no_database_can_store_is_422_not_500(postgres_url: str, raw: str, field: str) -> None:
    with TestClient(create_app(settings_for(postgres_url))) as client:
        headers = {"Content-Type": "application/json"}
        response = client.post("/api/auth/register", content=raw.encode(), headers=headers)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"][-1] == field
        form = b"username=john%00@example.com&password=password123"
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        assert refused(client.post("/api/auth/login", content=form, headers=headers))


@pytest.mark.parametrize("user_id", sorted(DEMO_EMAILS))
def test_every_demo_user_logs_in_with_the_documented_password(
    client: TestClient, user_id: int
) -> None:
    response = login(client, DEMO_EMAILS[user_id], DEMO_PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert body["user_id"] == user_id
    assert me(client, body["access_token"]).json()["email"] == DEMO_EMAILS[user_id]


def test_a_wrong_password_and_an_unknown_email_get_the_same_refusal(client: TestClient) -> None:
    wrong = login(client, DEMO_EMAILS[1], "password124")
    unknown = login(client, "nobody@example.com", DEMO_PASSWORD)
    assert refused(wrong, "Incorrect email or password.")
    assert (unknown.status_code, unknown.json(), unknown.headers["WWW-Authenticate"]) == (
        wrong.status_code,
        wrong.json(),
        wrong.headers["WWW-Authenticate"],
    )
    assert "password124" not in wrong.text


@pytest.mark.parametrize(
    "form",
    [{}, {"username": DEMO_EMAILS[1]}, {"password": DEMO_PASSWORD}],
)
def test_login_needs_both_form_fields(client: TestClient, form: dict) -> None:
    response = client.post("/api/auth/login", data=form)
    assert response.status_code == 422
    assert DEMO_PASSWORD not in response.text


def test_login_is_form_encoded_not_json(client: TestClient) -> None:
    response = client.post(
        "/api/auth/login", json={"username": DEMO_EMAILS[1], "password": DEMO_PASSWORD}
    )
    assert response.status_code == 422


def test_an_over_long_password_is_refused_like_any_wrong_one(client: TestClient) -> None:
    assert refused(login(client, DEMO_EMAILS[1], DEMO_PASSWORD + "x" * 100))


def test_refresh_gives_a_new_access_token_and_only_for_a_refresh_token(
    client: TestClient,
) -> None:
    tokens = login(client, DEMO_EMAILS[2], DEMO_PASSWORD).json()
    response = client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 200
    assert set(response.json()) == {"access_token", "token_type"}
    assert me(client, response.json()["access_token"]).json()["user_id"] == 2

    with_access = client.post("/api/auth/refresh", json={"refresh_token": tokens["access_token"]})
    assert refused(with_access, "This is not a refresh token.")
    assert refused(me(client, tokens["refresh_token"]), "This is not an access token.")
    assert refused(client.post("/api/auth/refresh", json={"refresh_token": "garbage"}))
    assert client.post("/api/auth/refresh", json={}).status_code == 422


def test_logout_ends_the_login_and_only_that_login(client: TestClient) -> None:
    first = login(client, DEMO_EMAILS[1], DEMO_PASSWORD).json()
    second = login(client, DEMO_EMAILS[1], DEMO_PASSWORD).json()
    refreshed = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    newer_access = refreshed.json()["access_token"]

    response = client.post("/api/auth/logout", headers=auth(first["access_token"]))
    assert response.status_code == 200
    assert response.json() == {"message": "Logged out successfully"}

    assert refused(me(client, first["access_token"]), "The token was logged out.")
    assert refused(me(client, newer_access), "The token was logged out.")
    again = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert refused(again, "The token was logged out.")
    assert refused(client.post("/api/auth/logout", headers=auth(first["access_token"])))
    assert me(client, second["access_token"]).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic am9objpwYXNzd29yZDEyMw=="},
        {"Authorization": "Token abc"},
        {"Authorization": "Bearer not.a.jwt"},
    ],
)
def test_me_and_logout_need_a_valid_bearer_token(client: TestClient, headers: dict) -> None:
    assert refused(client.get("/api/auth/me", headers=headers))
    assert refused(client.post("/api/auth/logout", headers=headers))


def _with_claims(token: str, **changes: object) -> str:
    """The token with its payload changed and its signature kept: a forgery."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**claims, **changes}).encode()).rstrip(b"=")
    return f"{header}.{forged.decode()}.{signature}"


def test_tampered_and_foreign_tokens_are_refused(client: TestClient) -> None:
    token = bearer(client, 1)["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert me(client, token).status_code == 200
    forgeries = [
        _with_claims(token, sub="2"),
        _with_claims(token, exp=claims["exp"] + 86_400),
        _with_claims(token, type="refresh"),
        jwt.encode({**claims, "sub": "2"}, "another-secret-of-at-least-32-chars!!", "HS256"),
        jwt.encode({**claims, "sub": "2"}, None, "none"),  # unsigned
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        token + ".x",
    ]
    for forged in forgeries:
        assert refused(me(client, forged)), forged


def test_a_token_for_a_user_who_does_not_exist_is_refused(client: TestClient) -> None:
    token = bearer(client, 999)["Authorization"].removeprefix("Bearer ")
    assert refused(me(client, token), "The token's user does not exist.")


def test_tokens_expire(sqlite_url: str) -> None:
    # Claims are whole seconds: a token lives between ttl - 1 and ttl seconds. With 3, it
    # still works right after a slow login on a busy machine.
    settings = settings_for(sqlite_url, BANKBOT_AUTH__ACCESS_TOKEN_TTL_S="3")
    with TestClient(create_app(settings)) as client:
        tokens = login(client, DEMO_EMAILS[1], DEMO_PASSWORD).json()
        assert me(client, tokens["access_token"]).status_code == 200
        time.sleep(3.1)
        assert refused(me(client, tokens["access_token"]), "The token has expired.")
        renewed = client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert me(client, renewed.json()["access_token"]).status_code == 200


def test_demo_mode_is_off_unless_switched_on() -> None:
    assert load_settings(environ={}).demo_mode is False
    assert load_settings(environ={"BANKBOT_DEMO_MODE": "1"}).demo_mode is True


def test_login_takes_as_long_for_an_unknown_email_as_for_a_wrong_password(
    client: TestClient,
) -> None:
    """No user enumeration by timing: both paths cost one bcrypt check.

    Interleaved pairs, so that load from other processes hits both alike; medians, and a
    generous bound: a missing check would make the unknown email ~100 times faster.
    """
    known, unknown = [], []
    for attempt in range(10):
        # A different known email each time: five wrong passwords would lock one (423).
        email_known = DEMO_EMAILS[attempt % len(DEMO_EMAILS) + 1]
        for email, times in ((email_known, known), (f"nobody{attempt}@example.com", unknown)):
            started = time.perf_counter()
            assert login(client, email, "wrong-password-1").status_code == 401
            times.append(time.perf_counter() - started)
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.6 < ratio < 1.6, (known, unknown)


def test_the_unknown_user_check_costs_what_a_real_hash_costs() -> None:
    assert _unmatchable_hash().split("$")[2] == f"{BCRYPT_ROUNDS:02d}"
    assert hash_password("x1234567").split("$")[2] == f"{BCRYPT_ROUNDS:02d}"


def test_a_logout_on_one_server_holds_on_another(postgres_url: str) -> None:
    env = {**RULES_ONLY, **VOICE_OFF, "DATABASE_URL": postgres_url}
    ports = [free_port(), free_port()]
    with (
        running_server(["--port", str(ports[0])], env) as first,
        running_server(["--port", str(ports[1])], env) as second,
    ):
        server_a, server_b = (f"http://127.0.0.1:{port}" for port in ports)
        wait_for(f"{server_a}/health", first)
        wait_for(f"{server_b}/health", second)
        tokens = log_in(server_a)
        assert httpx.get(f"{server_b}/api/auth/me", headers=auth(tokens["access_token"])).is_success
        logout = httpx.post(f"{server_b}/api/auth/logout", headers=auth(tokens["access_token"]))
        assert logout.status_code == 200
        for server in (server_a, server_b):
            assert refused(httpx.get(f"{server}/api/auth/me", headers=auth(tokens["access_token"])))
            body = {"refresh_token": tokens["refresh_token"]}
            assert refused(httpx.post(f"{server}/api/auth/refresh", json=body))
    log = first.stdout.read() + second.stdout.read()
    assert DEMO_PASSWORD not in log
    assert tokens["access_token"] not in log


def test_grant_role_makes_a_registered_user_an_admin(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with TestClient(create_app(settings_for(postgres_url))) as client:
        token = bearer(client, 2)["Authorization"].removeprefix("Bearer ")
        command = [sys.executable, "server.py", "--grant-role", "JANE@example.com", "admin"]
        env = {**os.environ, "DATABASE_URL": postgres_url}
        granted = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        assert (granted.returncode, granted.stdout) == (0, "jane@example.com is now admin\n")
        assert me(client, token).json()["role"] == "admin"

        monkeypatch.setenv("DATABASE_URL", postgres_url)
        main(["--grant-role", "jane@example.com", "customer"])
        assert me(client, token).json()["role"] == "customer"
        for email, role, error in [
            ("nobody@example.com", "agent", "no user registered with the email nobody@"),
            ("jane@example.com", "king", "the role must be one of customer, agent, admin"),
        ]:
            with pytest.raises(SystemExit, match=f"bankbot: {error}"):
                main(["--grant-role", email, role])
        assert me(client, token).json()["role"] == "customer"


def _secret_settings(tmp_path: Path, secret: str = "") -> AuthSettings:
    return AuthSettings(
        jwt_secret=secret,
        jwt_secret_file=str(tmp_path / "jwt-secret"),
        access_token_ttl_s=60,
        refresh_token_ttl_s=600,
    )


def test_the_installation_secret_is_made_once_readable_by_its_owner_only(
    tmp_path: Path,
) -> None:
    settings = _secret_settings(tmp_path)
    with ThreadPoolExecutor(8) as pool:  # servers starting at once agree on one secret
        secrets = set(pool.map(lambda _: signing_secret(settings), range(8)))
    assert len(secrets) == 1
    [secret] = secrets
    assert len(secret) >= 32
    path = tmp_path / "jwt-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signing_secret(settings) == secret
    assert [p.name for p in tmp_path.iterdir()] == ["jwt-secret"]  # no drafts left behind


def test_a_configured_secret_wins_and_must_be_long(tmp_path: Path) -> None:
    assert signing_secret(_secret_settings(tmp_path, "s" * 32)) == "s" * 32
    assert not (tmp_path / "jwt-secret").exists()
    with pytest.raises(SecretError, match="at least 32 characters"):
        signing_secret(_secret_settings(tmp_path, "short"))


def test_a_secret_file_others_can_read_or_too_short_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jwt-secret"
    path.write_text("x" * 40)
    path.chmod(0o644)
    with pytest.raises(SecretError, match="readable by others"):
        signing_secret(_secret_settings(tmp_path))
    path.chmod(0o600)
    path.write_text("short")
    with pytest.raises(SecretError, match="at least 32 characters"):
        signing_secret(_secret_settings(tmp_path))


def test_a_bad_secret_stops_the_server_with_a_clear_message() -> None:
    result = subprocess.run(
        [sys.executable, "server.py"],
        cwd=ROOT,
        env={**os.environ, **RULES_ONLY, "BANKBOT_AUTH__JWT_SECRET": "too-short"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "bankbot: auth.jwt_secret must be at least 32 characters" in result.stderr
    assert "Traceback" not in result.stderr
