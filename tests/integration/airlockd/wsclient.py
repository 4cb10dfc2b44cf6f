"""A small WebSocket client (RFC 6455) for the terminal tests: the handshake
over a plain socket, frames built by hand so a test can send what a real
client never would (unmasked, oversized, fragmented control frames)."""

import base64
import hashlib
import os
import socket
import struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0, 1, 2, 8, 9, 10


class Refused(Exception):
    """The server answered the handshake with an HTTP status other than 101."""

    def __init__(self, status, head, body):
        super().__init__(f"HTTP {status}: {body[:300]!r}")
        self.status = status
        self.head = head
        self.body = body


class WS:
    def __init__(self, port, path, auth=None, protocols=None, timeout=60, version="13"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        head = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: {version}\r\n")
        if auth:
            head += f"Authorization: Bearer {auth}\r\n"
        if protocols:
            head += f"Sec-WebSocket-Protocol: {', '.join(protocols)}\r\n"
        self.sock.sendall((head + "\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            data += chunk
        headpart, _, self.buf = data.partition(b"\r\n\r\n")
        lines = headpart.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else 0
        self.headers = {k.lower(): v for k, v in
                        (x.split(": ", 1) for x in lines[1:] if ": " in x)}
        if status != 101:
            body = self.buf
            try:
                self.sock.settimeout(5)
                n = int(self.headers.get("content-length", "0"))
                while len(body) < n:
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        break
                    body += chunk
            except OSError:
                pass
            self.sock.close()
            raise Refused(status, self.headers, body)
        want = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        if self.headers.get("sec-websocket-accept") != want:
            raise Refused(101, self.headers, b"bad Sec-WebSocket-Accept")
        self.closed = None  # (code, reason) once a close frame came
        self.exit = None  # the {"exit": ...} text frame's object

    def send_frame(self, op, payload=b"", fin=True, mask=True, rsv=0, claim_len=None):
        """Sends one frame; claim_len puts another length in the header."""
        n = len(payload) if claim_len is None else claim_len
        b0 = (0x80 if fin else 0) | rsv << 4 | op
        mbit = 0x80 if mask else 0
        if n < 126:
            head = struct.pack("!BB", b0, mbit | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, mbit | 126, n)
        else:
            head = struct.pack("!BBQ", b0, mbit | 127, n)
        if mask:
            m = os.urandom(4)
            head += m
            payload = bytes(c ^ m[i & 3] for i, c in enumerate(payload))
        self.sock.sendall(head + payload)

    def send_bytes(self, data):
        self.send_frame(BINARY, data)

    def send_text(self, text):
        self.send_frame(TEXT, text.encode())

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk

    def recv_frame(self):
        """(fin, opcode, payload) of the next frame; server frames are unmasked."""
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        if b1 & 0x80:
            raise AssertionError("the server masked a frame")
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._need(4)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(off + n)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def read_until(self, marker):
        """Terminal bytes until `marker` appears (or the connection ends)."""
        out = b""
        while marker not in out:
            fin, op, payload = self.recv_frame()
            if op == BINARY:
                out += payload
            elif op == CLOSE:
                self.closed = close_payload(payload)
                break
            elif op == TEXT:
                import json
                self.exit = json.loads(payload).get("exit")
        return out

    def read_to_close(self):
        """Everything up to the close frame: (terminal bytes, exit, close)."""
        out = b""
        try:
            while self.closed is None:
                out += self.read_until(b"\0never\0")
        except (EOFError, OSError):
            pass
        return out, self.exit, self.closed

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def close_payload(payload):
    if len(payload) >= 2:
        return struct.unpack("!H", payload[:2])[0], payload[2:].decode("utf-8", "replace")
    return 1005, ""
