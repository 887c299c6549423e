"""One request as it is served, shared by the HTTP layer (gateway/api/) and the request path
(gateway/pipeline.py), so that neither imports the other's internals: the ASGI types both
speak, the Exchange a handler labels as it learns about the request, the watch on a client
that leaves, and the write of a whole response."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.limit_settler import Ticket
from gateway.metrics import NONE, UNKNOWN

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON = b"application/json"
REQUEST_ID = b"x-floorgate-request-id"
BODY_WRITER = "floorgate.body_writer"  # the scope's BodyWriter, where the server gives one
CLIENT_GONE = "floorgate.client_gone"  # the scope's Leaving, where the server gives one


class BodyWriter(Protocol):
    """The HTTP server's direct way to write a started response's body (gateway/api/server.py)."""

    def write_body(self, body: bytes) -> bool:
        """Written now, or False (nothing written) when it must go through the ASGI send."""
        ...


class Planned(Protocol):
    def error_headers(self) -> Headers: ...


class Leaving:
    """The HTTP server's word that the client went away before its response ended (gateway/api/
    server.py puts one in each request's scope, at CLIENT_GONE): it calls its watcher, once."""

    __slots__ = ("watcher",)

    def __init__(self) -> None:
        # The Disconnect itself, not a bound method of it: one object fewer a request held.
        self.watcher: Disconnect | None = None

    def gone(self) -> None:
        watcher, self.watcher = self.watcher, None
        if watcher is not None:
            watcher.client_left()


class Disconnect:
    """Once the body is read: cancels the request's task if the client goes away, so the
    upstream call stops with it, before the first byte as after it.

    Told by the server where it says so (`leaving`, floorgate serve's protocol); otherwise a task
    of its own waits for receive() to read a disconnect (starting that task, its two steps and
    its wait cost a request some 7 µs)."""

    __slots__ = ("_leaving", "_left", "_task", "_watch")

    def __init__(self, receive: Receive, leaving: Leaving | None = None) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._left = False  # the client went away, and the task was cancelled for it
        self._leaving = leaving
        self._watch: asyncio.Task[None] | None = None
        if leaving is not None:
            leaving.watcher = self
        else:
            self._watch = asyncio.create_task(self._run(receive))

    async def _run(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        if self._watch is not None:  # not stopped: the client went away
            self.client_left()

    def client_left(self) -> None:
        self._left = True
        self._task.cancel()

    def stop(self) -> None:
        """Before the response's end: once it is sent, receive() reads as a disconnect, which
        the watch, stopped, then takes for the end it is and ends with, unseen. Cancelling it
        instead cost a request 3 to 5 µs more (the CancelledError thrown through its frames).

        The watch is let go here. Kept, a cancelled one would hold its CancelledError, whose
        traceback's frames hold this object and the request's whole state: a cycle that only
        a full collection frees (33 objects a request, which made those collections run every
        few seconds under load, each pausing the event loop for up to 180 ms). The server's
        Leaving, in the scope, lets go of this object too, for the same reason."""
        self._watch = None
        if self._leaving is not None:
            self._leaving.watcher = None

    def caused(self) -> bool:
        """True if the only cancellation of the task came from the client going away."""
        return self._left and self._task.uncancel() == 0


@dataclass(slots=True)
class Exchange:
    """One request as its handler learns about it: the labels of its metrics, and what its
    error response would carry."""

    request_id: str
    started: float
    workflow: str = UNKNOWN
    route: str = NONE
    model: str = NONE
    stream: bool = False
    status: int = 200
    call: Planned | None = None
    ticket: Ticket | None = None  # its share of its limits, released when it ends
    disconnect: Disconnect | None = None  # watching for the client to leave, once it is read
    responded: bool = False  # the response has started: an error can no longer replace it
    writer: BodyWriter | None = None  # the server's way around the ASGI send, if it has one
    server_send: Send | None = None  # the server's ASGI send, while the request is served

    async def send(self, message: Message) -> None:
        """The ASGI send the boundary gives the app (a bound method: one object a request,
        where a closure over the Exchange and the server's send was four): the server's, once
        it has noted the response's start and added the request id to its headers."""
        if message["type"] == "http.response.start":
            self.responded = True
            self.status = message["status"]
            headers = message.setdefault("headers", [])
            if REQUEST_ID not in dict(headers):  # in C: no comprehension's call
                headers.append((REQUEST_ID, self.request_id.encode()))
        send = self.server_send
        if send is None:
            raise RuntimeError("the request has ended: its response can take nothing more")
        await send(message)

    def planned(self, call: Planned, workflow: str, route: str, stream: bool) -> None:
        self.call, self.workflow, self.route, self.stream = call, workflow, route, stream

    def stop_watching(self) -> None:
        """The response is about to end: a disconnect from now on is just its end."""
        if self.disconnect is not None:
            self.disconnect.stop()

    def error_headers(self) -> Headers:
        if self.call is not None:
            return self.call.error_headers()
        return [(REQUEST_ID, self.request_id.encode())]


async def send_response(
    send: Send, status: int, body: bytes, headers: Headers, content_type: bytes = JSON
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
