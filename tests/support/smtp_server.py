"""A real SMTP server for tests (aiosmtpd) that keeps what it receives, and a self-signed cert.

`StrictInbox` behaves like a picky provider: it refuses a message that holds a NUL byte
(554, after DATA) and refuses the recipients it is told to (550, at RCPT).
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Inbox:
    """aiosmtpd handler: every accepted message, parsed, and who logged in."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        self.messages.append(parsed)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


@dataclass
class StrictInbox(Inbox):
    """An `Inbox` that refuses NUL bytes in a message and the addresses in `refuse`.

    An address in `defer` gets 450 (try again later) once, then the server takes it.
    """

    refuse: set[str] = field(default_factory=set)
    defer: set[str] = field(default_factory=set)
    rcpt_attempts: list[list[str]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    refused_for_nul: int = 0

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        self.rcpt_attempts.append([])
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.rcpt_attempts[-1].append(address)
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        if address in self.defer:
            self.defer.discard(address)
            return f"450 4.2.1 <{address}>: mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if b"\0" in envelope.original_content:
            self.refused_for_nul += 1
            return "554 5.6.0 message contains NUL bytes"
        self.raw.append(envelope.original_content)
        return await super().handle_DATA(server, session, envelope)


def make_authenticator(inbox: Inbox, user: str, password: str) -> Any:
    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        if ok:
            inbox.logins.append(user)
        return AuthResult(success=ok, handled=False)

    return authenticate


def start_server(port: int, **smtp_parameters: Any) -> tuple[Controller, Inbox]:
    inbox = Inbox()
    if "authenticator" in smtp_parameters:
        user, password = smtp_parameters.pop("authenticator")
        smtp_parameters["authenticator"] = make_authenticator(inbox, user, password)
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **smtp_parameters)
    controller.start()
    return controller, inbox


def start_strict_server(
    port: int, refuse: set[str], defer: set[str] | None = None
) -> tuple[Controller, StrictInbox]:
    """A plain SMTP server on 127.0.0.1 that refuses NUL bytes and the `refuse` addresses."""
    inbox = StrictInbox(refuse=refuse, defer=defer or set())
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, inbox


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
