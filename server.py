"""Composition root: settings (config.yaml and the environment, banking/config.py) → one
typed `Services` → the app with its whole URL map → serve. Admin flags go to banking.admin."""

import argparse
import sys
import threading
import tomllib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from os import environ as ENV
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

import banking.admin
import banking.api.admin
import voice.audiosocket_server
import voice.routes
import voice.twilio_routes
from banking.api import accounts, auth, fraud, notifications, transactions, transfers, webhooks
from banking.api.observatory import Observatory
from banking.api.security import ServingSettings, check_port_free, harden, serve
from banking.auth import SecretError
from banking.bank import Bank, BankSettings, open_bank, prepare_database
from banking.config import ConfigError, config_path, load
from dialogue.api import assistant, chat, nlu, support
from dialogue.api.services import DialogueServices, DialogueSettings, open_assistant, open_dialogue
from dialogue.monitoring.middleware import RequestMetrics
from nlu.model_files import ModelFileError, require, require_directory
from nlu.rasa import rasa_for_workers
from nlu.rasa_train import RasaSetupError
from voice import VoiceServices, VoiceSettings, load_voice
from voice.audiosocket_server import AudioSocketServer, AudioSocketSettings, CallRegistry
from voice.phone import PhoneSettings
from voice.twilio import TwilioSettings

ROOT = Path(__file__).resolve().parent
DEFAULT_CONFIG, DEMO_DATA = ROOT / "config.yaml", ROOT / "data" / "demo_users.yaml"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
API_PREFIX, VAD_MODEL, TITLE = "/api/v1", "silero-vad-v6", "Voice Banking Assistant"


class Settings(BankSettings, DialogueSettings, ServingSettings):
    """config.yaml: the bank's sections, the assistant's, how it is served, and the voice's."""

    voice: VoiceSettings
    phone: PhoneSettings
    twilio: TwilioSettings
    audiosocket: AudioSocketSettings


@dataclass(frozen=True)
class Services:
    """`app.state.services`, the one thing on app.state; the routes' dependencies read it."""

    settings: Settings
    bank: Bank
    dialogue: DialogueServices
    voice: VoiceServices | None
    audiosocket: AudioSocketServer | None
    observatory: Observatory  # what banking/api/admin.py reports: the assistant's implementation


def load_settings(config_file: Path | None = None, environ: Mapping[str, str] = ENV) -> Settings:
    settings = load(Settings, config_path(config_file, DEFAULT_CONFIG, environ), environ)
    settings.anchor_paths(ROOT)
    return settings


def build_services(settings: Settings) -> Services:
    """The object graph. A bad signing secret stops the start first, before Rasa."""
    bank = open_bank(settings, settings.assistant, DEMO_DATA)
    assistant = open_assistant(settings, bank)
    speech = None
    if settings.voice.enabled:  # loaded now, warmed up in the background (/health says when)
        spoken, tts_voice = settings.voice, require(settings.voice.tts_voice)
        require(f"{spoken.tts_voice}.json")
        stt, vad = require_directory(spoken.stt_model), require(VAD_MODEL)
        models = {"stt_model": stt, "tts_voice": tts_voice, "vad_model": vad}
        speech = load_voice(assistant, spoken, turn_model=require(spoken.turn.model), **models)
        threading.Thread(target=speech.warm_up, name="voice-warm-up", daemon=True).start()
    audiosocket = None
    if settings.audiosocket.enabled:  # the Asterisk AudioSocket server, from the start on
        if speech is None:
            raise ConfigError("audiosocket.enabled needs the voice channel (voice.enabled)")
        calls = settings.audiosocket
        registry = CallRegistry(bank.store, calls.registration_ttl_s)
        audiosocket = AudioSocketServer(calls, registry, speech, settings.phone, bank.limits)
    ws_bytes = settings.security.max_ws_message_bytes
    dialogue = open_dialogue(settings, assistant, speech, bank, ws_bytes)
    return Services(settings, bank, dialogue, speech, audiosocket, dialogue.observatory)


def create_app(settings: Settings) -> FastAPI:
    services = build_services(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if services.audiosocket is not None:
            await services.audiosocket.start()
        async with services.bank.running():
            yield
            if services.audiosocket is not None:
                await services.audiosocket.stop()
            services.dialogue.pipeline.close()

    # /docs and /redoc: served offline by harden() (banking/api/docs.py), not from a CDN.
    app = FastAPI(title=TITLE, version=VERSION, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.services = services
    # The URL map: each router's module names its paths; these four also under /api/v1.
    for router in (assistant.router, support.router, nlu.router, banking.api.admin.health_router):
        app.include_router(router)
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(chat.router)  # /api/ai/chat and its WebSocket
    app.include_router(notifications.router)  # /api/notifications
    app.include_router(transfers.router)  # POST /api/v1/accounts/{id}/transactions
    app.include_router(fraud.router)  # /api/ai/fraud/analysis, /api/v1/fraud/report
    app.include_router(voice.routes.router)  # /ws/voice and the widget
    app.include_router(voice.twilio_routes.router)  # /telephony/twilio/...
    app.include_router(voice.audiosocket_server.router)  # /telephony/audiosocket/...
    app.include_router(banking.api.admin.models)  # /admin/models (admin only)
    app.include_router(auth.router)  # /api/auth/...
    app.include_router(webhooks.router)  # /api/v1/webhooks
    app.include_router(banking.api.admin.router)  # /health/detailed, /api/status, (/api)/metrics
    app.include_router(transactions.router)  # /api/transactions/ and .../spending
    app.include_router(accounts.router)  # GET /api/v1/accounts/{id}
    app.mount("/voice-static", StaticFiles(directory=voice.routes.STATIC), name="voice-static")
    harden(app, settings.security)
    app.add_middleware(RequestMetrics, metrics=services.dialogue.metrics)  # outermost
    return app


def worker_app() -> FastAPI:
    """The app of each of `--workers N`, from the environment their parent set."""
    return create_app(load_settings())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the voice banking assistant.")
    parser.add_argument("--config", type=Path, help="settings file (default: config.yaml)")
    parser.add_argument("--host", help="address to listen on (default from settings)")
    parser.add_argument("--port", type=int, help="port to listen on (default from settings)")
    parser.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    banking.admin.add_server_flags(parser)
    args = parser.parse_args(argv)
    if banking.admin.forward_server_flags(args):
        return
    try:
        settings = load_settings(args.config)
        check_port_free(args.host or settings.server.host, args.port or settings.server.port)
        if args.workers > 1:  # one socket; the Rasa child, if any, runs once, in this parent
            ENV["BANKBOT_CONFIG"] = str(config_path(args.config, DEFAULT_CONFIG, ENV).resolve())
            prepare_database(settings, DEMO_DATA)
            with rasa_for_workers(settings.nlu.backends, settings.rasa, ENV):
                serve("server:worker_app", settings, args.host, args.port, args.workers)
            return
        app = create_app(settings)
    except (ConfigError, ModelFileError, RasaSetupError, SecretError) as error:
        sys.exit(f"bankbot: {error}")
    serve(app, settings, args.host, args.port)


if __name__ == "__main__":
    main()
