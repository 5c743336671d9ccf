# test_mirror.py: a GObject class written in Python, exported by one
# Python process over qipc channels and mirrored in another.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import time

import pytest
from conftest import assert_error
from gi.repository import Gio, GLib, GObject, Qipc
from mirror_types import PyCounter

WAIT_S = 10
PATH = 'py/counter'


def wait_for(condition, what, timeout=WAIT_S):
    """Runs the main context until CONDITION() holds; fails after TIMEOUT s."""
    deadline = time.monotonic() + timeout
    context = GLib.MainContext.default()
    tick = GLib.timeout_add(20, lambda: GLib.SOURCE_CONTINUE)
    try:
        while not condition():
            assert time.monotonic() < deadline, f'{what}: not within {timeout} s'
            context.iteration(True)
    finally:
        GLib.source_remove(tick)


@pytest.fixture
def address(request):
    return f'unix:abstract=qipc-py/{os.getpid()}/{request.node.name}/{time.monotonic_ns()}'


@pytest.fixture
def exporter(spawn, address):
    broker = spawn('channel-broker', address)
    broker.expect('listening')
    child = spawn('mirror-export', address, PATH, '41')
    child.expect('exported')
    return child


@pytest.fixture
def bus(exporter, address):
    bus = Qipc.Bus.new_for_address(address)
    yield bus
    bus.close()


@pytest.fixture
def mirror(bus):
    return Qipc.Mirror.new(bus, PATH, PyCounter)


def test_mirror_is_the_python_class_with_the_remote_state(mirror):
    assert isinstance(mirror, PyCounter)
    assert mirror.props.value == 41
    assert mirror.props.label == 'start'
    handle = Qipc.Mirror.get_for_object(mirror)
    assert handle.props.remote_present
    assert handle.get_path() == PATH


def test_remote_signal_and_properties_arrive(exporter, mirror):
    seen = []
    mirror.connect('value-changed', lambda obj, value, label: seen.append((value, label)))
    mirror.connect('notify::label', lambda obj, pspec: seen.append(obj.props.label))
    exporter.send('set 5')
    exporter.expect('ok')
    wait_for(lambda: seen, 'value-changed')
    assert seen == [(5, 'start')]
    assert mirror.props.value == 5
    exporter.send('label kitchen')
    exporter.expect('ok')
    wait_for(lambda: len(seen) == 2, 'the label')
    assert seen[1] == 'kitchen'


def test_local_changes_and_actions_reach_the_original(exporter, bus, mirror):
    # What the mirror sends leaves as the main context runs: flushing
    # runs it until the broker has it (the test then blocks on a pipe).
    mirror.props.value = 7
    Qipc.Channel.flush_for_bus(bus)
    exporter.send('wait-value 7')
    exporter.expect('value 7')
    # Emitting the action calls it remotely; the local result is 0.
    assert mirror.emit('increment', 3) == 0
    Qipc.Channel.flush_for_bus(bus)
    exporter.send('wait-value 10')
    exporter.expect('value 10')
    wait_for(lambda: mirror.props.value == 10, 'the remote value')

    handle = Qipc.Mirror.get_for_object(mirror)
    results = []
    handle.call_async('increment', GLib.Variant('(i)', (4,)), None,
                      lambda source, result: results.append(source.call_finish(result)))
    wait_for(lambda: results, 'the call')
    assert results[0].unpack() == 14


def test_killed_exporter_vanishes(exporter, mirror):
    handle = Qipc.Mirror.get_for_object(mirror)
    vanished = []
    handle.connect('vanished', lambda h: vanished.append(True))
    exporter.kill()
    wait_for(lambda: vanished, 'vanished')
    assert not handle.props.remote_present
    assert mirror.props.value == 41


def test_nothing_exported_is_not_found(spawn, address):
    broker = spawn('channel-broker', address)
    broker.expect('listening')
    bus = Qipc.Bus.new_for_address(address)
    with pytest.raises(GLib.Error) as excinfo:
        Qipc.Mirror.new(bus, 'py/nobody', PyCounter)
    assert_error(excinfo, Qipc.remote_error_quark(), Qipc.RemoteError.NOT_FOUND)
    bus.close()


# Over D-Bus: qipc_child.py's dbus-export-counter exports its own PyCounter
# (a class of its __main__ module) with qipc_dbus_export_object; this
# process mirrors it with a class that has the same members.

class DBusCounter(GObject.Object):
    """The members of qipc_child.py's PyCounter."""
    __gtype_name__ = 'QipcPyTestDBusCounter'
    __gsignals__ = {
        'changed': (GObject.SignalFlags.RUN_LAST, None, (int, str)),
        'bump': (GObject.SignalFlags.RUN_LAST | GObject.SignalFlags.ACTION, int, (int,)),
    }
    count = GObject.Property(type=int, default=0)


@pytest.fixture
def dbus_exporter(spawn, request):
    bus = Gio.TestDBus.new(Gio.TestDBusFlags.NONE)
    bus.up()
    os.environ['DBUS_SESSION_BUS_ADDRESS'] = bus.get_bus_address()
    flags = (Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
             Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION)
    connection = Gio.DBusConnection.new_for_address_sync(bus.get_bus_address(), flags, None, None)
    name = f'org.qipc.PyMirror.P{os.getpid()}'
    child = spawn('dbus-export-counter', '/org/qipc/pymirror/counter', name)
    child.expect('ready')
    yield child, connection, name
    child.cleanup()
    connection.close_sync(None)
    bus.down()


def test_python_object_exported_on_dbus_is_mirrored(dbus_exporter):
    child, connection, name = dbus_exporter
    mirror = Qipc.Mirror.new_for_dbus(connection, name, '/org/qipc/pymirror/counter',
                                      'org.qipc.Object.__main___PyCounter', DBusCounter, None)
    assert isinstance(mirror, DBusCounter)
    seen = []
    mirror.connect('changed', lambda obj, n, text: seen.append((n, text)))
    child.send('emit 3 hello')
    child.expect('ok')
    wait_for(lambda: seen, 'the changed signal')
    assert seen == [(3, 'hello')]
    child.send('set 7')
    child.expect('ok')
    wait_for(lambda: mirror.props.count == 7, 'the remote count')

    # Set on the mirror: the original follows (asked until it has).
    mirror.props.count = 4
    deadline = time.monotonic() + WAIT_S
    while True:
        child.send('get')
        if child.readline() == '4':
            break
        assert time.monotonic() < deadline, 'the original never got count 4'
        time.sleep(0.02)

    handle = Qipc.Mirror.get_for_object(mirror)
    vanished = []
    handle.connect('vanished', lambda h: vanished.append(True))
    child.kill()
    wait_for(lambda: vanished, 'vanished')


def test_dbus_mirror_follows_unexport_and_export(dbus_exporter):
    """The exporter keeps its bus name: only its announcements tell."""
    child, connection, name = dbus_exporter
    mirror = Qipc.Mirror.new_for_dbus(connection, name, '/org/qipc/pymirror/counter',
                                      'org.qipc.Object.__main___PyCounter', DBusCounter, None)
    handle = Qipc.Mirror.get_for_object(mirror)
    events = []
    handle.connect('vanished', lambda h: events.append('vanished'))
    handle.connect('appeared', lambda h: events.append('appeared'))
    child.send('unexport')
    child.expect('ok')
    wait_for(lambda: events == ['vanished'], 'vanished')
    assert not handle.props.remote_present
    child.send('set 12')
    child.expect('ok')
    child.send('export')
    child.expect('ok')
    wait_for(lambda: events == ['vanished', 'appeared'], 'appeared')
    assert mirror.props.count == 12


class PyGauge(GObject.Object):
    """A read-only property, "level", that only the original changes."""
    __gtype_name__ = 'QipcPyTestGauge'
    _level = 0

    @GObject.Property(type=int, default=0, flags=GObject.ParamFlags.READABLE)
    def level(self):
        return self._level

    def set_level(self, level):
        self._level = level
        self.notify('level')


def test_read_only_property_is_read_from_the_handle(address):
    broker = Qipc.Broker.new()
    broker.listen(address)
    bus = Qipc.Bus.new_for_address(address)
    try:
        gauge = PyGauge()
        gauge.set_level(5)
        export_id = Qipc.Bus.export_object(bus, 'app/gauge', gauge, Qipc.ExportFlags.ALL)
        mirror = Qipc.Mirror.new(bus, 'app/gauge', PyGauge)
        handle = Qipc.Mirror.get_for_object(mirror)
        # GObject cannot set a read-only property, so the instance keeps
        # the default; the handle has what the original reported.
        assert mirror.props.level == 0
        assert handle.get_remote_property('level') == (True, 5)
        gauge.set_level(8)
        wait_for(lambda: handle.get_remote_property('level') == (True, 8), 'the new level')
        assert Qipc.Bus.unexport_object(bus, export_id)
    finally:
        bus.close()
        broker.close()
