"""What the voice channels read of the app's services, typed, in one place.

server.py puts one `Services` on app.state; voice sits above the packages it could name
it from, so these accessors read the parts the channels need and say their types, as
banking/api/deps.py and dialogue/api/deps.py do for theirs.
"""

from typing import Annotated

from fastapi import Depends
from fastapi.requests import HTTPConnection

from banking.bank import Bank
from voice.phone import PhoneSettings
from voice.session import VoiceServices
from voice.twilio import TwilioSettings


def voice_services(connection: HTTPConnection) -> VoiceServices | None:
    """The loaded speech models, or None when the voice channel is off."""
    voice: VoiceServices | None = connection.app.state.services.voice
    return voice


VoiceDep = Annotated[VoiceServices | None, Depends(voice_services)]


def bank_of(connection: HTTPConnection) -> Bank:
    bank: Bank = connection.app.state.services.bank
    return bank


def twilio_settings(connection: HTTPConnection) -> TwilioSettings:
    settings: TwilioSettings = connection.app.state.services.settings.twilio
    return settings


def phone_settings(connection: HTTPConnection) -> PhoneSettings:
    settings: PhoneSettings = connection.app.state.services.settings.phone
    return settings


def text_message_limit(connection: HTTPConnection) -> int:
    """The most a typed (JSON) message on a voice socket may hold."""
    limit: int = connection.app.state.services.settings.security.max_ws_message_bytes
    return limit
