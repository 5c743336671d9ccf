# test_shared_memory.py: QipcSharedMemory from Python, across real processes
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os

import gi
import pytest

gi.require_version('GLib', '2.0')
gi.require_version('Gio', '2.0')
gi.require_version('Qipc', '1.0')
from gi.repository import Gio, GLib, Qipc  # noqa: E402

from conftest import iterate_for, run_loop  # noqa: E402

RW = Qipc.SharedMemoryAccess.READ_WRITE
RO = Qipc.SharedMemoryAccess.READ_ONLY
Error = Qipc.SharedMemoryError


def text_at(shm, offset, length):
    return shm.read(offset, length).get_data().rstrip(b'\0').decode()


def put(shm, offset, data):
    shm.write(offset, GLib.Bytes.new(data))


# --- round trips ---------------------------------------------------------

def test_round_trip_between_processes(key, spawn):
    shm = Qipc.SharedMemory.new(key)
    shm.create(4096, RW)
    assert shm.is_attached()
    assert shm.get_size() == 4096
    assert shm.props.size == 4096
    assert shm.get_key() == key
    assert shm.get_access() == RW
    assert shm.get_native_key().startswith('/dev/shm/qipc-shm-')
    assert os.path.exists(shm.get_native_key())
    # A fresh segment is zeroed.
    assert shm.read(0, 4096).get_data() == bytes(4096)

    put(shm, 0, b'hello from the parent')
    child = spawn('shm-read', key, '0', '64')
    assert child.expect('read ') == 'read hello from the parent'
    assert child.expect('access ') == 'access rw'
    assert child.wait() == 0

    child = spawn('shm-write', key, '1000', 'hello from the child')
    child.expect('written')
    assert child.wait() == 0
    assert text_at(shm, 1000, 64) == 'hello from the child'
    # The child's detach did not take the segment away from us.
    assert text_at(shm, 0, 64) == 'hello from the parent'


def test_last_detach_destroys_the_segment(key, spawn):
    shm = Qipc.SharedMemory.new(key)
    shm.create(128, RW)
    path = shm.get_native_key()
    put(shm, 0, b'gone soon')
    assert shm.detach()
    assert not shm.is_attached()
    assert shm.get_size() == 0
    assert not shm.detach()
    assert not os.path.exists(path)

    child = spawn('shm-read', key, '0', '16')
    line = child.expect('error ')
    assert line.split()[2] == str(int(Error.NOT_FOUND)), line
    assert child.wait() == 2


def test_read_only_attachment(key, spawn, shm_error):
    shm = Qipc.SharedMemory.new(key)
    shm.create(256, RW)
    put(shm, 10, b'read me')

    reader = Qipc.SharedMemory.new(key)
    reader.attach(RO)
    assert reader.get_access() == RO
    assert reader.get_size() == 256
    assert text_at(reader, 10, 16) == 'read me'

    with pytest.raises(GLib.Error) as excinfo:
        reader.write(0, GLib.Bytes.new(b'nope'))
    assert excinfo.value.matches(Qipc.shared_memory_error_quark(), Qipc.SharedMemoryError.PERMISSION_DENIED)
    assert excinfo.value.domain == 'qipc-shared-memory-error-quark'
    assert key in excinfo.value.message
    # Nothing was written.
    assert shm.read(0, 10).get_data() == bytes(10)

    # The writer's changes are visible through the read-only mapping.
    put(shm, 10, b'changed')
    assert text_at(reader, 10, 16) == 'changed'

    # And from another process.
    child = spawn('shm-read', key, '10', '16', 'ro')
    assert child.expect('read ') == 'read changed'
    assert child.expect('access ') == 'access ro'
    assert child.wait() == 0


# --- the lock --------------------------------------------------------------

def test_lock_recovered_after_holder_is_killed(key, spawn):
    shm = Qipc.SharedMemory.new(key)
    shm.create(64, RW)
    recovered = []
    shm.connect('lock-recovered', lambda obj: recovered.append(text_at(obj, 0, 16)))

    child = spawn('shm-hold-lock', key, 'half-written')
    child.expect('locked')
    # The child really holds it.
    assert shm.try_lock(0) is False
    assert shm.try_lock(50) is False
    assert recovered == []

    child.kill()

    assert shm.lock() is True
    # Emitted once, before lock() returned, with the data still there to repair.
    assert recovered == ['half-written']
    put(shm, 0, bytes(16))
    assert shm.unlock() is True

    # The lock is consistent again: no more recovery.
    assert shm.lock() is True
    assert shm.unlock() is True
    assert recovered == ['half-written']

    # And another process can take it normally.
    child = spawn('shm-write', key, '0', 'after')
    child.expect('written')
    assert child.wait() == 0
    assert text_at(shm, 0, 16) == 'after'


def test_lock_async_waits_for_other_process(key, spawn):
    shm = Qipc.SharedMemory.new(key)
    shm.create(64, RW)
    child = spawn('shm-hold-lock', key, 'from child')
    child.expect('locked')
    assert shm.try_lock(0) is False

    loop = GLib.MainLoop.new(None, False)
    events = []

    def on_locked(obj, result, user_data):
        try:
            events.append(('locked', obj.lock_finish(result)))
        except GLib.Error as e:
            events.append(('error', e.message))
        loop.quit()

    def tell_child_to_unlock():
        # The main loop kept running while the lock was taken elsewhere.
        events.append('tick')
        child.send('unlock')
        return GLib.SOURCE_REMOVE

    shm.lock_async(None, on_locked, None)
    GLib.timeout_add(300, tell_child_to_unlock)
    run_loop(loop)

    assert events == ['tick', ('locked', True)]
    child.expect('unlocked')
    assert text_at(shm, 0, 16) == 'from child'
    # The lock is ours now, on this thread: locking again is an error,
    # unlocking works.
    with pytest.raises(GLib.Error) as excinfo:
        shm.lock()
    assert excinfo.value.matches(Qipc.shared_memory_error_quark(), Error.LOCK_ERROR)
    assert shm.unlock() is True
    assert child.wait() == 0


def test_lock_async_free_lock_completes_at_once(key):
    shm = Qipc.SharedMemory.new(key)
    shm.create(64, RW)
    loop = GLib.MainLoop.new(None, False)
    results = []

    def on_locked(obj, result, user_data):
        results.append(obj.lock_finish(result))
        loop.quit()

    shm.lock_async(None, on_locked, None)
    run_loop(loop)
    assert results == [True]
    assert shm.unlock() is True


def test_lock_async_recovers_from_killed_holder(key, spawn):
    shm = Qipc.SharedMemory.new(key)
    shm.create(64, RW)
    recovered = []
    shm.connect('lock-recovered', lambda obj: recovered.append(True))
    child = spawn('shm-hold-lock', key)
    child.expect('locked')

    loop = GLib.MainLoop.new(None, False)
    results = []

    def on_locked(obj, result, user_data):
        try:
            results.append(obj.lock_finish(result))
        except GLib.Error as e:
            results.append(e)
        loop.quit()

    def kill_child():
        child.kill()
        return GLib.SOURCE_REMOVE

    shm.lock_async(None, on_locked, None)
    GLib.timeout_add(200, kill_child)
    run_loop(loop)
    assert results == [True]
    assert recovered == [True]
    assert shm.unlock() is True


def test_lock_async_cancelled(key, spawn):
    shm = Qipc.SharedMemory.new(key)
    shm.create(64, RW)
    child = spawn('shm-hold-lock', key)
    child.expect('locked')

    loop = GLib.MainLoop.new(None, False)
    cancellable = Gio.Cancellable.new()
    results = []

    def on_locked(obj, result, user_data):
        try:
            results.append(obj.lock_finish(result))
        except GLib.Error as e:
            results.append(e)
        loop.quit()

    def cancel():
        cancellable.cancel()
        return GLib.SOURCE_REMOVE

    shm.lock_async(cancellable, on_locked, None)
    GLib.timeout_add(200, cancel)
    run_loop(loop)
    assert len(results) == 1 and isinstance(results[0], GLib.Error)
    assert results[0].matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)

    # We do not hold the lock: the child still does, and it can unlock.
    child.send('unlock')
    child.expect('unlocked')
    assert shm.try_lock(5000) is True
    assert shm.unlock() is True
    assert child.wait() == 0


# --- lifetime and stale segments -------------------------------------------

def test_killed_creator_leaves_nothing_to_attach(key, spawn, shm_error):
    child = spawn('shm-create-and-hold', key, '4096', 'left behind')
    path = child.expect('created ').split(' ', 1)[1]
    assert os.path.exists(path)

    # While the creator lives, its segment is there for us.
    peer = Qipc.SharedMemory.new(key)
    peer.attach(RO)
    assert text_at(peer, 0, 32) == 'left behind'
    peer.detach()

    child.kill()
    # The file is still there: nobody has looked at it since.
    assert os.path.exists(path)

    shm = Qipc.SharedMemory.new(key)
    with pytest.raises(GLib.Error) as excinfo:
        shm.attach(RW)
    shm_error(excinfo, Error.NOT_FOUND)
    assert not shm.is_attached()
    # ... and attach() gave the memory back.
    assert not os.path.exists(path)

    shm.create(4096, RW)
    assert shm.get_size() == 4096
    assert shm.read(0, 4096).get_data() == bytes(4096)


def test_create_replaces_segment_of_killed_creator(key, spawn):
    child = spawn('shm-create-and-hold', key, '8192', 'stale data')
    child.expect('created ')
    child.kill()

    shm = Qipc.SharedMemory.new(key)
    shm.create(100, RW)
    # A fresh, zeroed segment of the size asked for, not the stale one.
    assert shm.get_size() == 100
    assert shm.read(0, 100).get_data() == bytes(100)

    child = spawn('shm-read', key, '0', '100')
    assert child.expect('read') == 'read '
    assert child.wait() == 0


def test_create_fails_while_creator_lives(key, spawn, shm_error):
    child = spawn('shm-create-and-hold', key, '64', 'alive')
    child.expect('created ')

    shm = Qipc.SharedMemory.new(key)
    with pytest.raises(GLib.Error) as excinfo:
        shm.create(64, RW)
    shm_error(excinfo, Error.ALREADY_EXISTS)
    assert key in excinfo.value.message
    assert not shm.is_attached()

    # Still intact for everyone.
    shm.attach(RW)
    assert text_at(shm, 0, 16) == 'alive'
    assert child.wait() == 0
    assert text_at(shm, 0, 16) == 'alive'


# --- change notification ---------------------------------------------------

def test_changed_reaches_other_process(key, spawn):
    shm = Qipc.SharedMemory.new(key)
    shm.create(64, RW)
    own = []
    shm.connect('changed', lambda obj: own.append(True))

    child = spawn('shm-wait-changed', key)
    child.expect('attached')
    shm.lock()
    put(shm, 0, b'news')
    shm.unlock()
    assert shm.notify_changed() is True
    assert child.expect('changed ') == 'changed news'
    assert child.wait() == 0

    # The notifier itself is not woken.
    iterate_for(100)
    assert own == []


def test_changed_from_other_process(key, spawn):
    shm = Qipc.SharedMemory.new(key)
    shm.create(64, RW)
    loop = GLib.MainLoop.new(None, False)
    seen = []

    def on_changed(obj):
        seen.append(text_at(obj, 0, 16))
        loop.quit()

    shm.connect('changed', on_changed)
    child = spawn('shm-notify', key, 'from child')
    child.expect('notified')
    run_loop(loop)
    assert seen == ['from child']
    assert child.wait() == 0


def test_changed_between_objects_in_one_process(key):
    writer = Qipc.SharedMemory.new(key)
    writer.create(64, RW)
    reader = Qipc.SharedMemory.new(key)
    reader.attach(RO)
    loop = GLib.MainLoop.new(None, False)
    seen = []

    def on_changed(obj):
        seen.append(True)
        loop.quit()

    reader.connect('changed', on_changed)
    # Several notifications before the reader runs may merge into one.
    writer.notify_changed()
    writer.notify_changed()
    writer.notify_changed()
    run_loop(loop)
    iterate_for(100)
    assert 1 <= len(seen) <= 3


# --- errors ------------------------------------------------------------------

def test_key_error_for_empty_key(shm_error):
    shm = Qipc.SharedMemory.new('')
    assert shm.get_native_key() is None
    with pytest.raises(GLib.Error) as excinfo:
        shm.create(16, RW)
    shm_error(excinfo, Error.KEY_ERROR)
    with pytest.raises(GLib.Error) as excinfo:
        shm.attach(RW)
    shm_error(excinfo, Error.KEY_ERROR)


# Create or attach on an object that is already attached is a state error.
def test_failed_when_already_attached(key, shm_error):
    shm = Qipc.SharedMemory.new(key)
    shm.create(16, RW)
    with pytest.raises(GLib.Error) as excinfo:
        shm.create(16, RW)
    shm_error(excinfo, Error.FAILED)
    with pytest.raises(GLib.Error) as excinfo:
        shm.attach(RW)
    shm_error(excinfo, Error.FAILED)


def test_already_attached_is_refused(key):
    # The half of the test above that holds today: it fails, and the
    # attachment is untouched.
    shm = Qipc.SharedMemory.new(key)
    shm.create(16, RW)
    put(shm, 0, b'kept')
    with pytest.raises(GLib.Error) as excinfo:
        shm.attach(RW)
    assert excinfo.value.domain == 'qipc-shared-memory-error-quark'
    assert shm.is_attached()
    assert text_at(shm, 0, 16) == 'kept'


def test_invalid_size(key, shm_error):
    shm = Qipc.SharedMemory.new(key)
    with pytest.raises(GLib.Error) as excinfo:
        shm.create(0, RW)
    shm_error(excinfo, Error.INVALID_SIZE)
    with pytest.raises(GLib.Error) as excinfo:
        shm.create((1 << 40) + 1, RW)
    shm_error(excinfo, Error.INVALID_SIZE)
    assert not shm.is_attached()

    shm.create(100, RW)
    for offset, length in [(0, 101), (99, 2), (100, 1), (101, 0), (1 << 62, 1), (1, (1 << 64) - 1)]:
        with pytest.raises(GLib.Error) as excinfo:
            shm.read(offset, length)
        shm_error(excinfo, Error.INVALID_SIZE)
    with pytest.raises(GLib.Error) as excinfo:
        shm.write(98, GLib.Bytes.new(b'abc'))
    shm_error(excinfo, Error.INVALID_SIZE)
    # Up to the last byte is fine, and so is nothing at the very end.
    assert shm.read(99, 1).get_data() == b'\0'
    assert shm.read(100, 0).get_data() == b''
    assert shm.write(97, GLib.Bytes.new(b'xyz')) is True
    assert shm.read(97, 3).get_data() == b'xyz'


# The constant keeps its 64-bit type through introspection.
def test_max_size_constant():
    assert Qipc.SHARED_MEMORY_MAX_SIZE == 1 << 40


def test_not_found(key, shm_error):
    shm = Qipc.SharedMemory.new(key)
    with pytest.raises(GLib.Error) as excinfo:
        shm.attach(RW)
    shm_error(excinfo, Error.NOT_FOUND)
    assert key in excinfo.value.message
    with pytest.raises(GLib.Error) as excinfo:
        shm.attach(RO)
    shm_error(excinfo, Error.NOT_FOUND)
    # Not attached: reading, writing and notifying find nothing either.
    with pytest.raises(GLib.Error) as excinfo:
        shm.read(0, 1)
    shm_error(excinfo, Error.NOT_FOUND)
    with pytest.raises(GLib.Error) as excinfo:
        shm.write(0, GLib.Bytes.new(b'x'))
    shm_error(excinfo, Error.NOT_FOUND)
    with pytest.raises(GLib.Error) as excinfo:
        shm.notify_changed()
    shm_error(excinfo, Error.NOT_FOUND)


def test_lock_errors(key, spawn, shm_error):
    shm = Qipc.SharedMemory.new(key)
    # Not attached.
    with pytest.raises(GLib.Error) as excinfo:
        shm.lock()
    shm_error(excinfo, Error.LOCK_ERROR)
    with pytest.raises(GLib.Error) as excinfo:
        shm.try_lock(0)
    shm_error(excinfo, Error.LOCK_ERROR)
    with pytest.raises(GLib.Error) as excinfo:
        shm.unlock()
    shm_error(excinfo, Error.LOCK_ERROR)

    shm.create(16, RW)
    # Not held.
    with pytest.raises(GLib.Error) as excinfo:
        shm.unlock()
    shm_error(excinfo, Error.LOCK_ERROR)
    # Already held by this thread.
    assert shm.lock() is True
    with pytest.raises(GLib.Error) as excinfo:
        shm.lock()
    shm_error(excinfo, Error.LOCK_ERROR)
    with pytest.raises(GLib.Error) as excinfo:
        shm.try_lock(10)
    shm_error(excinfo, Error.LOCK_ERROR)
    assert shm.unlock() is True

    # The lock belongs to the thread: another object on this thread
    # cannot take it either.
    other = Qipc.SharedMemory.new(key)
    other.attach(RW)
    assert shm.lock() is True
    with pytest.raises(GLib.Error) as excinfo:
        other.try_lock(0)
    shm_error(excinfo, Error.LOCK_ERROR)

    # Detaching releases a held lock: a process waiting for it gets it.
    child = spawn('shm-write', key, '0', 'got it')
    iterate_for(200)
    assert child.proc.poll() is None
    shm.detach()
    child.expect('written')
    assert child.wait() == 0
    assert other.try_lock(0) is True
    assert text_at(other, 0, 16) == 'got it'
    assert other.unlock() is True

    # lock_async reports the same error through its callback.
    loop = GLib.MainLoop.new(None, False)
    results = []

    def on_locked(obj, result, user_data):
        try:
            results.append(obj.lock_finish(result))
        except GLib.Error as e:
            results.append(e)
        loop.quit()

    shm.lock_async(None, on_locked, None)
    run_loop(loop)
    assert len(results) == 1 and isinstance(results[0], GLib.Error)
    assert results[0].matches(Qipc.shared_memory_error_quark(), Error.LOCK_ERROR)


def test_prefault(key):
    shm = Qipc.SharedMemory.new(key)
    shm.create(1 << 20, RW)
    assert shm.prefault() is True
    assert shm.read(0, 1 << 20).get_data() == bytes(1 << 20)


def test_permissions_property(key):
    shm = Qipc.SharedMemory.new(key)
    assert shm.get_permissions() == 0o600
    notified = []
    shm.connect('notify::permissions', lambda *args: notified.append(True))
    shm.set_permissions(0o640)
    shm.set_permissions(0o640)
    assert notified == [True]
    assert shm.props.permissions == 0o640
    shm.create(16, RW)
    assert os.stat(shm.get_native_key()).st_mode & 0o777 == 0o640
