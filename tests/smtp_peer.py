"""A small SMTP server on loopback, for the mail queue's tests: it accepts
mail, or answers "451 try again later" to every MAIL FROM (`refuse = True`),
as a real server does when it has trouble. Speaks just enough of RFC 5321
for Django's SMTP backend (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT)."""

from __future__ import annotations

import email
import socketserver
import threading
from email.message import Message


class _Session(socketserver.StreamRequestHandler):
    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def _data_lines(self):
        """The message up to the lone dot, dot-stuffing undone."""
        while (line := self.rfile.readline()) not in (b".\r\n", b""):
            yield line[1:] if line.startswith(b"..") else line

    def handle(self) -> None:
        peer: SMTPPeer = self.server.peer
        self.reply("220 localhost test SMTP")
        recipients: list[str] = []
        while line := self.rfile.readline():
            verb = line[:4].decode("ascii", "replace").upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 localhost")
            elif verb == "MAIL":
                peer.attempts += 1
                if peer.refuse:
                    self.reply("451 4.3.0 Temporary failure, try again later")
                    continue
                recipients = []
                self.reply("250 OK")
            elif verb == "RCPT":
                recipients.append(line[8:].strip().decode().strip("<>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                data = b"".join(self._data_lines())
                peer.messages.append((recipients, email.message_from_bytes(data)))
                self.reply("250 OK queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("502 Command not implemented")


class SMTPPeer:
    """`with SMTPPeer() as smtp:` serves on `smtp.port` until the block ends."""

    def __init__(self) -> None:
        self.refuse = False
        self.attempts = 0
        self.messages: list[tuple[list[str], Message]] = []
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Session)
        self._server.daemon_threads = True
        self._server.peer = self
        self.port = self._server.server_address[1]

    def __enter__(self) -> SMTPPeer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def bodies(self) -> list[str]:
        return [message.get_payload(decode=True).decode() for _, message in self.messages]
