# test_mirror.py: a GObject class written in Python, exported by one
# Python process over qipc channels and mirrored in another.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import time

import pytest
from conftest import assert_error
from gi.repository import GLib, Qipc
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
