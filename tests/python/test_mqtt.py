# test_mqtt.py: QipcBus and QipcChannel over MQTT from Python, on a
# mosquitto the test starts on 127.0.0.1 at a free port.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import getpass
import socket
import subprocess
import time

import pytest
from gi.repository import GLib, Qipc

WAIT_S = 10


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def mosquitto(tmp_path):
    """A mosquitto of the test's own; yields its address."""
    port = free_port()
    config = tmp_path / 'mosquitto.conf'
    config.write_text(f'listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n'
                      f'user {getpass.getuser()}\n')
    proc = subprocess.Popen(['mosquitto', '-c', str(config)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None, 'mosquitto exited'
            assert time.monotonic() < deadline, 'mosquitto did not start'
            time.sleep(0.01)
    yield f'mqtt://127.0.0.1:{port}'
    proc.kill()
    proc.wait()


def wait_for(received):
    """Runs the default main context until @received has something."""
    context = GLib.MainContext.default()
    deadline = time.monotonic() + WAIT_S
    while not received:
        assert time.monotonic() < deadline, 'no message'
        context.iteration(False) or time.sleep(0.001)


def test_own_message_and_is_registered(mosquitto):
    bus = Qipc.Bus.new_for_address(mosquitto + '?prefix=py')
    channel = Qipc.Channel.new_for_bus(bus, 'py/*')
    received = []
    channel.connect('received', lambda c, m, d: received.append((m, d)))
    assert Qipc.Channel.flush_for_bus(bus)
    assert Qipc.Channel.is_registered_for_bus(bus, 'py/x')
    assert not Qipc.Channel.is_registered_for_bus(bus, 'other')

    data = GLib.Variant('a{sv}', {'n': GLib.Variant('t', 2**64 - 1),
                                  'b': GLib.Variant('ay', b'\x00\xff')})
    Qipc.Channel.send_for_bus(bus, 'py/x', 'set', data)
    wait_for(received)
    [(message, got)] = received
    assert message == 'set'
    assert got.get_type_string() == 'a{sv}'
    assert got.equal(data)
    bus.close()


def test_json_nonfinite_and_unsupported(mosquitto):
    """NaN and infinities travel as JSON strings and come back as doubles;
    data JSON cannot hold is refused with UNSUPPORTED_DATA, the bus goes on."""
    bus = Qipc.Bus.new_for_address(mosquitto + '?prefix=py')
    channel = Qipc.Channel.new_for_bus(bus, 'py/odd')
    received = []
    channel.connect('received', lambda c, m, d: received.append((m, d)))
    assert Qipc.Channel.flush_for_bus(bus)

    twice = GLib.Variant.new_array(None, [
        GLib.Variant.new_dict_entry(GLib.Variant('s', 'k'), GLib.Variant('v', GLib.Variant('i', n)))
        for n in (1, 2)])
    just_nothing = GLib.Variant.new_maybe(None, GLib.Variant.new_maybe(GLib.VariantType('i'), None))
    for data in (twice, just_nothing):
        with pytest.raises(GLib.Error) as excinfo:
            Qipc.Channel.send_for_bus(bus, 'py/odd', 'no', data)
        assert excinfo.value.matches(Qipc.bus_error_quark(), Qipc.BusError.UNSUPPORTED_DATA)

    Qipc.Channel.send_for_bus(bus, 'py/odd', 'yes', GLib.Variant('ad', [float('nan'), float('inf'), -1.5]))
    wait_for(received)
    [(message, got)] = received
    assert message == 'yes'
    nan, inf, other = got.unpack()
    assert nan != nan and inf == float('inf') and other == -1.5
    bus.close()
