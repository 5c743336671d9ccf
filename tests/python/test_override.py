# test_override.py: the PyGObject override gi.overrides.Qipc
# (bindings/python/gi/overrides/Qipc.py), which conftest.py puts before any
# installed copy.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import ctypes
import gc
import os
import struct
import sys
import time

import pytest
from conftest import assert_error
from gi.repository import GLib, Qipc

RW = Qipc.SharedMemoryAccess.READ_WRITE
RO = Qipc.SharedMemoryAccess.READ_ONLY
Access = Qipc.SystemSemaphoreAccess
WAIT_S = 10

OVERRIDE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                         '..', '..', 'bindings', 'python', 'gi',
                                         'overrides', 'Qipc.py'))


def test_the_source_tree_override_is_used():
    module = sys.modules['gi.overrides.Qipc']
    assert os.path.normpath(module.__file__) == OVERRIDE
    # The names resolve to the override's classes, not the introspected ones.
    assert Qipc.Channel.__module__ == 'gi.overrides.Qipc'
    assert Qipc.Channel.send is module.Channel.send
    assert hasattr(Qipc.SharedMemory, 'memoryview')
    assert hasattr(Qipc.SystemSemaphore, 'acquired')
    # ...and the introspected API is still all there.
    assert Qipc.Channel.new_for_bus and Qipc.Channel.flush_async
    assert Qipc.bus_error_quark()


# --- channels ------------------------------------------------------------

@pytest.fixture
def address(request):
    return f'unix:abstract=qipc-py-override-{os.getpid()}-{request.node.name}'


@pytest.fixture
def bus(address):
    broker = Qipc.Broker.new()
    broker.listen(address)
    bus = Qipc.Bus.new_for_address(address)
    yield bus
    bus.close()
    broker.close()


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


def receive_all(bus, name, sends):
    """Sends each (args, kwargs) with send_for_bus on NAME and returns what
    arrives, as (message, type string or None, unpacked value)."""
    channel = Qipc.Channel.new_for_bus(bus, name)
    received = []
    channel.connect('received', lambda c, message, data: received.append(
        (message, data.get_type_string() if data is not None else None,
         data.unpack() if data is not None else None)))
    for args, kwargs in sends:
        assert Qipc.Channel.send_for_bus(bus, name, *args, **kwargs) is True
    wait_for(lambda: len(received) >= len(sends), f'{len(sends)} messages on {name}')
    return received


def test_send_plain_values_and_unpack_them(bus):
    sends = [
        (('dict', {'x': 1, 'name': 'n', 'nested': {'ok': True}}), {}),
        (('list', [1, 2, 3]), {}),
        (('mixed', [1, 'a', 2.5]), {}),
        (('empty', []), {}),
        (('int', 42), {}),
        (('bool', True), {}),
        (('float', 0.5), {}),
        (('str', 'héllo ✓'), {}),
        (('bytes', b'\x00\x01\xff'), {}),
        (('tuple', (1, 'a', [b'x'])), {}),
        (('none', None), {}),
        (('none-by-default',), {}),
        (('variant', GLib.Variant('u', 7)), {}),
        (('typed', {'x': 1, 'y': 2}), {'type': 'a{si}'}),
        (('typed-uint', 7), {'type': 'u'}),
    ]
    assert receive_all(bus, 'plain/values', sends) == [
        ('dict', 'a{sv}', {'x': 1, 'name': 'n', 'nested': {'ok': True}}),
        ('list', 'ax', [1, 2, 3]),
        ('mixed', 'av', [1, 'a', 2.5]),
        ('empty', 'av', []),
        ('int', 'x', 42),
        ('bool', 'b', True),
        ('float', 'd', 0.5),
        ('str', 's', 'héllo ✓'),
        ('bytes', 'ay', [0, 1, 255]),
        ('tuple', '(xsaay)', (1, 'a', [[120]])),
        ('none', None, None),
        ('none-by-default', None, None),
        ('variant', 'u', 7),
        ('typed', 'a{si}', {'x': 1, 'y': 2}),
        ('typed-uint', 'u', 7),
    ]


def test_send_on_the_default_bus(bus, address, monkeypatch):
    monkeypatch.setenv('QIPC_BUS_ADDRESS', address)
    try:
        channel = Qipc.Channel.new('default/plain')
        received = []
        channel.connect('received', lambda c, m, data: received.append(data.unpack()))
        assert Qipc.Channel.send('default/plain', 'msg', {'x': 1, 'name': 'n'}) is True
        wait_for(lambda: received, 'a message on the default bus')
        assert received == [{'x': 1, 'name': 'n'}]
    finally:
        Qipc.Bus.get_default().close()


class Opaque:
    pass


@pytest.mark.parametrize('value, named', [
    (Opaque(), 'Opaque'),
    ({'ok': 1, 'bad': Opaque()}, 'Opaque'),
    ({1: 'int key'}, "dict key 1"),
    ([1, None], 'None'),
    ({1, 2}, 'set'),
    (1 << 64, 'int64'),
])
def test_unconvertible_value_raises_type_error(bus, value, named):
    with pytest.raises(TypeError, match=named):
        Qipc.Channel.send_for_bus(bus, 'plain/bad', 'm', value)


def test_value_that_does_not_fit_the_explicit_type(bus):
    with pytest.raises(TypeError, match="'a{si}'"):
        Qipc.Channel.send_for_bus(bus, 'plain/bad', 'm', {'x': 'not an int'}, type='a{si}')
    with pytest.raises(TypeError, match="'s'"):
        Qipc.Channel.send_for_bus(bus, 'plain/bad', 'm', GLib.Variant('u', 1), type='s')


def test_errors_match_domain_and_code(bus):
    with pytest.raises(GLib.Error) as excinfo:
        Qipc.Channel.send_for_bus(bus, 'a//b', 'm', {'x': 1})
    assert_error(excinfo, Qipc.bus_error_quark(), Qipc.BusError.INVALID_NAME)


# --- context managers ----------------------------------------------------

class Boom(Exception):
    pass


def test_locked_unlocks_also_when_the_body_raises(key, spawn, shm_error):
    shm = Qipc.SharedMemory.new(key)
    shm.create(64, RW)
    with shm.locked() as locked:
        assert locked is shm
        # Held by this thread: another lock() is refused.
        with pytest.raises(GLib.Error) as excinfo:
            shm.lock()
        shm_error(excinfo, Qipc.SharedMemoryError.LOCK_ERROR)
    # Released: unlocking again is refused, locking again works.
    with pytest.raises(GLib.Error) as excinfo:
        shm.unlock()
    shm_error(excinfo, Qipc.SharedMemoryError.LOCK_ERROR)

    with pytest.raises(Boom):
        with shm.locked():
            raise Boom()
    # Another process can take the lock now.
    child = spawn('shm-write', key, '0', 'after boom')
    child.expect('written')
    assert child.wait() == 0
    assert shm.read(0, 10).get_data() == b'after boom'


def test_locked_with_timeout(key, spawn):
    shm = Qipc.SharedMemory.new(key)
    shm.create(64, RW)
    holder = spawn('shm-hold-lock', key)
    holder.expect('locked')
    with pytest.raises(TimeoutError, match='lock'):
        with shm.locked(timeout_ms=50):
            pytest.fail('the body ran without the lock')
    holder.send('unlock')
    holder.expect('unlocked')
    with shm.locked(timeout_ms=WAIT_S * 1000):
        assert shm.read(0, 4).get_data() == b'held'
    assert holder.wait() == 0


@pytest.fixture
def sem(key):
    sem = Qipc.SystemSemaphore.new(key, 1, Access.CREATE)
    yield sem
    sem.remove()


def test_acquired_releases_also_when_the_body_raises(sem):
    with sem.acquired() as acquired:
        assert acquired is sem
        assert sem.get_value() == 0
    assert sem.get_value() == 1

    with pytest.raises(Boom):
        with sem.acquired():
            assert sem.get_value() == 0
            raise Boom()
    assert sem.get_value() == 1


def test_acquired_with_timeout(sem):
    with sem.acquired(timeout_ms=0):
        with pytest.raises(TimeoutError, match='semaphore'):
            with sem.acquired(timeout_ms=20):
                pytest.fail('the body ran without the semaphore')
        # The failed entry released nothing.
        assert sem.get_value() == 0
    assert sem.get_value() == 1


def test_acquire_async_callback_form(sem):
    # The documented callback form, with the context manager's release.
    done = []

    def on_acquired(source, result):
        done.append(source.acquire_finish(result))

    with sem.acquired():
        sem.acquire_async(None, on_acquired)
        assert sem.get_value() == 0
    wait_for(lambda: done, 'acquire_async')
    assert done == [True]
    sem.release(1)
    assert sem.get_value() == 1


# --- memoryview ----------------------------------------------------------

def test_memoryview_reads_and_writes_the_segment(key, spawn):
    shm = Qipc.SharedMemory.new(key)
    shm.create(4096, RW)
    view = shm.memoryview()
    assert isinstance(view, memoryview)
    assert (view.format, view.itemsize, view.nbytes, view.readonly) == ('B', 1, 4096, False)
    assert bytes(view) == bytes(4096)

    # Written through the view, seen by another attachment in this process
    # and by another process.
    with shm.locked():
        view[0:5] = b'hello'
        struct.pack_into('<Id', view, 8, 0xdeadbeef, 2.5)
    other = Qipc.SharedMemory.new(key)
    other.attach(RW)
    assert other.read(0, 5).get_data() == b'hello'
    other_view = other.memoryview()
    assert struct.unpack_from('<Id', other_view, 8) == (0xdeadbeef, 2.5)
    child = spawn('shm-read', key, '0', '5', 'ro')
    assert child.expect('read ') == 'read hello'
    assert child.wait() == 0

    # Written by another attachment and another process, seen in the view:
    # zero-copy, not a snapshot.
    other_view[100:103] = b'abc'
    assert bytes(view[100:103]) == b'abc'
    child = spawn('shm-write', key, '200', 'from the child')
    child.expect('written')
    assert child.wait() == 0
    assert bytes(view[200:214]) == b'from the child'


def test_memoryview_is_read_only_on_a_read_only_attachment(key):
    shm = Qipc.SharedMemory.new(key)
    shm.create(64, RW)
    shm.memoryview()[0:4] = b'\x01\x02\x03\x04'
    reader = Qipc.SharedMemory.new(key)
    reader.attach(RO)
    view = reader.memoryview()
    assert view.readonly
    with pytest.raises(TypeError):
        view[0] = 1
    with pytest.raises(TypeError):
        struct.pack_into('<I', view, 0, 1)
    assert struct.unpack_from('<I', view, 0) == (0x04030201,)
    assert bytes(view[:4]) == b'\x01\x02\x03\x04'
    assert bytes(reader.read(0, 4).get_data()) == b'\x01\x02\x03\x04'


def test_memoryview_keeps_the_object_alive(key):
    shm = Qipc.SharedMemory.new(key)
    shm.create(64, RW)
    view = shm.memoryview()[16:32]
    del shm
    gc.collect()
    # The segment stayed attached: the view still works.
    view[0:3] = b'xyz'
    assert bytes(view[0:3]) == b'xyz'
    owner = view.obj
    assert isinstance(owner, ctypes.Array)
    assert owner._qipc_shared_memory.get_key() == key


def test_memoryview_needs_an_attached_segment(key, shm_error):
    shm = Qipc.SharedMemory.new(key)
    with pytest.raises(GLib.Error) as excinfo:
        shm.memoryview()
    shm_error(excinfo, Qipc.SharedMemoryError.FAILED)


def test_memoryview_with_numpy(key):
    import numpy  # build-aux/install-deps.sh installs python3-numpy
    shm = Qipc.SharedMemory.new(key)
    shm.create(64, RW)
    array = numpy.frombuffer(shm.memoryview(), dtype=numpy.uint32)
    array[1] = 42
    assert struct.unpack_from('<I', shm.read(4, 4).get_data()) == (42,)
