# test_system_semaphore.py: QipcSystemSemaphore from Python, across real processes
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import time

import gi
import pytest

gi.require_version('GLib', '2.0')
gi.require_version('Gio', '2.0')
gi.require_version('Qipc', '1.0')
from gi.repository import Gio, GLib, Qipc  # noqa: E402

from conftest import iterate_for, run_loop  # noqa: E402

Access = Qipc.SystemSemaphoreAccess
Error = Qipc.SystemSemaphoreError
MAX = Qipc.SYSTEM_SEMAPHORE_MAX_VALUE


@pytest.fixture
def new_sem():
    """new_sem(key, value, access) opens a semaphore that is removed at the end."""
    made = []

    def new(key, value=0, access=Access.CREATE):
        sem = Qipc.SystemSemaphore.new(key, value, access)
        made.append(sem)
        return sem

    yield new
    for sem in made:
        try:
            sem.remove()
        except GLib.Error:
            pass


def acquire_async(sem, cancellable=None, cancel_after_ms=None):
    """Runs acquire_async() to completion on a main loop; returns True or the GLib.Error."""
    loop = GLib.MainLoop.new(None, False)
    results = []

    def on_done(obj, result, user_data):
        try:
            results.append(obj.acquire_finish(result))
        except GLib.Error as e:
            results.append(e)
        loop.quit()

    sem.acquire_async(cancellable, on_done, None)
    if cancel_after_ms is not None:
        def cancel():
            cancellable.cancel()
            return GLib.SOURCE_REMOVE
        GLib.timeout_add(cancel_after_ms, cancel)
    run_loop(loop)
    assert len(results) == 1
    return results[0]


def test_acquire_release_try_acquire(key, new_sem):
    sem = new_sem(key, 2)
    assert sem.get_key() == key
    assert sem.get_native_key().startswith('0x')
    assert sem.get_value() == 2

    assert sem.acquire() is True
    assert sem.get_value() == 1
    assert sem.try_acquire(0) is True
    assert sem.get_value() == 0

    # Nothing left: no wait, a bounded wait, both report a timeout, not an error.
    assert sem.try_acquire(0) is False
    start = time.monotonic()
    assert sem.try_acquire(200) is False
    # Not a timing test: only that the call did wait instead of failing at once.
    assert time.monotonic() - start >= 0.1
    assert sem.get_value() == 0

    assert sem.release(1) is True
    assert sem.get_value() == 1
    assert sem.try_acquire(1000) is True
    assert sem.release(3) is True
    assert sem.get_value() == 3
    assert sem.release(0) is True
    assert sem.get_value() == 3


def test_open_shares_the_value(key, new_sem):
    creator = new_sem(key, 5)
    opener = Qipc.SystemSemaphore.new(key, 1, Access.OPEN)
    # OPEN does not reset an existing semaphore.
    assert opener.get_value() == 5
    assert opener.get_native_key() == creator.get_native_key()
    assert opener.try_acquire(0) is True
    assert creator.get_value() == 4
    # CREATE takes it over and resets it.
    again = new_sem(key, 1, Access.CREATE)
    assert opener.get_value() == 1
    assert again.get_value() == 1


def test_two_processes_hand_a_unit_back_and_forth(make_key, new_sem, spawn):
    ping = new_sem(make_key('ping'), 0)
    pong = new_sem(make_key('pong'), 0)
    rounds = 50
    child = spawn('sem-ping-pong', ping.get_key(), pong.get_key(), str(rounds))
    child.expect('ready')
    for i in range(rounds):
        assert ping.release(1) is True
        assert pong.try_acquire(30000) is True, f'round {i}: the child did not hand the unit back'
        # Exactly one unit in play: nothing is left on either side.
        assert ping.get_value() == 0
        assert pong.get_value() == 0
    child.expect('done')
    assert child.wait() == 0
    assert ping.get_value() == 0
    assert pong.get_value() == 0


def test_child_blocked_in_acquire_wakes_on_release(key, new_sem, spawn):
    sem = new_sem(key, 0)
    child = spawn('sem-acquire', key)
    child.expect('waiting')
    iterate_for(100)
    assert child.proc.poll() is None
    sem.release(1)
    child.expect('acquired')
    assert child.wait() == 0
    # A normal exit keeps what was acquired (see the next test).
    assert sem.get_value() == 0


def test_normal_exit_keeps_acquisitions(key, new_sem, spawn):
    # "A process that exits normally keeps what it acquired and did not
    # release: a consumer that took ten items and exits has consumed them"
    # (qipc-system-semaphore.c); only death without exit handlers gives
    # them back (next tests).
    sem = new_sem(key, 5)
    child = spawn('sem-hold', key, '2')
    child.expect('acquired')
    assert sem.get_value() == 3
    assert child.wait() == 0
    assert sem.get_value() == 3


# Committing the held units at exit must work even when adding them first
# would pass 32767.
def test_normal_exit_keeps_acquisitions_near_max(key, new_sem, spawn):
    sem = new_sem(key, MAX)
    child = spawn('sem-hold', key, '2')
    child.expect('acquired')
    assert sem.get_value() == MAX - 2
    sem.release(1)
    assert sem.get_value() == MAX - 1
    assert child.wait() == 0
    assert sem.get_value() == MAX - 1


def test_killed_holder_gives_its_units_back(key, new_sem, spawn):
    sem = new_sem(key, 3)
    child = spawn('sem-hold', key, '2')
    child.expect('acquired')
    assert sem.get_value() == 1
    child.kill()
    assert sem.get_value() == 3


def test_killed_holder_gives_back_only_what_it_still_holds(key, new_sem, spawn):
    sem = new_sem(key, 5)
    child = spawn('sem-hold', key, '3')
    child.expect('acquired')
    assert sem.get_value() == 2
    child.send('release 1')
    child.expect('released')
    assert sem.get_value() == 3
    child.kill()
    # It still held 2.
    assert sem.get_value() == 5


def test_posts_of_exited_process_stay(key, new_sem, spawn):
    sem = new_sem(key, 0)
    child = spawn('sem-release', key, '5')
    child.expect('released')
    assert child.wait() == 0
    assert sem.get_value() == 5

    # Even from a process killed right after posting.
    child = spawn('sem-hold', key, '0')
    child.expect('acquired')
    child.send('release 2')
    child.expect('released')
    child.kill()
    assert sem.get_value() == 7


def test_release_past_holdings_stays(key, new_sem, spawn):
    # A process that acquires 1 and releases 3: one release cancels its
    # acquisition, two are posts that must outlive it.
    sem = new_sem(key, 2)
    child = spawn('sem-hold', key, '1')
    child.expect('acquired')
    assert sem.get_value() == 1
    child.send('release 3')
    child.expect('released')
    assert sem.get_value() == 4
    assert child.wait() == 0
    assert sem.get_value() == 4


def test_many_posts_from_one_process_stay(key, new_sem, spawn):
    # One process posts 40000 units in all, more than SEMVMX (32767) past
    # what it ever acquired; plain SEM_UNDO cannot do that, qipc must.
    sem = new_sem(key, 0)
    child = spawn('sem-hold', key, '0')
    child.expect('acquired')
    child.send('release 20000')
    child.expect('released')
    assert sem.get_value() == 20000
    for _ in range(20000):
        assert sem.try_acquire(0) is True
    assert sem.get_value() == 0
    child.send('release 20000')
    child.expect('released')
    assert child.wait() == 0
    assert sem.get_value() == 20000


def test_acquire_async_completes_when_other_process_releases(key, new_sem, spawn):
    sem = new_sem(key, 0)
    loop = GLib.MainLoop.new(None, False)
    events = []

    def on_done(obj, result, user_data):
        try:
            events.append(('done', obj.acquire_finish(result)))
        except GLib.Error as e:
            events.append(('error', e.message))
        loop.quit()

    child = None

    def post_from_child():
        nonlocal child
        events.append('tick')
        child = spawn('sem-release', key, '1')
        return GLib.SOURCE_REMOVE

    sem.acquire_async(None, on_done, None)
    GLib.timeout_add(200, post_from_child)
    run_loop(loop)
    assert events == ['tick', ('done', True)]
    assert child.wait() == 0
    assert sem.get_value() == 0
    sem.release(1)
    assert sem.get_value() == 1


def test_acquire_async_cancelled(key, new_sem):
    sem = new_sem(key, 0)
    cancellable = Gio.Cancellable.new()
    result = acquire_async(sem, cancellable, cancel_after_ms=200)
    assert isinstance(result, GLib.Error)
    assert result.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    assert sem.get_value() == 0

    # The worker may linger for a moment after the cancellation; a unit
    # released now must not be eaten by it.
    sem.release(1)
    iterate_for(400)
    assert sem.get_value() == 1

    # Already cancelled before the call: completes with CANCELLED too.
    result = acquire_async(sem, cancellable)
    assert isinstance(result, GLib.Error)
    assert result.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    iterate_for(200)
    assert sem.get_value() == 1

    # And an uncancelled one takes the unit.
    assert acquire_async(sem, Gio.Cancellable.new()) is True
    assert sem.get_value() == 0


def test_already_exists_with_create_exclusive(key, new_sem, sem_error):
    first = new_sem(key, 3, Access.CREATE_EXCLUSIVE)
    assert first.get_value() == 3
    with pytest.raises(GLib.Error) as excinfo:
        new_sem(key, 1, Access.CREATE_EXCLUSIVE)
    sem_error(excinfo, Error.ALREADY_EXISTS)
    assert key in excinfo.value.message
    # The existing one is untouched.
    assert first.get_value() == 3


def test_out_of_resources(key, new_sem, sem_error):
    sem = new_sem(key, MAX - 2)
    with pytest.raises(GLib.Error) as excinfo:
        sem.release(3)
    sem_error(excinfo, Error.OUT_OF_RESOURCES)
    assert sem.get_value() == MAX - 2
    assert sem.release(2) is True
    assert sem.get_value() == MAX
    with pytest.raises(GLib.Error) as excinfo:
        sem.release(1)
    sem_error(excinfo, Error.OUT_OF_RESOURCES)
    assert sem.get_value() == MAX

    sem.acquire()
    with pytest.raises(GLib.Error) as excinfo:
        sem.release(MAX + 1)
    sem_error(excinfo, Error.OUT_OF_RESOURCES)
    assert sem.get_value() == MAX - 1

    with pytest.raises(GLib.Error) as excinfo:
        new_sem(key + '/too-big', MAX + 1)
    sem_error(excinfo, Error.OUT_OF_RESOURCES)


def test_not_found_after_remove(key, new_sem, sem_error, spawn):
    sem = new_sem(key, 0)
    user = Qipc.SystemSemaphore.new(key, 0, Access.OPEN)
    child = spawn('sem-acquire', key)
    child.expect('waiting')

    # A waiter in this process, too.
    loop = GLib.MainLoop.new(None, False)
    results = []

    def on_done(obj, result, user_data):
        try:
            results.append(obj.acquire_finish(result))
        except GLib.Error as e:
            results.append(e)
        loop.quit()

    user.acquire_async(None, on_done, None)
    iterate_for(100)

    assert sem.remove() is True

    run_loop(loop)
    assert len(results) == 1 and isinstance(results[0], GLib.Error)
    assert results[0].matches(Qipc.system_semaphore_error_quark(), Error.NOT_FOUND)

    line = child.expect('error ')
    assert line.split()[1:3] == ['qipc-system-semaphore-error-quark', str(int(Error.NOT_FOUND))], line
    assert child.wait() == 2

    for call in (lambda: user.get_value(), lambda: user.acquire(), lambda: user.try_acquire(0),
                 lambda: user.release(1), lambda: sem.get_value(), lambda: sem.release(1),
                 lambda: sem.remove()):
        with pytest.raises(GLib.Error) as excinfo:
            call()
        sem_error(excinfo, Error.NOT_FOUND)

    # The next open creates a new semaphore.
    fresh = new_sem(key, 4, Access.OPEN)
    assert fresh.get_value() == 4


def test_key_error(sem_error):
    with pytest.raises(GLib.Error) as excinfo:
        Qipc.SystemSemaphore.new('', 0, Access.OPEN)
    sem_error(excinfo, Error.KEY_ERROR)
