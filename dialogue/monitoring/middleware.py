"""RequestMetrics: times every HTTP request and counts WebSocket connections.

Requests are labelled by the template of the route that answered ("/tickets/{ticket_id}",
not the path asked for), a mount's path for static files, or "unmatched": a client sending
random paths cannot grow the metrics without bound.
"""

import time

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dialogue.monitoring.metrics import UNMATCHED, Metrics


class RequestMetrics:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception escaping the app is answered with 500 further out

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            self.metrics.request(
                scope["method"], route_of(scope), status, time.perf_counter() - started
            )

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        opened = False

        async def send_noting_accept(message: Message) -> None:
            nonlocal opened
            if message["type"] == "websocket.accept" and not opened:
                opened = True
                self.metrics.websocket(route_of(scope), opened=True)
            await send(message)

        try:
            await self.app(scope, receive, send_noting_accept)
        finally:
            if opened:
                self.metrics.websocket(route_of(scope), opened=False)


def route_of(scope: Scope) -> str:
    """The route template that answered the request (set by the router while routing)."""
    route = scope.get("route")
    if route is not None and hasattr(route, "path"):
        path: str = route.path  # a Route's, WebSocketRoute's or Mount's template
        return path
    for candidate in getattr(scope.get("app"), "routes", ()):
        if isinstance(candidate, Mount) and scope["path"].startswith(candidate.path + "/"):
            return candidate.path
    return UNMATCHED
