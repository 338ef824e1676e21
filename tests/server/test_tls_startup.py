"""Whether ``ferry server`` may listen as configured (issue 19, part 4): plain HTTP on loopback
only unless ``--insecure-http``; with TLS, a certificate and key that load and that name the
address its local agents reach it at, and a CA for them to trust it by."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ferry.config import ServerSettings
from ferry.errors import ConfigError
from ferry.server.app import agent_command
from ferry.server.state import ServerState
from ferry.server.tls import check_listening
from tls_certs import make_certificates


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_certificates(tmp_path_factory.mktemp("tls"))


def settings(**values: Any) -> ServerSettings:
    return ServerSettings(local_root=Path("/r"), **values)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_plain_http_is_allowed_on_loopback(host: str) -> None:
    check_listening(settings(host=host))


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "::", "ferry.example.org"])
def test_plain_http_elsewhere_is_refused_unless_insecure_http(host: str) -> None:
    with pytest.raises(ConfigError, match=f"refusing to listen on {host} without TLS"):
        check_listening(settings(host=host))
    check_listening(settings(host=host, insecure_http=True))


def test_tls_with_its_ca_for_the_local_agents_is_accepted(
    certificates: tuple[Path, Path, Path],
) -> None:
    ca, cert, key = certificates
    tls = settings(host="0.0.0.0", tls_cert=cert, tls_key=key, tls_ca=ca)
    check_listening(tls)
    assert tls.agent_server_url.startswith("https://127.0.0.1:")
    command = agent_command(ServerState(settings=tls, store=None), "local-1")
    assert command[command.index("--ca") + 1] == str(ca.resolve())


def test_a_certificate_that_does_not_name_the_agents_address_is_refused(
    certificates: tuple[Path, Path, Path],
) -> None:
    ca, cert, key = certificates
    with pytest.raises(ConfigError, match=r"does not name 192\.0\.2\.1, where the local agents"):
        check_listening(settings(host="192.0.2.1", tls_cert=cert, tls_key=key, tls_ca=ca))
    check_listening(settings(host="192.0.2.1", tls_cert=cert, tls_key=key, agents=0))


def test_a_certificate_signed_by_a_ca_needs_that_ca_for_the_local_agents(
    certificates: tuple[Path, Path, Path],
) -> None:
    _, cert, key = certificates
    with pytest.raises(ConfigError, match="is signed by CN=ferry test CA: give its certificate"):
        check_listening(settings(tls_cert=cert, tls_key=key))


def test_a_key_that_is_not_the_certificates_is_refused_in_one_line(
    certificates: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, cert, _ = certificates
    _, _, other_key = make_certificates(tmp_path)
    with pytest.raises(ConfigError, match="not a PEM certificate and its key"):
        check_listening(settings(tls_cert=cert, tls_key=other_key, agents=0))
    with pytest.raises(ConfigError, match="No such file"):
        check_listening(settings(tls_cert=tmp_path / "none.pem", tls_key=other_key, agents=0))


def test_a_certificate_without_its_key_is_refused() -> None:
    with pytest.raises(ValueError, match="give both tls_cert and tls_key"):
        settings(tls_cert=Path("server.pem"))
