"""The chat channels of seeds/000: POST /api/ai/chat and WS /api/ai/chat/ws."""

from fastapi import APIRouter

router = APIRouter(tags=["chat"])
