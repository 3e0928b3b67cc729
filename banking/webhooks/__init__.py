"""Webhooks: users subscribe a URL to their events; a persisted outbox delivers them signed.

Imports banking (events, tables) and banking.logs; banking/bank.py builds it and
banking/api/webhooks.py serves its routes.
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
