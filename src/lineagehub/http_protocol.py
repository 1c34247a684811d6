"""One write for a response's head and body.

uvicorn's httptools protocol writes a response's status line and headers the moment the
app starts the response, and its body in a write of its own. Under uvloop a write goes to
the socket at once when nothing is queued, so every answer was two ``send`` calls and two
TCP segments, and the client was woken twice: first for headers it cannot use without the
body. On two cores shared by the workers, Neo4j and the clients, those extra sends and
wake-ups were about 5% of the CPU a point lookup costs end to end.

``OneWriteProtocol`` is uvicorn's httptools protocol with its transport wrapped in
``HeldHead``, which holds a response head back until the next write, and sends both as one.
A head is a write of at most 16 KiB that begins with a status line and ends with the blank
line. Nothing waits on it: a head whose body does not follow in the same step of the event
loop (a streamed response, ``100 Continue``, a HEAD request) goes out on the loop's next
turn, and every other way of writing or closing sends what is held first (``abort`` drops
it, as it drops everything buffered). Bodies larger than ``MERGE_LIMIT`` are sent on their
own, after the head, rather than copied. Everything else about the transport is the
wrapped one's.

In a worker of several, the protocol also keeps the workers' ``Balance`` (see
``lineagehub.workers``): it counts this worker's connections as they open and close, and
when a request comes while this worker holds more than its share, that request's answer
ends its connection (``connection: close``, uvicorn's own graceful close), unless
pipelined requests are queued behind it by the time the answer starts. A request a client
pipelines after that answer has started is not answered; a client that pipelines must be
ready to send it again (HTTP/1.1 lets a server close a connection after any answer, and
uvicorn's own graceful shutdown does the same). When the worker starts shutting down, it
leaves the balance: the other workers stop counting it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

if TYPE_CHECKING:
    from lineagehub.workers import Balance

# How every status line uvicorn writes begins (uvicorn.protocols.utils.STATUS_LINE).
_HEAD = b"HTTP/1.1 "
_END = b"\r\n\r\n"
# Heads are short: a longer write is never held, whatever its first bytes.
_HEAD_LIMIT = 16 * 1024
# Up to this many body bytes are copied behind the head; a larger body is its own send.
MERGE_LIMIT = 64 * 1024


class HeldHead:
    """A transport that sends a response head together with the write after it."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if len(data) <= MERGE_LIMIT:
                self._transport.write(held + bytes(data))
                return
            self._transport.write(held)
        elif len(data) <= _HEAD_LIMIT and data[: len(_HEAD)] == _HEAD and data[-4:] == _END:
            self._held = bytes(data)
            self._loop.call_soon(self.release)
            return
        self._transport.write(data)

    def release(self) -> None:
        """Send what is held, if anything (and the connection is still open)."""
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def writelines(self, chunks: Any) -> None:
        self.release()
        self._transport.writelines(chunks)

    def write_eof(self) -> None:
        self.release()
        self._transport.write_eof()

    def close(self) -> None:
        self.release()
        self._transport.close()

    def abort(self) -> None:
        self._held = None  # an abort drops whatever is buffered
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def __getattr__(self, name: str) -> Any:
        # The rest of the transport API (set_protocol, write limits...), unchanged.
        return getattr(self._transport, name)


class OneWriteProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing each (small) response in one send.

    In a worker of several (``balanced``), it also tells the other workers how many
    connections this one holds, and closes a keep-alive connection after its answer while
    this worker holds more than its share (``lineagehub.workers.Balance``).
    """

    balance: ClassVar[Balance | None] = None
    # The request after whose answer this connection closes, to even out the workers.
    _shed: Any = None

    @classmethod
    def balanced(cls, balance: Balance) -> type[OneWriteProtocol]:
        """This protocol, keeping ``balance`` up to date and acting on it."""
        return type("BalancedProtocol", (cls,), {"balance": balance})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        held: Any = HeldHead(transport, self.loop)
        super().connection_made(held)
        if self.balance is not None:
            self.balance.publish(len(self.connections))

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        balance = self.balance
        if balance is not None:
            if self._shed is not None:
                self._shed = None
                balance.closed()
            balance.publish(len(self.connections))

    def on_headers_complete(self) -> None:
        previous = self.cycle
        super().on_headers_complete()
        balance, cycle, shed = self.balance, self.cycle, self._shed
        if balance is None:
            return
        if self.pipeline:
            # A request queued behind another (pipelining): the connection stays open for
            # it, unless the answer that closes it is already on its way (or the server
            # is shutting down, which closes it anyway).
            if shed is not None and not shed.response_started and not balance.leaving:
                shed.keep_alive = True
                self._shed = None
                balance.kept()
            return
        if (
            cycle is previous  # an upgrade: no new request cycle
            or not cycle.keep_alive
            or shed is not None
            or not balance.over_share(len(self.connections))
        ):
            return
        # uvicorn's own way of ending a connection gracefully (as at shutdown): the answer
        # says "connection: close", and the connection closes once it is sent.
        cycle.keep_alive = False
        self._shed = cycle
        balance.closing()

    def shutdown(self) -> None:
        if self.balance is not None:
            self.balance.leave()
        super().shutdown()
