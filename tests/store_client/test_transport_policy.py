"""The store client's own allow-list of printer targets (DESIGN.md §8.3, issue 14 point 3)."""

from __future__ import annotations

import pytest

from store_client.transport_policy import (
    DEFAULT_PATTERNS,
    BadPattern,
    TransportNotAllowed,
    TransportPolicy,
)

ALLOWED_BY_DEFAULT = [
    "tcp://10.0.0.20:9100",
    "tcp://172.31.255.1:9100",
    "tcp://192.168.1.50",
    "tcp://169.254.10.2:9100",  # a printer that fell back to a link-local address
    "tcp://127.0.0.1:40123",  # this PC: a local print server, the emulator
    "tcp://[::1]:9100",
    "tcp://[fd12:3456::20]:9100",
    "tcp://[fe80::1]:9100",
    "file:///dev/usb/lp0",
    "serial:///dev/ttyUSB0?baud=19200",
    "serial:///dev/ttyS1",
    "serial://COM3",
    "usb://04b8:0202",
]
REFUSED_BY_DEFAULT = [
    "file:///etc/cron.d/x",
    "file:///home/cashier/.bashrc",
    "file://etc/passwd",  # relative to the client's working directory
    "file:///dev/usb/lp0/../../../etc/passwd",
    "file:///dev/usb/lp0%2F..%2F..%2F..%2Fetc%2Fpasswd",  # the transport percent-decodes
    "file:///dev/usb//lp0",
    "file:///dev/sda",
    "tcp://8.8.8.8:9100",
    "tcp://203.0.113.9:25",
    "tcp://100.64.0.1:9100",  # carrier-grade NAT: the ISP's side, not the store's
    "tcp://[::ffff:8.8.8.8]:9100",  # an IPv4 address in IPv6 clothing
    "tcp://[2001:db8::1]:9100",
    "tcp://printer.local:9100",  # a name: DNS may answer with any address
    "tcp://10.0.0.1.nip.io:9100",
    "tcp://0x0a000001:9100",  # the resolver would read these as 10.0.0.1 / 8.0.0.1
    "tcp://010.0.0.1:9100",
    "tcp://0.0.0.0:9100",
    "serial://socket://203.0.113.9:80",  # a pyserial URL handler, not a port
    "serial://rfc2217://203.0.113.9:2217",
    "serial:///etc/passwd",
    "memory://x",
    "smb://server/printer",
]


@pytest.mark.parametrize("uri", ALLOWED_BY_DEFAULT)
def test_store_lan_devices_and_this_pc_are_allowed_by_default(uri: str) -> None:
    TransportPolicy().check(uri)


@pytest.mark.parametrize("uri", REFUSED_BY_DEFAULT)
def test_files_other_hosts_and_url_handlers_are_refused_by_default(uri: str) -> None:
    with pytest.raises(TransportNotAllowed, match=r"^transport not allowed on this PC: "):
        TransportPolicy().check(uri)


def test_the_refusal_names_the_target_and_the_way_out() -> None:
    with pytest.raises(TransportNotAllowed) as caught:
        TransportPolicy().check("file:///etc/passwd")
    assert str(caught.value) == (
        "transport not allowed on this PC: file:///etc/passwd (see store-client --allow-transport)"
    )


def test_allow_transport_adds_to_the_defaults() -> None:
    policy = TransportPolicy.with_extra(
        [
            "tcp://203.0.113.0/24:9100",
            "tcp://*.printers.example",
            "tcp://[2001:db8::/32]",
            "file:///var/spool/passline/",
            "serial:///dev/serial/by-id/usb-*",
        ]
    )
    assert policy.patterns[: len(DEFAULT_PATTERNS)] == DEFAULT_PATTERNS
    for uri in [
        "tcp://203.0.113.9:9100",
        "tcp://hot.printers.example:9100",
        "tcp://HOT.Printers.Example:9101",
        "tcp://[2001:db8::1]:9100",
        "file:///var/spool/passline/kitchen.bin",
        "file:///var/spool/passline/day/kitchen.bin",
        "serial:///dev/serial/by-id/usb-FTDI_A1-if00",
        "tcp://10.0.0.20:9100",  # the defaults still hold
    ]:
        policy.check(uri)
    for uri in [
        "tcp://203.0.113.9:25",  # that network, but only port 9100
        "tcp://printers.example.evil:9100",
        "file:///var/spool/passline/",  # the directory itself
        "file:///var/spool/passline/../../../etc/passwd",
        "file:///var/spool/passline-other/x",
        "serial:///dev/serial/by-id/usb-x/../../../../etc/passwd",
    ]:
        with pytest.raises(TransportNotAllowed):
            policy.check(uri)


def test_any_host_takes_an_explicit_star() -> None:
    policy = TransportPolicy.with_extra(["tcp://*"])
    policy.check("tcp://8.8.8.8:9100")
    policy.check("tcp://printer.local")
    with pytest.raises(TransportNotAllowed):
        policy.check("file:///etc/passwd")


@pytest.mark.parametrize(
    "pattern",
    [
        "ftp://x",
        "tcp://",
        "tcp://a b",
        "tcp://10.0.0.1:http",
        "tcp://10.0.0.0/33",
        "tcp://[::1]x",
        "file://relative/dir/",
        "file:///srv/../etc/",
        "10.0.0.0/8",
    ],
)
def test_a_pattern_that_cannot_be_understood_is_refused(pattern: str) -> None:
    with pytest.raises(BadPattern):
        TransportPolicy.with_extra([pattern])


def test_the_cli_refuses_a_bad_pattern_with_one_line() -> None:
    from click.testing import CliRunner

    from passline.cmd_store_client import store_client

    args = ["--broker", "ws://127.0.0.1:1", "--store", "s-1", "--token", "t"]
    result = CliRunner().invoke(store_client, [*args, "--allow-transport", "file://etc/"])
    assert result.exit_code == 2
    assert "Invalid value for --allow-transport: expected file:///ABSOLUTE/PATH" in result.output
    assert "Traceback" not in result.output
