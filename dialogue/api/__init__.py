"""The assistant's HTTP surface: its conversational channels (/assistant, chat, support
conversations), /test-nlu, and the health, observability and NLU model routes.

The bank's own REST routes are banking/api's; these use its dependencies (who calls, the
request limit, the Idempotency-Key) and add the assistant's (deps.py).
"""
