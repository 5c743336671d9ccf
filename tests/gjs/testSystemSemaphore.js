// testSystemSemaphore.js: QipcSystemSemaphore from GJS, across real processes
//
// SPDX-License-Identifier: LGPL-2.1-or-later

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Qipc from 'gi://Qipc?version=1.0';

import {
    assert, assertEqual, assertRejects, assertThrows, delay,
    onCleanup, run, spawn, test, uniqueKey, withTimeout, LINE_TIMEOUT_MS,
} from './testlib.js';

Gio._promisify(Qipc.SystemSemaphore.prototype, 'acquire_async', 'acquire_finish');

const Access = Qipc.SystemSemaphoreAccess;
const E = Qipc.SystemSemaphoreError;
const DOMAIN = Qipc.system_semaphore_error_quark();
const MAX = Qipc.SYSTEM_SEMAPHORE_MAX_VALUE;

// A semaphore that is removed at the end of the test, whatever the garbage
// collector does.
function newSem(key, value = 0, access = Access.CREATE) {
    const sem = Qipc.SystemSemaphore.new(key, value, access);
    onCleanup(() => {
        try {
            sem.remove();
        } catch {
            // Already removed by the test.
        }
    });
    return sem;
}

function acquireAsync(sem, cancellable = null) {
    return withTimeout(sem.acquire_async(cancellable), LINE_TIMEOUT_MS, 'acquire_async');
}

test('/system-semaphore/acquire-release', async () => {
    const key = uniqueKey();
    const sem = newSem(key, 2);
    assertEqual(sem.get_key(), key);
    assert(sem.get_native_key().startsWith('0x'), sem.get_native_key());
    assertEqual(sem.get_value(), 2);

    assertEqual(sem.acquire(), true);
    assertEqual(sem.get_value(), 1);
    assertEqual(sem.try_acquire(0), true);
    assertEqual(sem.get_value(), 0);

    assertEqual(sem.try_acquire(0), false);
    const start = GLib.get_monotonic_time();
    assertEqual(sem.try_acquire(200), false);
    // Not a timing test: only that the call did wait instead of failing at once.
    assert(GLib.get_monotonic_time() - start >= 100000, 'try_acquire(200) did not wait');
    assertEqual(sem.get_value(), 0);

    assertEqual(sem.release(1), true);
    assertEqual(sem.get_value(), 1);
    assertEqual(sem.try_acquire(1000), true);
    assertEqual(sem.release(3), true);
    assertEqual(sem.get_value(), 3);
    assertEqual(sem.release(0), true);
    assertEqual(sem.get_value(), 3);
});

test('/system-semaphore/open-shares-value', () => {
    const key = uniqueKey();
    const creator = newSem(key, 5);
    const opener = Qipc.SystemSemaphore.new(key, 1, Access.OPEN);
    assertEqual(opener.get_value(), 5, 'OPEN does not reset');
    assertEqual(opener.get_native_key(), creator.get_native_key());
    assertEqual(opener.try_acquire(0), true);
    assertEqual(creator.get_value(), 4);
    const again = newSem(key, 1, Access.CREATE);
    assertEqual(opener.get_value(), 1, 'CREATE resets');
    assertEqual(again.get_value(), 1);
});

test('/system-semaphore/ping-pong', async () => {
    const ping = newSem(uniqueKey('ping'), 0);
    const pong = newSem(uniqueKey('pong'), 0);
    const rounds = 50;
    const child = spawn('sem-ping-pong', ping.get_key(), pong.get_key(), `${rounds}`);
    await child.expect('ready');
    for (let i = 0; i < rounds; i++) {
        assertEqual(ping.release(1), true);
        // The wait blocks this thread, so it is bounded by try_acquire itself.
        assertEqual(pong.try_acquire(30000), true, `round ${i}: the child handed the unit back`);
        assertEqual(ping.get_value(), 0);
        assertEqual(pong.get_value(), 0);
    }
    await child.expect('done');
    assertEqual(await child.wait(), 0);
});

test('/system-semaphore/child-waits-for-release', async () => {
    const key = uniqueKey();
    const sem = newSem(key, 0);
    const child = spawn('sem-acquire', key);
    await child.expect('waiting');
    await delay(100);
    sem.release(1);
    await child.expect('acquired');
    assertEqual(await child.wait(), 0);
    // A normal exit keeps what was acquired (next test).
    assertEqual(sem.get_value(), 0);
});

test('/system-semaphore/normal-exit-keeps-acquisitions', async () => {
    // "A process that exits normally keeps what it acquired and did not
    // release" (qipc-system-semaphore.c); only death without exit
    // handlers gives it back.
    const key = uniqueKey();
    const sem = newSem(key, 5);
    const child = spawn('sem-hold', key, '2');
    await child.expect('acquired');
    assertEqual(sem.get_value(), 3);
    assertEqual(await child.wait(), 0);
    assertEqual(sem.get_value(), 3);
});

// Committing the held units at exit must work even when adding them first
// would pass 32767.
test('/system-semaphore/normal-exit-keeps-acquisitions-near-max', async () => {
    const key = uniqueKey();
    const sem = newSem(key, MAX);
    const child = spawn('sem-hold', key, '2');
    await child.expect('acquired');
    assertEqual(sem.get_value(), MAX - 2);
    sem.release(1);
    assertEqual(sem.get_value(), MAX - 1);
    assertEqual(await child.wait(), 0);
    assertEqual(sem.get_value(), MAX - 1);
});

test('/system-semaphore/killed-holder-gives-back', async () => {
    const key = uniqueKey();
    const sem = newSem(key, 3);
    const child = spawn('sem-hold', key, '2');
    await child.expect('acquired');
    assertEqual(sem.get_value(), 1);
    await child.kill();
    assertEqual(sem.get_value(), 3);
});

test('/system-semaphore/killed-holder-gives-back-only-what-it-holds', async () => {
    const key = uniqueKey();
    const sem = newSem(key, 5);
    const child = spawn('sem-hold', key, '3');
    await child.expect('acquired');
    assertEqual(sem.get_value(), 2);
    child.send('release 1');
    await child.expect('released');
    assertEqual(sem.get_value(), 3);
    await child.kill();
    assertEqual(sem.get_value(), 5, 'it still held 2');
});

test('/system-semaphore/posts-stay', async () => {
    const key = uniqueKey();
    const sem = newSem(key, 0);
    let child = spawn('sem-release', key, '5');
    await child.expect('released');
    assertEqual(await child.wait(), 0);
    assertEqual(sem.get_value(), 5);

    // Even from a process killed right after posting.
    child = spawn('sem-hold', key, '0');
    await child.expect('acquired');
    child.send('release 2');
    await child.expect('released');
    await child.kill();
    assertEqual(sem.get_value(), 7);
});

test('/system-semaphore/release-past-holdings-stays', async () => {
    const key = uniqueKey();
    const sem = newSem(key, 2);
    const child = spawn('sem-hold', key, '1');
    await child.expect('acquired');
    assertEqual(sem.get_value(), 1);
    child.send('release 3');
    await child.expect('released');
    assertEqual(sem.get_value(), 4);
    assertEqual(await child.wait(), 0);
    assertEqual(sem.get_value(), 4);
});

test('/system-semaphore/many-posts-from-one-process', async () => {
    // 40000 posts in all from one process, more than SEMVMX past what it
    // ever acquired: plain SEM_UNDO cannot do that.
    const key = uniqueKey();
    const sem = newSem(key, 0);
    const child = spawn('sem-hold', key, '0');
    await child.expect('acquired');
    child.send('release 20000');
    await child.expect('released');
    assertEqual(sem.get_value(), 20000);
    for (let i = 0; i < 20000; i++)
        assertEqual(sem.try_acquire(0), true);
    assertEqual(sem.get_value(), 0);
    child.send('release 20000');
    await child.expect('released');
    assertEqual(await child.wait(), 0);
    assertEqual(sem.get_value(), 20000);
});

test('/system-semaphore/acquire-async', async () => {
    const key = uniqueKey();
    const sem = newSem(key, 0);
    const events = [];
    const acquired = acquireAsync(sem).then(result => events.push(['acquired', result]));
    await delay(200);
    events.push('tick');
    const child = spawn('sem-release', key, '1');
    await acquired;
    assertEqual(events, ['tick', ['acquired', true]]);
    assertEqual(await child.wait(), 0);
    assertEqual(sem.get_value(), 0);
});

test('/system-semaphore/acquire-async-cancelled', async () => {
    const sem = newSem(uniqueKey(), 0);
    const cancellable = new Gio.Cancellable();
    const acquired = acquireAsync(sem, cancellable);
    await delay(200);
    cancellable.cancel();
    await assertRejects(acquired, Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED);
    assertEqual(sem.get_value(), 0);

    // The worker may linger a moment after the cancellation; a unit
    // released now must not be eaten by it.
    sem.release(1);
    await delay(400);
    assertEqual(sem.get_value(), 1);

    // Cancelled before the call: completes with CANCELLED too.
    await assertRejects(acquireAsync(sem, cancellable), Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED);
    await delay(200);
    assertEqual(sem.get_value(), 1);

    assertEqual(await acquireAsync(sem, new Gio.Cancellable()), true);
    assertEqual(sem.get_value(), 0);
});

test('/system-semaphore/error/already-exists', () => {
    const key = uniqueKey();
    const first = newSem(key, 3, Access.CREATE_EXCLUSIVE);
    assertEqual(first.get_value(), 3);
    const e = assertThrows(() => newSem(key, 1, Access.CREATE_EXCLUSIVE), DOMAIN, E.ALREADY_EXISTS);
    assert(e.message.includes(key), e.message);
    assertEqual(first.get_value(), 3);
});

test('/system-semaphore/error/out-of-resources', () => {
    const key = uniqueKey();
    const sem = newSem(key, MAX - 2);
    assertThrows(() => sem.release(3), DOMAIN, E.OUT_OF_RESOURCES);
    assertEqual(sem.get_value(), MAX - 2);
    assertEqual(sem.release(2), true);
    assertEqual(sem.get_value(), MAX);
    assertThrows(() => sem.release(1), DOMAIN, E.OUT_OF_RESOURCES);
    assertEqual(sem.get_value(), MAX);

    sem.acquire();
    assertThrows(() => sem.release(MAX + 1), DOMAIN, E.OUT_OF_RESOURCES);
    assertEqual(sem.get_value(), MAX - 1);

    assertThrows(() => newSem(`${key}/too-big`, MAX + 1), DOMAIN, E.OUT_OF_RESOURCES);
});

test('/system-semaphore/error/not-found-after-remove', async () => {
    const key = uniqueKey();
    const sem = newSem(key, 0);
    const user = Qipc.SystemSemaphore.new(key, 0, Access.OPEN);
    const child = spawn('sem-acquire', key);
    await child.expect('waiting');

    const waiting = acquireAsync(user);
    await delay(100);
    assertEqual(sem.remove(), true);

    await assertRejects(waiting, DOMAIN, E.NOT_FOUND, 'a waiter in this process');
    const line = await child.expect('error ');
    assertEqual(line.split(' ').slice(1, 3), ['qipc-system-semaphore-error-quark', `${E.NOT_FOUND}`]);
    assertEqual(await child.wait(), 2);

    for (const [what, call] of [
        ['get_value', () => user.get_value()],
        ['acquire', () => user.acquire()],
        ['try_acquire', () => user.try_acquire(0)],
        ['release', () => user.release(1)],
        ['creator get_value', () => sem.get_value()],
        ['creator release', () => sem.release(1)],
        ['creator remove', () => sem.remove()],
    ])
        assertThrows(call, DOMAIN, E.NOT_FOUND, what);

    const fresh = newSem(key, 4, Access.OPEN);
    assertEqual(fresh.get_value(), 4, 'the next open creates a new one');
});

test('/system-semaphore/error/key', () => {
    assertThrows(() => Qipc.SystemSemaphore.new('', 0, Access.OPEN), DOMAIN, E.KEY_ERROR);
});

run();
