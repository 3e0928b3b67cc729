"""Support conversations of seeds/003: /chat/start, /chat/message, /chat/escalate, /tickets."""

from fastapi import APIRouter

router = APIRouter(tags=["support"])
