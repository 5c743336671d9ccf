# test_dbus_channels.py: QipcChannel over a private dbus-daemon, from
# Python, with a plain Gio D-Bus connection as the foreign client.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import select
import subprocess

import pytest
from conftest import LINE_TIMEOUT
from gi.repository import Gio, GLib, Qipc
from test_channels import wait_for


@pytest.fixture
def dbus_address():
    """The address of a session dbus-daemon of this test's own."""
    daemon = subprocess.Popen(['dbus-daemon', '--session', '--nofork', '--nosyslog',
                               '--print-address=1'],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        fd = daemon.stdout.fileno()
        os.set_blocking(fd, True)
        ready, _, _ = select.select([fd], [], [], LINE_TIMEOUT)
        assert ready, 'dbus-daemon printed no address'
        address = daemon.stdout.readline().decode().strip()
        assert address.startswith('unix:')
        yield address
    finally:
        daemon.kill()
        daemon.wait()


def test_send_and_receive_over_dbus(dbus_address):
    bus = Qipc.Bus.new_for_address('dbus:address=' + dbus_address)
    sender = Qipc.Bus.new_for_address('dbus:address=' + dbus_address)
    channel = Qipc.Channel.new_for_bus(bus, 'py/dbus')
    received = []
    channel.connect('received', lambda _c, message, data: received.append((message, data)))
    Qipc.Channel.flush_for_bus(bus)
    assert Qipc.Channel.is_registered_for_bus(sender, 'py/dbus')

    # A maybe type, which D-Bus itself cannot carry.
    Qipc.Channel.send_for_bus(sender, 'py/dbus', 'hello', GLib.Variant('(smi)', ('x', None)))
    Qipc.Channel.flush_for_bus(sender)
    wait_for(lambda: received, 'the message')
    assert received[0][0] == 'hello'
    assert received[0][1].unpack() == ('x', None)
    bus.close()
    sender.close()


def test_foreign_client_reads_and_writes(dbus_address):
    """A plain Gio connection sends and receives org.qipc.Channel1.Message
    as docs/dbus-transport.md specifies."""
    bus = Qipc.Bus.new_for_address('dbus:address=' + dbus_address)
    channel = Qipc.Channel.new_for_bus(bus, 'py/foreign')
    received = []
    channel.connect('received', lambda _c, message, data: received.append((message, data)))
    Qipc.Channel.flush_for_bus(bus)

    raw = Gio.DBusConnection.new_for_address_sync(
        dbus_address,
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
        Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
    seen = []
    raw.signal_subscribe(None, 'org.qipc.Channel1', 'Message', '/org/qipc/Channel1', 'py/foreign',
                         Gio.DBusSignalFlags.NONE,
                         lambda *args: seen.append(args[5].unpack()))
    # A round trip: the subscription's AddMatch is in force after it.
    raw.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus',
                  'GetId', None, None, Gio.DBusCallFlags.NONE, -1, None)

    # int32 5: type 'i', 4 little-endian bytes.
    raw.emit_signal(None, '/org/qipc/Channel1', 'org.qipc.Channel1', 'Message',
                    GLib.Variant('(sssay)', ('py/foreign', 'set', 'i', b'\x05\x00\x00\x00')))
    Qipc.Channel.send_for_bus(bus, 'py/foreign', 'text', GLib.Variant('s', 'hi'))
    wait_for(lambda: received and len(seen) >= 2, 'both directions')
    assert received[0][0] == 'set'
    assert received[0][1].unpack() == 5
    # Ours and the raw connection's own signal, in either order.
    text = [args for args in seen if args[1] == 'text']
    assert len(text) == 1
    assert text[0][:3] == ('py/foreign', 'text', 's')
    assert bytes(text[0][3]) == b'hi\x00'
    raw.close_sync(None)
    bus.close()
