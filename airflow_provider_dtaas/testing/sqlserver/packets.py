"""TDS packet framing: an 8-byte header (type, status, length, spid, packet id, window) around each
packet, messages that span packets until the EOM status bit, and responses split to the packet size."""

from __future__ import annotations

import select
import socket
import struct
from dataclasses import dataclass
from enum import IntEnum

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


@dataclass(frozen=True)
class Message:
    """A complete client request: its packet type and the payload of all its packets joined."""

    type: int
    payload: bytes
    reset_connection: bool = False


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionClosed
        chunks += chunk
    return bytes(chunks)


class PacketReader:
    """Reads packets from a client socket and reassembles them into messages."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._pending: Message | None = None

    def _read_packet(self) -> tuple[int, int, bytes]:
        ptype, status, length, _spid, _pid, _window = HEADER.unpack(_recv_exact(self._sock, HEADER.size))
        if length < HEADER.size:
            raise ConnectionClosed
        return ptype, status, _recv_exact(self._sock, length - HEADER.size)

    def read_message(self) -> Message:
        """The next message; raises ConnectionClosed at end of stream."""
        if self._pending is not None:
            message, self._pending = self._pending, None
            return message
        ptype, status, data = self._read_packet()
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
        readable, _, _ = select.select([self._sock], [], [], 0)
        if not readable:
            return False
        self._pending = self.read_message()
        return self._pending.type == PacketType.ATTENTION

    def take_attention(self) -> None:
        """Consume the ATTENTION message that ``attention_pending`` saw."""
        if self._pending is not None and self._pending.type == PacketType.ATTENTION:
            self._pending = None


class PacketWriter:
    """Buffers one response message and sends it in packets no larger than the negotiated size."""

    def __init__(self, sock: socket.socket, packet_size: int = DEFAULT_PACKET_SIZE, spid: int = 0) -> None:
        self._sock = sock
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

    def end_message(self, packet_type: int = PacketType.REPLY) -> None:
        """Send what is buffered as the last packet (EOM) of the message."""
        self._send(bytes(self._buffer), STATUS_EOM, packet_type)
        self._buffer.clear()
        self._packet_id = 1

    def _send(self, data: bytes, status: int, packet_type: int = PacketType.REPLY) -> None:
        header = HEADER.pack(packet_type, status, len(data) + HEADER.size, self.spid, self._packet_id, 0)
        self._sock.sendall(header + data)
        self._packet_id = (self._packet_id + 1) % 256
