"""Composition root: settings, `create_app()`, and `python server.py` to serve.

Settings come from config.yaml (or `--config FILE` / BANKBOT_CONFIG), then single keys
from BANKBOT_<KEY> environment variables (BANKBOT_SECTION__KEY for nested keys), then
DATABASE_URL and REDIS_URL.
"""

import argparse
import getpass
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import uvicorn
import yaml
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

import banking.auth_routes
import banking.webhooks.routes
import dialogue.account_routes
import dialogue.chat_routes
import dialogue.fraud_routes
import dialogue.monitoring.routes
import dialogue.notification_routes
import dialogue.routes
import dialogue.support_routes
import dialogue.transfer_routes
import nlu.routes
import voice.audiosocket_server
import voice.routes
import voice.twilio_routes
from banking import Directory, Ledger, make_engine, seed_demo_data
from banking.audit import AuditLog
from banking.auth import AuthSettings, SecretError, Tokens, signing_secret
from banking.events import Events
from banking.fraud import FraudMonitor, FraudSettings
from banking.hardening import SECURITY_HEADERS, SecuritySettings, harden, redact_tokens_in
from banking.logs import logging_config
from banking.notifications import Notifications
from banking.phones import InvalidPhoneNumber, InvalidPin, Phones, normal_number
from banking.statements import Statements
from banking.users import ROLES, UnknownUser, Users, normal_email
from banking.webhooks import Dispatcher, Subscriptions, WebhookSettings, queue_deliveries
from dialogue import Assistant, AssistantSettings, SessionSettings, make_session_store
from dialogue.idempotency import IdempotencySettings, IdempotencyStore
from dialogue.limits import Limits, LimitSettings
from dialogue.lockout import LockoutSettings, PasswordGuard
from dialogue.monitoring.health import InferenceProbes
from dialogue.monitoring.metrics import Metrics
from dialogue.monitoring.middleware import RequestMetrics
from dialogue.monitoring.routes import ObservabilitySettings
from dialogue.sessions import SessionStore
from dialogue.support import SupportDesk
from dialogue.throttle import RateLimitExceeded, RateLimitHeaders, too_many_requests
from dialogue.transfers import Teller
from nlu import BackendSettings, NLUSettings, build_pipeline
from nlu.llm import LLMSettings
from nlu.model_files import ModelFileError, require, require_directory
from nlu.rasa import RasaSettings
from nlu.rasa_train import RasaSetupError
from voice import VoiceServices, VoiceSettings, load_voice
from voice.audiosocket_server import AudioSocketServer, AudioSocketSettings, CallRegistry
from voice.phone import PhoneSettings
from voice.twilio import TwilioSettings

ROOT = Path(__file__).resolve().parent
DEFAULT_CONFIG = ROOT / "config.yaml"
DEMO_DATA = ROOT / "data" / "demo_users.yaml"
ENV_PREFIX = "BANKBOT_"
log = logging.getLogger("bankbot")
API_PREFIX = "/api/v1"
VAD_MODEL = "silero-vad-v6"


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str
    port: int


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service_name: str
    database_url: str
    demo_data: bool
    demo_mode: bool
    log_level: str
    server: ServerSettings
    nlu: NLUSettings
    rasa: RasaSettings
    llm: LLMSettings
    assistant: AssistantSettings
    sessions: SessionSettings
    lockout: LockoutSettings
    voice: VoiceSettings
    phone: PhoneSettings
    twilio: TwilioSettings
    audiosocket: AudioSocketSettings
    auth: AuthSettings
    security: SecuritySettings
    limits: LimitSettings
    idempotency: IdempotencySettings
    webhooks: WebhookSettings
    observability: ObservabilitySettings
    fraud: FraudSettings


class ConfigError(Exception):
    """The configuration cannot be used; the message says which file and key."""


def load_settings(
    config_file: Path | None = None, environ: Mapping[str, str] = os.environ
) -> Settings:
    path = config_file or Path(environ.get(f"{ENV_PREFIX}CONFIG") or DEFAULT_CONFIG)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read config file {path}: {error}") from error
    for name, raw in environ.items():
        if name.startswith(ENV_PREFIX) and name != f"{ENV_PREFIX}CONFIG":
            keys = name.removeprefix(ENV_PREFIX).lower().split("__")
            _set_nested(values, keys, _environment_value(raw))
    if environ.get("DATABASE_URL"):
        values["database_url"] = environ["DATABASE_URL"]
    if environ.get("REDIS_URL"):
        values.setdefault("sessions", {})["redis_url"] = environ["REDIS_URL"]
    try:
        settings = Settings.model_validate(values)
    except ValidationError as error:
        raise ConfigError(f"invalid settings from {path} and environment:\n{error}") from error
    settings.database_url = _anchor_sqlite_path(settings.database_url)
    settings.auth.jwt_secret_file = str(ROOT / settings.auth.jwt_secret_file)
    return settings


def _environment_value(raw: str) -> Any:
    """A YAML scalar or list ("8000", "true", "[rules]"); anything else stays text.

    So "prefix:" or "a: b" is the text itself, not a mapping.
    """
    try:
        value = yaml.safe_load(raw) if raw else raw
    except yaml.YAMLError:
        return raw
    return raw if isinstance(value, dict) else value


def _set_nested(values: dict[str, Any], keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        values = values.setdefault(key, {})
        if not isinstance(values, dict):
            raise ConfigError(f"{ENV_PREFIX}{'__'.join(keys).upper()}: {key} is not a section")
    values[keys[-1]] = value


def _anchor_sqlite_path(database_url: str) -> str:
    """A relative SQLite path means relative to the project, not to the current directory."""
    url = make_url(database_url)
    path = url.database or ""
    if url.get_backend_name() != "sqlite" or path in ("", ":memory:") or Path(path).is_absolute():
        return database_url
    return url.set(database=str(ROOT / path)).render_as_string(False)


def create_app(settings: Settings) -> FastAPI:
    secret = signing_secret(settings.auth)  # a bad secret stops the start, before Rasa
    engine = make_engine(settings.database_url)
    if settings.demo_data:
        seed_demo_data(engine, DEMO_DATA)
    # One event stream: the ledger and the teller write to it; notifications and the
    # webhook outbox listen, inside the event's transaction.
    events = Events(engine)
    notifications = Notifications(engine)
    events.subscribe(notifications.on_event)
    events.subscribe(queue_deliveries)
    dispatcher = Dispatcher(engine, settings.webhooks)
    ledger, directory = Ledger(engine, events), Directory(engine)
    pipeline = build_pipeline(settings.nlu, BackendSettings(rasa=settings.rasa, llm=settings.llm))
    sessions = make_session_store(settings.sessions)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        audiosocket: AudioSocketServer | None = _app.state.audiosocket
        if audiosocket is not None:
            await audiosocket.start()
        async with dispatcher.running():
            yield
        if audiosocket is not None:
            await audiosocket.stop()
        pipeline.close()
        sessions.close()
        engine.dispose()

    logging.getLogger("httpx").setLevel(logging.WARNING)  # its URLs carry Rasa's token
    app = FastAPI(title="Voice Banking Assistant", version="1.0.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.nlu = pipeline
    app.state.engine, app.state.sessions = engine, sessions
    guard = PasswordGuard(sessions, directory, settings.lockout)
    app.state.limits = Limits(sessions, settings.limits)
    app.state.idempotency = IdempotencyStore(engine, settings.idempotency.lease_s)
    app.state.audit = AuditLog(engine)
    zone = ZoneInfo(settings.assistant.timezone)
    app.state.fraud = FraudMonitor(engine, ledger.events, settings.fraud, zone)
    teller = Teller(ledger, guard, app.state.limits, app.state.audit, app.state.fraud)
    app.state.statements = Statements(engine)
    app.state.assistant = Assistant(
        pipeline, ledger, directory, settings.assistant, sessions, teller, app.state.statements
    )
    app.state.support = SupportDesk(engine)
    app.state.notifications = notifications
    app.state.voice = _voice(app.state.assistant, settings.voice)
    app.state.metrics = _observed(app, ledger)
    app.state.probes = InferenceProbes(settings.observability.inference_probe_interval_s)
    app.state.audiosocket = _audiosocket(settings, app.state.voice, sessions, app.state.limits)
    app.state.demo_mode = settings.demo_mode
    app.state.users = Users(engine)
    app.state.tokens = Tokens(engine, secret, settings.auth)
    app.state.events = events
    app.state.webhooks = Subscriptions(engine, settings.webhooks.max_subscriptions_per_user)

    health = APIRouter(tags=["health"])

    @health.get("/health")
    def health_check() -> dict[str, object]:
        """ "degraded" names each part (NLU stage, session store) that is not answering."""
        parts = {**pipeline.status(), "sessions": sessions.status()}
        if app.state.voice is not None:
            parts["voice"] = app.state.voice.status()
        degraded = {name: state for name, state in parts.items() if state != "ready"}
        body: dict[str, object] = {
            "status": "degraded" if degraded else "healthy",
            "service": settings.service_name,
        }
        if degraded:
            body["degraded"] = degraded
        return body

    for router in (
        dialogue.routes.router,
        dialogue.support_routes.router,
        nlu.routes.router,
        health,
    ):
        app.include_router(router)
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(dialogue.chat_routes.router)  # seeds/000's paths start with /api/ai
    app.include_router(dialogue.notification_routes.router)  # /api/notifications (seeds/000)
    app.include_router(dialogue.transfer_routes.router)  # /api/v1/accounts/... (seeds/002)
    app.include_router(dialogue.fraud_routes.router)
    app.include_router(voice.routes.router)
    app.include_router(voice.twilio_routes.router)
    app.include_router(voice.audiosocket_server.router)
    app.mount("/voice-static", StaticFiles(directory=voice.routes.STATIC), name="voice-static")
    admin_only = Depends(banking.auth_routes.require_role("admin"))
    app.include_router(nlu.routes.admin, dependencies=[admin_only])
    app.include_router(banking.auth_routes.router)
    app.include_router(banking.webhooks.routes.router)
    app.include_router(dialogue.monitoring.routes.router)
    app.include_router(dialogue.account_routes.router)  # its paths are seeds/000's and 002's
    harden(app, settings.security)

    app.add_middleware(RateLimitHeaders)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)  # outermost: times it all
    app.add_exception_handler(RateLimitExceeded, too_many_requests)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        log.error(
            "request failed",
            exc_info=error,
            extra={"event": "error", "fields": {"path": request.url.path}},
        )
        body = {"status": "error", "error_code": "INTERNAL_ERROR", "message": "Server error"}
        return JSONResponse(body, status_code=500, headers=SECURITY_HEADERS)

    return app


def _observed(app: FastAPI, ledger: Ledger) -> Metrics:
    """This app's metrics (a registry of its own), told of turns, NLU stage calls, spoken
    turns and transfer outcomes."""
    metrics = Metrics(app.state.settings.observability.recent_errors)
    app.state.assistant.listeners.append(metrics.turn)
    app.state.nlu.listeners.append(metrics.nlu_stage)
    ledger.events.subscribe(metrics.transfer_event)
    if app.state.voice is not None:
        app.state.voice.listeners.append(metrics.voice_turn)
    return metrics


def _voice(assistant: Assistant, settings: VoiceSettings) -> VoiceServices | None:
    """The speech models, loaded now and warmed up in the background (/health says when)."""
    if not settings.enabled:
        return None
    tts_voice = require(settings.tts_voice)
    require(f"{settings.tts_voice}.json")
    services = load_voice(
        assistant,
        settings,
        stt_model=require_directory(settings.stt_model),
        tts_voice=tts_voice,
        vad_model=require(VAD_MODEL),
    )
    threading.Thread(target=services.warm_up, name="voice-warm-up", daemon=True).start()
    return services


def _audiosocket(
    settings: Settings, services: VoiceServices | None, sessions: SessionStore, limits: Limits
) -> AudioSocketServer | None:
    """The Asterisk AudioSocket server, when enabled; it listens from the app's start on."""
    if not settings.audiosocket.enabled:
        return None
    if services is None:
        raise ConfigError("audiosocket.enabled needs the voice channel (voice.enabled)")
    registry = CallRegistry(sessions, settings.audiosocket.registration_ttl_s)
    return AudioSocketServer(settings.audiosocket, registry, services, settings.phone, limits)


def grant_role(settings: Settings, email: str, role: str) -> None:
    """`--grant-role`: give a registered user a role; ConfigError says what is wrong."""
    if role not in ROLES:
        raise ConfigError(f"the role must be one of {', '.join(ROLES)}")
    engine = make_engine(settings.database_url)
    try:
        profile = Users(engine).grant(email, role)  # type: ignore[arg-type]
    except UnknownUser as error:
        raise ConfigError(f"no user registered with the email {email}") from error
    finally:
        engine.dispose()
    print(f"{profile.email} is now {profile.role}")


def add_phone(settings: Settings, email: str, number: str) -> None:
    """`--add-phone`: calls from the number are the user's; ConfigError says what is wrong."""
    engine = make_engine(settings.database_url)
    try:
        user_id = Users(engine).by_email(email).user_id
        Phones(engine).add_number(user_id, number)
    except UnknownUser as error:
        raise ConfigError(f"no user registered with the email {email}") from error
    except InvalidPhoneNumber as error:
        raise ConfigError(f"{error}; write it with + and the country code") from error
    except IntegrityError as error:
        raise ConfigError("that number is registered already") from error
    finally:
        engine.dispose()
    print(f"calls from {normal_number(number)} are now {normal_email(email)}'s")


def set_pin(settings: Settings, email: str) -> None:
    """`--set-pin`: the user's keypad PIN, typed twice at the terminal (or two lines on
    stdin), never given as an argument, which shell histories keep."""
    engine = make_engine(settings.database_url)
    try:
        user_id = Users(engine).by_email(email).user_id
        pin = _read_secret("New PIN (4 to 8 digits): ")
        if _read_secret("The PIN again: ") != pin:
            raise ConfigError("the two PINs differ; nothing was changed")
        Phones(engine).set_pin(user_id, pin)
    except UnknownUser as error:
        raise ConfigError(f"no user registered with the email {email}") from error
    except InvalidPin as error:
        raise ConfigError("a PIN is 4 to 8 digits; nothing was changed") from error
    finally:
        engine.dispose()
    print(f"{normal_email(email)} has a new PIN")


def _read_secret(prompt: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the voice banking assistant.")
    parser.add_argument("--config", type=Path, help="settings file (default: config.yaml)")
    parser.add_argument("--host", help="address to listen on (default from settings)")
    parser.add_argument("--port", type=int, help="port to listen on (default from settings)")
    parser.add_argument(
        "--grant-role",
        nargs=2,
        metavar=("EMAIL", "ROLE"),
        help=f"give a registered user a role ({', '.join(ROLES)}), then exit",
    )
    parser.add_argument(
        "--add-phone",
        nargs=2,
        metavar=("EMAIL", "NUMBER"),
        help="register a telephone number (+country code) on a user, then exit",
    )
    parser.add_argument(
        "--set-pin",
        metavar="EMAIL",
        help="set a user's telephone PIN (typed twice, not echoed), then exit",
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
        if args.grant_role:
            grant_role(settings, *args.grant_role)
            return
        if args.add_phone:
            add_phone(settings, *args.add_phone)
            return
        if args.set_pin:
            set_pin(settings, args.set_pin)
            return
        app = create_app(settings)
    except (ConfigError, ModelFileError, RasaSetupError, SecretError) as error:
        sys.exit(f"bankbot: {error}")
    redact_tokens_in("uvicorn.access", "uvicorn.error")  # a WebSocket's ?token=
    uvicorn.run(
        app,
        host=args.host or settings.server.host,
        port=args.port or settings.server.port,
        log_level=settings.log_level,
        ws_max_size=settings.security.max_ws_frame_bytes,
        log_config=logging_config(settings.log_level),
    )


if __name__ == "__main__":
    main()
