"""Webhooks: users subscribe a URL to their events; a persisted outbox delivers them signed.

Imports banking (events, tables) and banking.logs; nothing imports it but server.py.
"""

from banking.webhooks.dispatcher import Dispatcher, signature
from banking.webhooks.outbox import queue_deliveries
from banking.webhooks.settings import WebhookSettings
from banking.webhooks.subscriptions import WEBHOOK_EVENTS, Subscriptions

__all__ = [
    "WEBHOOK_EVENTS",
    "Dispatcher",
    "Subscriptions",
    "WebhookSettings",
    "queue_deliveries",
    "signature",
]
