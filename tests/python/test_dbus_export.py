# test_dbus_export.py: a Python GObject exported on D-Bus, and remote
# D-Bus signals delivered to Python functions.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Everything runs on a private bus (Gio.TestDBus) that the children reach
# through DBUS_SESSION_BUS_ADDRESS. The exporting process is a
# qipc_child.py, so this process may block on its output meanwhile.

import os
import subprocess
import time

import pytest
from conftest import assert_error
from gi.repository import Gio, GLib, GObject, Qipc

WAIT_S = 10
# The default interface of qipc_child.py's PyCounter, a class of its
# __main__ module ("__main__+PyCounter").
INTERFACE = 'org.qipc.Object.__main___PyCounter'
_serial = iter(range(1_000_000))


@pytest.fixture(scope='module')
def dbus_address():
    """A private bus. Not Gio.TestDBus: its watcher is a fork() of this
    process, which may have threads by then."""
    daemon = subprocess.Popen(['dbus-daemon', '--session', '--nofork', '--print-address=1'],
                              stdout=subprocess.PIPE)
    address = daemon.stdout.readline().decode().strip()
    os.environ['DBUS_SESSION_BUS_ADDRESS'] = address
    yield address
    daemon.kill()
    daemon.wait()
    daemon.stdout.close()


@pytest.fixture
def connection(dbus_address):
    flags = (Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
             Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION)
    connection = Gio.DBusConnection.new_for_address_sync(dbus_address, flags, None, None)
    yield connection
    connection.close_sync(None)


@pytest.fixture
def exporter(spawn, dbus_address):
    """A qipc_child.py exporting a PyCounter; returns (child, name, path)."""
    n = next(_serial)
    name = f'org.qipc.PyTest.P{os.getpid()}.N{n}'
    path = f'/org/qipc/pytest/p{os.getpid()}/counter{n}'
    child = spawn('dbus-export-counter', path, name)
    child.expect('ready')
    return child, name, path


def wait_for(condition, what):
    deadline = time.monotonic() + WAIT_S
    context = GLib.MainContext.default()
    tick = GLib.timeout_add(20, lambda: GLib.SOURCE_CONTINUE)
    try:
        while not condition():
            assert time.monotonic() < deadline, f'{what}: not within {WAIT_S} s'
            context.iteration(True)
    finally:
        GLib.source_remove(tick)


def drain():
    context = GLib.MainContext.default()
    while context.iteration(False):
        pass


def command(child, line, reply='ok'):
    child.send(line)
    return child.expect(reply)


def test_signal_of_python_class_reaches_plain_function(exporter, connection):
    child, name, path = exporter
    received = []
    handler_id = Qipc.dbus_connect_signal(connection, name, path, INTERFACE, 'Changed', None,
                                          lambda value, text: received.append((value, text)))
    assert handler_id != 0
    command(child, 'emit 5 hello')
    command(child, 'emit -1 two words')
    wait_for(lambda: len(received) == 2, 'two Changed signals')
    assert received == [(5, 'hello'), (-1, 'two words')]

    assert Qipc.dbus_disconnect_signal(connection, handler_id)
    command(child, 'emit 6 gone')
    connection.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus',
                         'GetId', None, None, Gio.DBusCallFlags.NONE, -1, None)
    drain()
    assert len(received) == 2


def test_arg_match(exporter, connection):
    child, name, path = exporter
    received = []
    Qipc.dbus_connect_signal(connection, None, path, INTERFACE, 'Changed', ['', 'yes'],
                             lambda value, text: received.append(value))
    for value, text in ((1, 'no'), (2, 'yes'), (3, 'no'), (4, 'yes')):
        command(child, f'emit {value} {text}')
    wait_for(lambda: 4 in received, 'the fourth signal')
    drain()
    assert received == [2, 4]


def test_action_and_properties(exporter, connection):
    child, name, path = exporter
    changes = []
    Qipc.dbus_connect_signal(connection, name, path, 'org.freedesktop.DBus.Properties',
                             'PropertiesChanged', [INTERFACE],
                             lambda interface, changed, invalidated:
                                 changes.append((interface, changed.unpack(), invalidated)))

    reply = connection.call_sync(name, path, INTERFACE, 'Bump', GLib.Variant('(i)', (3,)),
                                 GLib.VariantType('(i)'), Gio.DBusCallFlags.NONE, -1, None)
    assert reply.unpack() == (3,)
    command(child, 'get', '3')

    def get(prop):
        return connection.call_sync(name, path, 'org.freedesktop.DBus.Properties', 'Get',
                                    GLib.Variant('(ss)', (INTERFACE, prop)), GLib.VariantType('(v)'),
                                    Gio.DBusCallFlags.NONE, -1, None).unpack()[0]

    assert get('Count') == 3
    connection.call_sync(name, path, 'org.freedesktop.DBus.Properties', 'Set',
                         GLib.Variant('(ssv)', (INTERFACE, 'Count', GLib.Variant('i', 10))),
                         None, Gio.DBusCallFlags.NONE, -1, None)
    command(child, 'get', '10')
    command(child, 'set 12')
    assert get('Count') == 12

    with pytest.raises(GLib.Error) as excinfo:
        connection.call_sync(name, path, 'org.freedesktop.DBus.Properties', 'Set',
                             GLib.Variant('(ssv)', (INTERFACE, 'Count', GLib.Variant('s', 'x'))),
                             None, Gio.DBusCallFlags.NONE, -1, None)
    assert Gio.DBusError.get_remote_error(excinfo.value) == 'org.freedesktop.DBus.Error.InvalidArgs'

    with pytest.raises(GLib.Error) as excinfo:
        connection.call_sync(name, path, 'org.freedesktop.DBus.Properties', 'Set',
                             GLib.Variant('(ssv)', (INTERFACE, 'Level', GLib.Variant('i', 11))),
                             None, Gio.DBusCallFlags.NONE, -1, None)
    assert Gio.DBusError.get_remote_error(excinfo.value) == 'org.freedesktop.DBus.Error.InvalidArgs'
    assert 'out of its range' in excinfo.value.message
    assert get('Level') == 0

    wait_for(lambda: len(changes) == 3, 'three PropertiesChanged')
    assert changes == [(INTERFACE, {'Count': 3}, []), (INTERFACE, {'Count': 10}, []),
                       (INTERFACE, {'Count': 12}, [])]


class Unsupported(GObject.Object):
    __gsignals__ = {
        'opaque': (GObject.SignalFlags.RUN_LAST, None, (object,)),
        'fine': (GObject.SignalFlags.RUN_LAST, None, (str,)),
    }


def test_unsupported_python_signal(connection):
    obj = Unsupported()
    with pytest.raises(GLib.Error) as excinfo:
        Qipc.dbus_export_object(connection, '/org/qipc/pytest/unsupported', None, obj,
                                Qipc.ExportFlags.SIGNALS)
    assert_error(excinfo, Qipc.remote_error_quark(), Qipc.RemoteError.UNSUPPORTED_TYPE)
    assert "Signal 'opaque'" in excinfo.value.message
    assert 'argument 1 has type PyObject' in excinfo.value.message

    export_id = Qipc.dbus_export_object(
        connection, '/org/qipc/pytest/unsupported', 'org.qipc.PyTest.Unsupported', obj,
        Qipc.ExportFlags.SIGNALS | Qipc.ExportFlags.SKIP_UNSUPPORTED)
    assert export_id != 0
    obj.emit('opaque', {'not': 'sent'})
    assert Qipc.dbus_unexport_object(connection, export_id)
