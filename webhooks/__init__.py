"""Webhooks: users subscribe a URL to their events; a persisted outbox delivers them signed.

Imports banking (events, tables) and dialogue.logs; nothing imports it but server.py.
"""

from webhooks.dispatcher import Dispatcher, signature
from webhooks.outbox import queue_deliveries
from webhooks.settings import WebhookSettings
from webhooks.subscriptions import WEBHOOK_EVENTS, Subscriptions

__all__ = [
    "WEBHOOK_EVENTS",
    "Dispatcher",
    "Subscriptions",
    "WebhookSettings",
    "queue_deliveries",
    "signature",
]
