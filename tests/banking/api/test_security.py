"""Security headers, the request body limit, CORS and 422s that repeat nothing, on the real app."""

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from banking.api.security import SECURITY_HEADERS
from server import create_app
from tests.conftest import settings_for

DOCUMENTED_HEADERS = {  # seeds/001, "Security Headers (Production)"
    "Content-Security-Policy": "default-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Strict-Transport-Security": "max-age=31536000",
    "X-XSS-Protection": "1; mode=block",
}


def has_security_headers(response: httpx.Response) -> bool:
    return all(response.headers.get(name) == value for name, value in DOCUMENTED_HEADERS.items())


def test_the_documented_headers_are_among_those_sent() -> None:
    assert DOCUMENTED_HEADERS.items() <= SECURITY_HEADERS.items()


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("get", "/health", None, 200),
        ("get", "/api/v1/health", None, 200),
        ("get", "/test-nlu-get?message=hi", None, 200),
        ("post", "/api/auth/login", None, 422),
        ("get", "/api/auth/me", None, 401),
        ("post", "/api/auth/refresh", {"refresh_token": "x"}, 401),
        ("get", "/no/such/page", None, 404),
        ("post", "/test-nlu", {"message": ""}, 422),
        ("post", "/test-nlu", {"message": "x" * 70_000}, 413),
        ("get", "/openapi.json", None, 200),
    ],
)
def test_every_reply_carries_the_security_headers(
    client: TestClient, method: str, path: str, body: dict | None, status: int
) -> None:
    response = client.request(method, path, json=body)
    assert response.status_code == status
    assert has_security_headers(response)
    assert response.headers["Cache-Control"] == "no-store"


def test_a_server_error_carries_them_too(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with TestClient(create_app(settings_for(sqlite_url)), raise_server_exceptions=False) as client:

        def broken(_message: str) -> None:
            raise RuntimeError("boom")

        monkeypatch.setattr(client.app.state.services.dialogue.pipeline, "parse", broken)
        response = client.post("/test-nlu", json={"message": "hi"})
    assert response.status_code == 500
    assert response.json()["error_code"] == "INTERNAL_ERROR"
    assert has_security_headers(response)


def test_the_api_pages_allow_only_their_own_origin(client: TestClient) -> None:
    """No CDN and no inline script (tests/banking/api/test_docs.py renders them offline);
    images may be data: URLs and ReDoc may write its own styles, which fetch nothing."""
    for path in ("/docs", "/redoc"):
        response = client.get(path)
        assert response.status_code == 200
        policy = response.headers["Content-Security-Policy"]
        assert policy.startswith("default-src 'self';"), policy
        assert "http" not in policy and "script-src" not in policy, policy
        assert "/docs/static/" in response.text and "cdn" not in response.text
        assert response.headers["X-Frame-Options"] == "DENY"
    docs = client.get("/docs").headers["Content-Security-Policy"]
    assert docs == "default-src 'self'; img-src 'self' data:"


def test_a_body_over_the_limit_is_refused_before_it_is_read(client: TestClient) -> None:
    limit = client.app.state.services.settings.security.max_body_bytes
    message = "x" * (limit + 1)
    response = client.post("/test-nlu", content=f'{{"message": "{message}"}}'.encode())
    assert response.status_code == 413
    assert response.json() == {
        "status": "error",
        "error_code": "PAYLOAD_TOO_LARGE",
        "message": f"Request bodies are limited to {limit} bytes.",
    }


def test_a_chunked_body_over_the_limit_is_refused_too(client: TestClient) -> None:
    limit = client.app.state.services.settings.security.max_body_bytes

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        yield b'{"message": "'
        for _ in range(limit // 1000 + 1):
            yield b"x" * 1000
        yield b'"}'

    response = client.post("/test-nlu", content=chunks())
    assert response.status_code == 413


def test_a_body_within_the_limit_reaches_the_route(sqlite_url: str) -> None:
    settings = settings_for(sqlite_url, BANKBOT_SECURITY__MAX_BODY_BYTES="60")
    with TestClient(create_app(settings)) as client:
        fits = client.post("/test-nlu", json={"message": "check my balance"})
        assert fits.status_code == 200
        assert fits.json()["result"]["intent"] == "check_balance"
        over = client.post("/test-nlu", json={"message": "check my balance " * 4})
        assert over.status_code == 413


def test_validation_errors_do_not_repeat_what_was_sent(client: TestClient) -> None:
    secret = "my-secret-pin-0042"
    response = client.post("/test-nlu", json={"message": {"nested": secret}})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "message"]
    assert secret not in response.text


def test_no_cross_origin_access_unless_configured(client: TestClient, sqlite_url: str) -> None:
    preflight = {
        "Origin": "https://bank.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    assert (
        "access-control-allow-origin" not in client.options("/assistant", headers=preflight).headers
    )
    settings = settings_for(sqlite_url, BANKBOT_SECURITY__CORS_ORIGINS='["https://bank.example"]')
    with TestClient(create_app(settings)) as allowed:
        response = allowed.options("/assistant", headers=preflight)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://bank.example"
        assert "authorization" in response.headers["access-control-allow-headers"].lower()
        other = allowed.options("/assistant", headers={**preflight, "Origin": "https://evil.test"})
        assert other.status_code == 400
        assert "access-control-allow-origin" not in other.headers
        simple = allowed.get("/health", headers={"Origin": "https://bank.example"})
        assert simple.headers["access-control-allow-origin"] == "https://bank.example"
