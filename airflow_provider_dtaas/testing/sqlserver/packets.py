"""TDS packet framing: an 8-byte header (type, status, length, spid, packet id, window) around each
packet, messages that span packets until the EOM status bit, and responses split to the packet size.

Packets travel over a :class:`Transport`: the TCP socket itself, or TLS on top of it once encryption
is negotiated (see ``tls``). The reader and writer can be moved from one transport to the other
between packets, as the login handshake requires."""

from __future__ import annotations

import select
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

HEADER = struct.Struct(">BBHHBB")
STATUS_EOM = 0x01
STATUS_RESET_CONNECTION = 0x08
DEFAULT_PACKET_SIZE = 4096


class PacketType(IntEnum):
    SQL_BATCH = 0x01
    RPC = 0x03
    REPLY = 0x04
    ATTENTION = 0x06
    BULK_LOAD = 0x07
    TRANSACTION_MANAGER = 0x0E
    LOGIN7 = 0x10
    PRELOGIN = 0x12


class ConnectionClosed(Exception):
    """The client closed the socket."""


class Transport(Protocol):
    """A byte stream to one client."""

    def recv(self, size: int) -> bytes:
        """Up to ``size`` bytes, blocking until at least one arrives; b"" at end of stream."""
        ...

    def sendall(self, data: bytes) -> None: ...

    def has_data(self) -> bool:
        """True when bytes from the client are waiting (``recv`` would not wait for the network)."""
        ...


class SocketTransport:
    """Clear text: the TCP socket itself."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def recv(self, size: int) -> bytes:
        return self.sock.recv(size)

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def has_data(self) -> bool:
        readable, _, _ = select.select([self.sock], [], [], 0)
        return bool(readable)


def recv_exact(transport: Transport, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = transport.recv(size - len(chunks))
        if not chunk:
            raise ConnectionClosed
        chunks += chunk
    return bytes(chunks)


@dataclass(frozen=True)
class Message:
    """A complete client request: its packet type and the payload of all its packets joined."""

    type: int
    payload: bytes
    reset_connection: bool = False


class PacketReader:
    """Reads packets from a client and reassembles them into messages."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._pending: Message | None = None

    def _read_packet(self) -> tuple[int, int, bytes]:
        header = recv_exact(self.transport, HEADER.size)
        ptype, status, length, _spid, _pid, _window = HEADER.unpack(header)
        if length < HEADER.size:
            raise ConnectionClosed
        return ptype, status, recv_exact(self.transport, length - HEADER.size)

    def read_message(self, *, after_first_packet: Callable[[], None] | None = None) -> Message:
        """The next message; raises ConnectionClosed at end of stream.

        :param after_first_packet: called once the message's first packet is read, before the others
            (a LOGIN7 encrypted "for login only" has only its first packet in TLS).
        """
        if self._pending is not None:
            message, self._pending = self._pending, None
            return message
        ptype, status, data = self._read_packet()
        if after_first_packet is not None:
            after_first_packet()
        payload = bytearray(data)
        reset = bool(status & STATUS_RESET_CONNECTION)
        while not status & STATUS_EOM:
            _, status, data = self._read_packet()
            payload += data
        return Message(ptype, bytes(payload), reset)

    def attention_pending(self) -> bool:
        """True when the client has sent an ATTENTION (cancel) while a response is streaming."""
        if self._pending is not None:
            return self._pending.type == PacketType.ATTENTION
        if not self.transport.has_data():
            return False
        self._pending = self.read_message()
        return self._pending.type == PacketType.ATTENTION

    def take_attention(self) -> None:
        """Consume the ATTENTION message that ``attention_pending`` saw."""
        if self._pending is not None and self._pending.type == PacketType.ATTENTION:
            self._pending = None


class PacketWriter:
    """Buffers one response message and sends it in packets no larger than the negotiated size."""

    def __init__(self, transport: Transport, packet_size: int = DEFAULT_PACKET_SIZE, spid: int = 0) -> None:
        self.transport = transport
        self.packet_size = packet_size
        self.spid = spid
        self._buffer = bytearray()
        self._packet_id = 1

    def write(self, data: bytes) -> int:
        """Append token bytes; full packets go out at once. Returns how many packets were sent."""
        self._buffer += data
        room = self.packet_size - HEADER.size
        sent = 0
        while len(self._buffer) > room:
            self._send(bytes(self._buffer[:room]), 0)
            del self._buffer[:room]
            sent += 1
        return sent

    def end_message(self) -> None:
        """Send what is buffered as the last packet (EOM) of the reply."""
        self._send(bytes(self._buffer), STATUS_EOM)
        self._buffer.clear()
        self._packet_id = 1

    def send_message(self, data: bytes, packet_type: PacketType) -> None:
        """Send one whole message of another type than REPLY (the TLS handshake travels in PRELOGIN)."""
        if self._buffer:
            raise RuntimeError("a reply is being written")
        room = self.packet_size - HEADER.size
        chunks = [data[start : start + room] for start in range(0, len(data), room)] or [b""]
        for index, chunk in enumerate(chunks):
            self._send(chunk, STATUS_EOM if index == len(chunks) - 1 else 0, packet_type)
        self._packet_id = 1

    def _send(self, data: bytes, status: int, packet_type: int = PacketType.REPLY) -> None:
        header = HEADER.pack(packet_type, status, len(data) + HEADER.size, self.spid, self._packet_id, 0)
        self.transport.sendall(header + data)
        self._packet_id = (self._packet_id + 1) % 256
