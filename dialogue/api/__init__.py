"""The assistant's HTTP surface: its conversational channels (/assistant, chat, support
conversations) and /test-nlu. The health, observability and NLU model routes are
banking/api/admin.py's; dialogue/monitoring/observatory.py gives them what they report.

The bank's own REST routes are banking/api's; these use its dependencies (who calls, the
request limit, the Idempotency-Key) and add the assistant's (deps.py).
"""
