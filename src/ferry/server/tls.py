"""Whether the server may listen as configured: TLS with a certificate and key that load, and
that name the address local agents reach the server at; or plain HTTP on loopback only,
unless the operator says ``--insecure-http``. Every refusal is one line (``ConfigError``)."""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path

from cryptography import x509

from ferry.config import ServerSettings
from ferry.errors import ConfigError


def check_listening(settings: ServerSettings) -> None:
    if settings.tls_cert is None or settings.tls_key is None:
        if not settings.on_loopback and not settings.insecure_http:
            raise ConfigError(
                f"refusing to listen on {settings.host} without TLS (tokens would travel in"
                " clear): give --tls-cert and --tls-key, or --insecure-http"
            )
        return
    _load_pair(settings.tls_cert, settings.tls_key)
    if settings.agents > 0:
        _check_for_local_agents(settings, settings.tls_cert)


def _check_for_local_agents(settings: ServerSettings, cert: Path) -> None:
    """Local agents reach the server at ``agent_host`` and trust ``tls_ca``, or the
    certificate itself: refuse what would leave them failing their first connection."""
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    if not names(certificate, settings.agent_host):
        raise ConfigError(
            f"{cert} does not name {settings.agent_host}, where the local agents reach the"
            " server: add it to the certificate's subject alternative names, or run with"
            " --agents 0"
        )
    if settings.tls_ca is None and certificate.issuer != certificate.subject:
        raise ConfigError(
            f"{cert} is signed by {certificate.issuer.rfc4514_string()}: give its certificate"
            " with --tls-ca, for the local agents to trust the server by"
        )


def _load_pair(cert: Path, key: Path) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise ConfigError(
            f"--tls-cert {cert} / --tls-key {key}: not a PEM certificate and its key ({exc})"
        ) from None
    except OSError as exc:
        raise ConfigError(f"--tls-cert {cert} / --tls-key {key}: {exc.strerror}") from None


def names(certificate: x509.Certificate, host: str) -> bool:
    """Whether ``certificate`` names ``host`` among its subject alternative names, as an IP
    address or a DNS name (``*.`` for one leftmost label)."""
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        dns = extension.value.get_values_for_type(x509.DNSName)
        return any(_dns_match(pattern, host) for pattern in dns)
    return address in extension.value.get_values_for_type(x509.IPAddress)


def _dns_match(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        first, _, rest = host.partition(".")
        return bool(first) and rest == pattern[2:]
    return pattern == host
