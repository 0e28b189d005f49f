"""Callbacks never reach inside the farm's network: every spelling of a non-public address is
refused, and a delivery connects to the address that was checked."""

from __future__ import annotations

import pytest

from voicefarm.errors import InvalidRequest
from voicefarm.settings import Settings
from voicefarm.tenancy.targets import check

SETTINGS = Settings()


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://localhost:8080/hook", "loopback"),
        ("http://2130706433:8080/hook", "loopback"),  # decimal
        ("http://0177.0.0.1/hook", "loopback"),  # octal
        ("http://0x7f.0.0.1/hook", "loopback"),  # hex
        ("http://[::1]/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),  # IPv4 inside IPv6
        ("http://169.254.169.254/latest/meta-data/", "link-local"),  # cloud metadata
        ("http://[fe80::1]/hook", "link-local"),
        ("http://10.0.0.1/hook", "private"),
        ("http://172.16.5.4/hook", "private"),
        ("http://192.168.1.1/hook", "private"),
        ("http://[fd00::1]/hook", "private"),  # unique-local
        ("http://224.0.0.1/hook", "multicast"),
        ("http://[ff02::1]/hook", "multicast"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://[::]/hook", "unspecified"),
        ("http://100.64.0.1/hook", "reserved"),  # carrier-grade NAT: not public
    ],
)
def test_non_public_addresses_are_refused_naming_why(url: str, kind: str) -> None:
    with pytest.raises(InvalidRequest, match=f"a {kind} address: callbacks go to public addresses only"):
        check(url, SETTINGS)


def test_a_public_address_is_delivered_to_that_address() -> None:
    target = check("https://93.184.216.34:8443/hooks/tts?id=1", SETTINGS)
    assert target.url == "https://93.184.216.34:8443/hooks/tts?id=1"
    assert target.host == "93.184.216.34" and target.host_header == "93.184.216.34:8443"


def test_a_name_is_replaced_by_the_address_it_resolved_to() -> None:
    allowed = Settings(callback_allow_cidrs=["127.0.0.0/8"])
    target = check("http://localhost:9000/hook", allowed)
    assert target.url == "http://127.0.0.1:9000/hook"  # connect to what was checked, not the name
    assert target.host == "localhost" and target.host_header == "localhost:9000"


def test_operators_allow_their_internal_receivers() -> None:
    allowed = Settings(callback_allow_cidrs=["10.0.0.0/8", "fd00::/8"])
    assert check("http://10.1.2.3/hook", allowed).url == "http://10.1.2.3:80/hook"
    assert check("http://[fd00::5]:81/hook", allowed).url == "http://[fd00::5]:81/hook"
    with pytest.raises(InvalidRequest, match="loopback"):
        check("http://127.0.0.1/hook", allowed)


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "http:///no-host", "file:///etc/passwd"])
def test_only_http_urls_with_a_host(url: str) -> None:
    with pytest.raises(InvalidRequest, match="must be an http or https URL with a host"):
        check(url, SETTINGS)


def test_a_bad_allowlist_fails_at_start() -> None:
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 network"):
        Settings(callback_allow_cidrs=["10.0.0.0/33"])
