"""The address rules of webhook targets (app/webhooks/addresses.py), case by case."""

import ipaddress

import pytest

from app.webhooks.addresses import literal_address, refusal, url_refusal

REFUSED = {
    # IPv4
    "127.0.0.1": "loopback",
    "127.255.255.254": "loopback",
    "10.0.0.1": "private",
    "172.16.0.1": "private",
    "172.31.255.255": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",  # cloud metadata
    "169.254.0.1": "link-local",
    "100.64.0.1": "shared",
    "100.127.255.254": "shared",
    "0.0.0.0": "unspecified",
    "0.1.2.3": "private",  # "this network"
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "192.0.2.1": "private",  # documentation
    "198.18.0.1": "private",  # benchmarking
    "192.0.0.1": "private",  # IETF protocol assignments
    # IPv6
    "::1": "loopback",
    "::": "unspecified",
    "fe80::1": "link-local",
    "febf::1": "link-local",
    "fc00::1": "private",
    "fd12:3456::1": "private",
    "ff02::1": "multicast",
    "ff0e::1": "multicast",
    "fec0::1": "site-local",
    "2001:db8::1": "private",  # documentation
    "2001::1": "reserved",  # Teredo
    "64:ff9b:1::1": "reserved",
    "::127.0.0.1": "reserved",  # IPv4-compatible (deprecated)
    # IPv4 inside IPv6: judged by the IPv4 address
    "::ffff:127.0.0.1": "loopback (IPv4 in IPv6)",
    "::ffff:10.0.0.1": "private (IPv4 in IPv6)",
    "::ffff:169.254.169.254": "link-local (IPv4 in IPv6)",
    "::ffff:0.0.0.0": "unspecified (IPv4 in IPv6)",
    "2002:7f00:1::": "loopback (IPv4 in IPv6)",  # 6to4 of 127.0.0.1
    "2002:a00:1::": "private (IPv4 in IPv6)",  # 6to4 of 10.0.0.1
    "64:ff9b::a00:1": "private (IPv4 in IPv6)",  # NAT64 of 10.0.0.1
    "64:ff9b::7f00:1": "loopback (IPv4 in IPv6)",
}
ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.215.14",
    "100.63.255.255",
    "100.128.0.1",
    "172.32.0.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001::200e",
    "::ffff:8.8.8.8",
    "2002:808:808::",  # 6to4 of 8.8.8.8
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
]


@pytest.mark.parametrize(("address", "reason"), sorted(REFUSED.items()))
def test_refused_addresses(address, reason):
    assert refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address):
    assert refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("::ffff:10.0.0.1", "::ffff:a00:1"),
        ("example.com", None),
        ("1e100.net", None),
    ],
)
def test_literal_addresses_in_every_spelling(host, address):
    found = literal_address(host)
    assert (str(found) if found else None) == address


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.1:8080/hook",
        "http://2130706433/",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[::ffff:10.0.0.1]:8443/hook",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.1.1/",
        "http://0.0.0.0:8000/",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://224.0.0.1/",
        "http://localhost:8000/hook",
        "http://LOCALHOST./hook",
        "http://api.localhost/hook",
    ],
)
def test_private_literal_urls_are_refused_at_creation(url):
    assert url_refusal(url, allow_private=False) is not None
    assert url_refusal(url, allow_private=True) is None


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/", "file:///etc/passwd", "example.com/hook", "http:///path",
     "https://user:pass@example.com/", "http://example.com:0/", "http://example.com:99999/"],
)  # fmt: skip
def test_urls_that_are_not_http_targets(url):
    assert url_refusal(url, allow_private=True) is not None


def test_public_names_and_addresses_pass_at_creation():
    for url in (
        "https://example.com/hooks/waypoint",
        "http://8.8.8.8:8080/x",
        "https://[2606:4700::1]/",
    ):
        assert url_refusal(url, allow_private=False) is None
