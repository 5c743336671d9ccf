// testSharedMemory.js: QipcSharedMemory from GJS, across real processes
//
// SPDX-License-Identifier: LGPL-2.1-or-later

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Qipc from 'gi://Qipc?version=1.0';

import {
    assert, assertEqual, assertRejects, assertThrows, delay, deferred,
    onCleanup, run, spawn, test, uniqueKey, withTimeout, LINE_TIMEOUT_MS,
} from './testlib.js';

Gio._promisify(Qipc.SharedMemory.prototype, 'lock_async', 'lock_finish');

const RW = Qipc.SharedMemoryAccess.READ_WRITE;
const RO = Qipc.SharedMemoryAccess.READ_ONLY;
const E = Qipc.SharedMemoryError;
const DOMAIN = Qipc.shared_memory_error_quark();

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function bytes(text) {
    return new GLib.Bytes(typeof text === 'string' ? encoder.encode(text) : text);
}

function textAt(shm, offset, length) {
    return decoder.decode(shm.read(offset, length).toArray()).replace(/\0+$/, '');
}

function zeroes(n) {
    return new Uint8Array(n);
}

// A SharedMemory object that is detached at the end of the test, whatever
// the garbage collector does.
function newShm(key) {
    const shm = Qipc.SharedMemory.new(key);
    onCleanup(() => shm.detach());
    return shm;
}

function created(key, size = 64) {
    const shm = newShm(key);
    assert(shm.create(size, RW), 'create() returned false');
    return shm;
}

function pathExists(path) {
    return GLib.file_test(path, GLib.FileTest.EXISTS);
}

// Resolves when SHM emits SIGNAL, with the values of GET() at that time.
function nextEmission(shm, signal, get = () => true) {
    const {promise, resolve} = deferred();
    const id = shm.connect(signal, () => {
        shm.disconnect(id);
        resolve(get());
    });
    return withTimeout(promise, LINE_TIMEOUT_MS, `waiting for ::${signal}`);
}

// --- round trips ------------------------------------------------------------

test('/shared-memory/round-trip', async () => {
    const key = uniqueKey();
    const shm = created(key, 4096);
    assert(shm.is_attached());
    assertEqual(shm.get_size(), 4096);
    assertEqual(shm.get_key(), key);
    assertEqual(shm.get_access(), RW);
    assert(shm.get_native_key().startsWith('/dev/shm/qipc-shm-'), shm.get_native_key());
    assert(pathExists(shm.get_native_key()));
    assertEqual(shm.read(0, 4096).toArray(), zeroes(4096), 'a fresh segment is zeroed');

    shm.write(0, bytes('hello from the parent'));
    let child = spawn('shm-read', key, '0', '64');
    assertEqual(await child.expect('read '), 'read hello from the parent');
    assertEqual(await child.expect('access '), 'access rw');
    assertEqual(await child.wait(), 0);

    child = spawn('shm-write', key, '1000', 'hello from the child');
    await child.expect('written');
    assertEqual(await child.wait(), 0);
    assertEqual(textAt(shm, 1000, 64), 'hello from the child');
    assertEqual(textAt(shm, 0, 64), 'hello from the parent');
});

test('/shared-memory/last-detach-destroys', async () => {
    const key = uniqueKey();
    const shm = created(key, 128);
    const path = shm.get_native_key();
    assert(shm.detach());
    assert(!shm.is_attached());
    assertEqual(shm.get_size(), 0);
    assert(!shm.detach(), 'a second detach() returns false');
    assert(!pathExists(path), `${path} is still there`);

    const child = spawn('shm-read', key, '0', '16');
    const line = await child.expect('error ');
    assertEqual(line.split(' ').slice(1, 3), ['qipc-shared-memory-error-quark', `${E.NOT_FOUND}`]);
    assertEqual(await child.wait(), 2);
});

test('/shared-memory/read-only', async () => {
    const key = uniqueKey();
    const shm = created(key, 256);
    shm.write(10, bytes('read me'));

    const reader = newShm(key);
    reader.attach(RO);
    assertEqual(reader.get_access(), RO);
    assertEqual(reader.get_size(), 256);
    assertEqual(textAt(reader, 10, 16), 'read me');

    const e = assertThrows(() => reader.write(0, bytes('nope')), DOMAIN, E.PERMISSION_DENIED);
    assert(e.message.includes(key), e.message);
    assertEqual(shm.read(0, 10).toArray(), zeroes(10), 'nothing was written');

    shm.write(10, bytes('changed'));
    assertEqual(textAt(reader, 10, 16), 'changed');

    const child = spawn('shm-read', key, '10', '16', 'ro');
    assertEqual(await child.expect('read '), 'read changed');
    assertEqual(await child.expect('access '), 'access ro');
    assertEqual(await child.wait(), 0);
});

// --- the lock ---------------------------------------------------------------

test('/shared-memory/lock/recover-after-crash', async () => {
    const key = uniqueKey();
    const shm = created(key);
    const recovered = [];
    shm.connect('lock-recovered', () => recovered.push(textAt(shm, 0, 16)));

    const child = spawn('shm-hold-lock', key, 'half-written');
    await child.expect('locked');
    assertEqual(shm.try_lock(0), false, 'the child holds the lock');
    assertEqual(shm.try_lock(50), false, 'the child holds the lock');
    assertEqual(recovered, []);

    await child.kill();

    assertEqual(shm.lock(), true);
    assertEqual(recovered, ['half-written'], '::lock-recovered before lock() returns');
    shm.write(0, zeroes(16));
    assertEqual(shm.unlock(), true);

    assertEqual(shm.lock(), true);
    assertEqual(shm.unlock(), true);
    assertEqual(recovered.length, 1, 'recovered only once');

    const writer = spawn('shm-write', key, '0', 'after');
    await writer.expect('written');
    assertEqual(await writer.wait(), 0);
    assertEqual(textAt(shm, 0, 16), 'after');
});

test('/shared-memory/lock/async-waits-for-other-process', async () => {
    const key = uniqueKey();
    const shm = created(key);
    const child = spawn('shm-hold-lock', key, 'from child');
    await child.expect('locked');
    assertEqual(shm.try_lock(0), false);

    const events = [];
    const locked = shm.lock_async(null).then(result => events.push(['locked', result]));
    await delay(300);
    // The main loop ran all along, and the lock is still the child's.
    events.push('tick');
    child.send('unlock');
    await withTimeout(locked, LINE_TIMEOUT_MS, 'lock_async');

    assertEqual(events, ['tick', ['locked', true]]);
    await child.expect('unlocked');
    assertEqual(textAt(shm, 0, 16), 'from child');
    assertThrows(() => shm.lock(), DOMAIN, E.LOCK_ERROR, 'the lock is this thread\'s now');
    assertEqual(shm.unlock(), true);
    assertEqual(await child.wait(), 0);
});

test('/shared-memory/lock/async-free-lock', async () => {
    const shm = created(uniqueKey());
    assertEqual(await withTimeout(shm.lock_async(null), LINE_TIMEOUT_MS, 'lock_async'), true);
    assertEqual(shm.unlock(), true);
});

test('/shared-memory/lock/async-recovers-from-crash', async () => {
    const key = uniqueKey();
    const shm = created(key);
    const recovered = [];
    shm.connect('lock-recovered', () => recovered.push(true));
    const child = spawn('shm-hold-lock', key);
    await child.expect('locked');

    const locked = shm.lock_async(null);
    await delay(200);
    await child.kill();
    assertEqual(await withTimeout(locked, LINE_TIMEOUT_MS, 'lock_async'), true);
    assertEqual(recovered, [true]);
    assertEqual(shm.unlock(), true);
});

test('/shared-memory/lock/async-cancelled', async () => {
    const key = uniqueKey();
    const shm = created(key);
    const child = spawn('shm-hold-lock', key);
    await child.expect('locked');

    const cancellable = new Gio.Cancellable();
    const locked = shm.lock_async(cancellable);
    await delay(200);
    cancellable.cancel();
    await assertRejects(withTimeout(locked, LINE_TIMEOUT_MS, 'lock_async'),
        Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED);

    // The child still holds the lock; once it lets go, we can take it.
    child.send('unlock');
    await child.expect('unlocked');
    assertEqual(shm.try_lock(5000), true);
    assertEqual(shm.unlock(), true);
    assertEqual(await child.wait(), 0);
});

// --- lifetime and stale segments -------------------------------------------

test('/shared-memory/stale/attach-finds-nothing', async () => {
    const key = uniqueKey();
    const child = spawn('shm-create-and-hold', key, '4096', 'left behind');
    const path = (await child.expect('created ')).split(' ')[1];
    assert(pathExists(path));

    const peer = newShm(key);
    peer.attach(RO);
    assertEqual(textAt(peer, 0, 32), 'left behind');
    peer.detach();

    await child.kill();
    assert(pathExists(path), 'the file stays until someone looks');

    const shm = newShm(key);
    assertThrows(() => shm.attach(RW), DOMAIN, E.NOT_FOUND);
    assert(!shm.is_attached());
    assert(!pathExists(path), 'attach() gave the memory back');

    assert(shm.create(4096, RW));
    assertEqual(shm.get_size(), 4096);
    assertEqual(shm.read(0, 4096).toArray(), zeroes(4096));
});

test('/shared-memory/stale/create-replaces', async () => {
    const key = uniqueKey();
    const child = spawn('shm-create-and-hold', key, '8192', 'stale data');
    await child.expect('created ');
    await child.kill();

    const shm = created(key, 100);
    assertEqual(shm.get_size(), 100);
    assertEqual(shm.read(0, 100).toArray(), zeroes(100));

    const reader = spawn('shm-read', key, '0', '100');
    assertEqual(await reader.expect('read'), 'read ');
    assertEqual(await reader.wait(), 0);
});

test('/shared-memory/create/already-exists', async () => {
    const key = uniqueKey();
    const child = spawn('shm-create-and-hold', key, '64', 'alive');
    await child.expect('created ');

    const shm = newShm(key);
    const e = assertThrows(() => shm.create(64, RW), DOMAIN, E.ALREADY_EXISTS);
    assert(e.message.includes(key), e.message);
    assert(!shm.is_attached());

    shm.attach(RW);
    assertEqual(textAt(shm, 0, 16), 'alive');
    assertEqual(await child.wait(), 0);
    assertEqual(textAt(shm, 0, 16), 'alive');
});

// --- change notification ----------------------------------------------------

test('/shared-memory/changed/to-other-process', async () => {
    const key = uniqueKey();
    const shm = created(key);
    let own = 0;
    shm.connect('changed', () => own++);

    const child = spawn('shm-wait-changed', key);
    await child.expect('attached');
    shm.lock();
    shm.write(0, bytes('news'));
    shm.unlock();
    assertEqual(shm.notify_changed(), true);
    assertEqual(await child.expect('changed '), 'changed news');
    assertEqual(await child.wait(), 0);

    await delay(100);
    assertEqual(own, 0, 'the notifier itself is not woken');
});

test('/shared-memory/changed/from-other-process', async () => {
    const key = uniqueKey();
    const shm = created(key);
    const changed = nextEmission(shm, 'changed', () => textAt(shm, 0, 16));
    const child = spawn('shm-notify', key, 'from child');
    await child.expect('notified');
    assertEqual(await changed, 'from child');
    assertEqual(await child.wait(), 0);
});

test('/shared-memory/changed/same-process', async () => {
    const key = uniqueKey();
    const writer = created(key);
    const reader = newShm(key);
    reader.attach(RO);
    let count = 0;
    reader.connect('changed', () => count++);
    const changed = nextEmission(reader, 'changed');
    writer.notify_changed();
    writer.notify_changed();
    writer.notify_changed();
    await changed;
    await delay(100);
    assert(count >= 1 && count <= 3, `${count} emissions`);
});

// --- errors -----------------------------------------------------------------

test('/shared-memory/error/key', () => {
    const shm = newShm('');
    assertEqual(shm.get_native_key(), null);
    assertThrows(() => shm.create(16, RW), DOMAIN, E.KEY_ERROR);
    assertThrows(() => shm.attach(RW), DOMAIN, E.KEY_ERROR);
});

// Create or attach on an object that is already attached is a state error.
test('/shared-memory/error/already-attached', () => {
    const shm = created(uniqueKey(), 16);
    assertThrows(() => shm.create(16, RW), DOMAIN, E.FAILED);
    assertThrows(() => shm.attach(RW), DOMAIN, E.FAILED);
});

test('/shared-memory/error/already-attached-is-refused', () => {
    // What holds today of the test above: it fails, the attachment stays.
    const shm = created(uniqueKey(), 16);
    shm.write(0, bytes('kept'));
    let error = null;
    try {
        shm.attach(RW);
    } catch (e) {
        error = e;
    }
    assert(error instanceof GLib.Error && error.domain === DOMAIN, `${error}`);
    assert(shm.is_attached());
    assertEqual(textAt(shm, 0, 16), 'kept');
});

test('/shared-memory/error/invalid-size', () => {
    const shm = newShm(uniqueKey());
    assertThrows(() => shm.create(0, RW), DOMAIN, E.INVALID_SIZE);
    assertThrows(() => shm.create(2 ** 40 + 1, RW), DOMAIN, E.INVALID_SIZE);
    assert(!shm.is_attached());

    assert(shm.create(100, RW));
    for (const [offset, length] of [[0, 101], [99, 2], [100, 1], [101, 0], [2 ** 50, 1]])
        assertThrows(() => shm.read(offset, length), DOMAIN, E.INVALID_SIZE, `read(${offset}, ${length})`);
    assertThrows(() => shm.write(98, bytes('abc')), DOMAIN, E.INVALID_SIZE);
    assertEqual(shm.read(99, 1).toArray(), zeroes(1));
    assertEqual(shm.read(100, 0).toArray(), zeroes(0));
    assertEqual(shm.write(97, bytes('xyz')), true);
    assertEqual(textAt(shm, 97, 3), 'xyz');
});

// The constant keeps its 64-bit type through introspection.
test('/shared-memory/max-size-constant', () => {
    assertEqual(Qipc.SHARED_MEMORY_MAX_SIZE, 2 ** 40);
});

test('/shared-memory/error/not-found', () => {
    const key = uniqueKey();
    const shm = newShm(key);
    const e = assertThrows(() => shm.attach(RW), DOMAIN, E.NOT_FOUND);
    assert(e.message.includes(key), e.message);
    assertThrows(() => shm.attach(RO), DOMAIN, E.NOT_FOUND);
    assertThrows(() => shm.read(0, 1), DOMAIN, E.NOT_FOUND);
    assertThrows(() => shm.write(0, bytes('x')), DOMAIN, E.NOT_FOUND);
    assertThrows(() => shm.notify_changed(), DOMAIN, E.NOT_FOUND);
});

test('/shared-memory/error/lock', async () => {
    const key = uniqueKey();
    const shm = newShm(key);
    assertThrows(() => shm.lock(), DOMAIN, E.LOCK_ERROR, 'lock() when not attached');
    assertThrows(() => shm.try_lock(0), DOMAIN, E.LOCK_ERROR, 'try_lock() when not attached');
    assertThrows(() => shm.unlock(), DOMAIN, E.LOCK_ERROR, 'unlock() when not attached');
    await assertRejects(withTimeout(shm.lock_async(null), LINE_TIMEOUT_MS, 'lock_async'),
        DOMAIN, E.LOCK_ERROR, 'lock_async() when not attached');

    assert(shm.create(16, RW));
    assertThrows(() => shm.unlock(), DOMAIN, E.LOCK_ERROR, 'unlock() when not held');
    assertEqual(shm.lock(), true);
    assertThrows(() => shm.lock(), DOMAIN, E.LOCK_ERROR, 'lock() when held');
    assertThrows(() => shm.try_lock(10), DOMAIN, E.LOCK_ERROR, 'try_lock() when held');
    assertEqual(shm.unlock(), true);

    // The lock belongs to the thread, not to the object.
    const other = newShm(key);
    other.attach(RW);
    assertEqual(shm.lock(), true);
    assertThrows(() => other.try_lock(0), DOMAIN, E.LOCK_ERROR, 'another object on this thread');

    // Detaching releases a held lock: a process waiting for it gets it.
    const child = spawn('shm-write', key, '0', 'got it');
    await delay(200);
    assertEqual(child.proc.get_identifier() !== null, true, 'the child is still waiting');
    shm.detach();
    await child.expect('written');
    assertEqual(await child.wait(), 0);
    assertEqual(other.try_lock(0), true);
    assertEqual(textAt(other, 0, 16), 'got it');
    assertEqual(other.unlock(), true);
});

test('/shared-memory/prefault', () => {
    const shm = created(uniqueKey(), 1 << 20);
    assertEqual(shm.prefault(), true);
    assertEqual(shm.read(0, 1 << 20).toArray(), zeroes(1 << 20));
});

test('/shared-memory/permissions', () => {
    const shm = newShm(uniqueKey());
    assertEqual(shm.get_permissions(), 0o600);
    let notified = 0;
    shm.connect('notify::permissions', () => notified++);
    shm.set_permissions(0o640);
    shm.set_permissions(0o640);
    assertEqual(notified, 1);
    assertEqual(shm.permissions, 0o640);
    assert(shm.create(16, RW));
    const info = Gio.File.new_for_path(shm.get_native_key()).query_info('unix::mode', Gio.FileQueryInfoFlags.NONE, null);
    assertEqual(info.get_attribute_uint32('unix::mode') & 0o777, 0o640);
});

run();
