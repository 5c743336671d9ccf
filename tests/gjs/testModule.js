// testModule.js: the GJS module bindings/gjs/qipc.js, imported from the
// source tree: promisified async calls, plain JS values as channel data,
// and unpacking what arrives.
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// This file must not promisify anything itself: every `await` on a Qipc
// _async call below works only because the module did it.

import Gio from 'gi://Gio';
import GLib from 'gi://GLib';
import Qipc from 'gi://Qipc?version=1.0';

import * as QipcUtil from '../../bindings/gjs/qipc.js';
import {
    assert, assertEqual, deferred, onCleanup, run, test, uniqueKey, withTimeout, PID,
    LINE_TIMEOUT_MS,
} from './testlib.js';

let serial = 0;

// A broker in this process and a bus connected to it, both closed at the
// end of the test, the bus first.
function setUp() {
    const address = `unix:abstract=qipc-gjs-${PID}-module-${serial++}`;
    const broker = Qipc.Broker.new();
    broker.listen(address);
    const bus = Qipc.Bus.new_for_address(address);
    onCleanup(() => {
        bus.close();
        broker.close();
    });
    return {address, broker, bus};
}

// What CHANNEL receives, through QipcUtil.connectReceived, as
// [message, value] pairs; wait(count) resolves once COUNT have come.
function collect(channel, detail = null) {
    const messages = [];
    let waiter = null;
    QipcUtil.connectReceived(channel, detail, (message, value, source) => {
        assert(source === channel, 'the callback gets the channel');
        messages.push([message, value]);
        if (waiter && messages.length >= waiter.count)
            waiter.resolve(messages);
    });
    return {
        messages,
        wait(count) {
            const {promise, resolve} = deferred();
            waiter = {count, resolve};
            if (messages.length >= count)
                resolve(messages);
            return withTimeout(promise, LINE_TIMEOUT_MS, `${count} messages on ${channel.name}`);
        },
    };
}

function assertTypeError(fn, needle) {
    try {
        fn();
    } catch (e) {
        assert(e instanceof TypeError, `expected a TypeError, got ${e}`);
        assert(e.message.includes(needle), `the message names ${needle}: ${e.message}`);
        return;
    }
    throw new Error(`expected a TypeError naming ${needle}`);
}

test('/module/promisified-list', () => {
    for (const name of ['SystemSemaphore.prototype.acquire_async', 'SharedMemory.prototype.lock_async',
        'Bus.prototype.list_channels_async', 'Channel.flush_async', 'Channel.is_registered_async'])
        assert(QipcUtil.promisified.includes(name), `${name} is promisified: ${QipcUtil.promisified}`);
});

test('/module/to-variant/inferred', () => {
    const type = value => QipcUtil.toVariant(value).get_type_string();
    assertEqual(type(true), 'b');
    assertEqual(type(7), 'x');
    assertEqual(type(-(2 ** 40)), 'x');
    assertEqual(type(0.5), 'd');
    assertEqual(type(10n), 'x');
    assertEqual(type(2n ** 63n), 't');
    assertEqual(type('text'), 's');
    assertEqual(type(new Uint8Array([1, 2])), 'ay');
    assertEqual(type(['a', 'b']), 'as');
    assertEqual(type([1, 2]), 'ax');
    assertEqual(type([1, 2.5]), 'ad');
    assertEqual(type([1, 'a']), 'av');
    assertEqual(type([]), 'av');
    assertEqual(type([{a: 1}, {b: 'x'}]), 'aa{sv}');
    assertEqual(type({a: 1, b: {c: [true]}}), 'a{sv}');
    assertEqual(type(new Map([['k', 1]])), 'a{sv}');
    assertEqual(type(new GLib.Variant('u', 3)), 'u');
    assertEqual(QipcUtil.toVariant(null), null);
    assertEqual(QipcUtil.toVariant(undefined), null);
    const v = QipcUtil.toVariant({n: 1, skipped: undefined, list: [1, 2], nested: {s: 'x'}});
    assertEqual(v.print(true), "{'n': <int64 1>, 'list': <[int64 1, 2]>, 'nested': <{'s': <'x'>}>}");
});

test('/module/to-variant/explicit-type', () => {
    assertEqual(QipcUtil.toVariant(7, 'i').get_type_string(), 'i');
    assertEqual(QipcUtil.toVariant(7, 'u').get_type_string(), 'u');
    assertEqual(QipcUtil.toVariant([1, 2], 'ai').print(true), '[1, 2]');
    assertEqual(QipcUtil.toVariant(['a', 1], '(si)').print(true), "('a', 1)");
    // Plain values where the type has a 'v'.
    assertEqual(QipcUtil.toVariant({a: 1, b: 'x'}, 'a{sv}').print(true), "{'a': <int64 1>, 'b': <'x'>}");
    assertEqual(QipcUtil.toVariant([1, 'x'], 'av').print(true), '[<int64 1>, <\'x\'>]');
    assertEqual(QipcUtil.toVariant(1.5, 'v').print(true), '<1.5>');
    const u = new GLib.Variant('u', 3);
    assert(QipcUtil.toVariant(u, 'u') === u, 'a variant of the type is kept');
    assertEqual(QipcUtil.toVariant(u, 'v').print(true), '<uint32 3>');
});

test('/module/to-variant/type-error', () => {
    assertTypeError(() => QipcUtil.toVariant(() => 1), 'function');
    assertTypeError(() => QipcUtil.toVariant(Symbol('s')), 'Symbol(s)');
    assertTypeError(() => QipcUtil.toVariant(new Date(0)), 'object Date');
    assertTypeError(() => QipcUtil.toVariant({a: [1, null]}), 'null at value.a[1]');
    assertTypeError(() => QipcUtil.toVariant({f: Math.max}), 'function max at value.f');
    assertTypeError(() => QipcUtil.toVariant(2n ** 64n), 'bigint');
    assertTypeError(() => QipcUtil.toVariant(new GLib.Variant('u', 3), 's'), 'a u variant where s');
    assertTypeError(() => QipcUtil.toVariant(1, 'nonsense'), 'nonsense');
    assertTypeError(() => QipcUtil.toVariant('x', '(si)'), 'string x at value to a GVariant: as (si)');
    const {bus} = setUp();
    assertTypeError(() => QipcUtil.send('gjs/module', 'm', new Set([1]), {bus}), 'object Set');
});

test('/module/send-and-unpack', async () => {
    const {bus} = setUp();
    const channel = Qipc.Channel.new_for_bus(bus, 'gjs/module');
    const inbox = collect(channel);
    const values = [
        ['bool', false], ['int', 42], ['double', 2.5], ['string', 'héllo ✓'],
        ['bytes', new Uint8Array([0, 1, 255])], ['strings', ['a', 'b']],
        ['object', {volume: 7, name: 'n', nested: {muted: true, list: [1, 2]}}],
        ['nothing', null],
    ];
    for (const [message, value] of values)
        assertEqual(QipcUtil.send('gjs/module', message, value, {bus}), true);
    // Explicit types, and a channel object for the name and bus.
    QipcUtil.send('gjs/module', 'int32', 5, {bus, type: 'i'});
    QipcUtil.send(channel, 'variant', new GLib.Variant('(us)', [1, 'x']));

    const received = await inbox.wait(values.length + 2);
    assertEqual(received.map(([message]) => message),
        [...values.map(([message]) => message), 'int32', 'variant']);
    const got = Object.fromEntries(received);
    assertEqual(got.bool, false);
    assertEqual(got.int, 42);
    assertEqual(got.double, 2.5);
    assertEqual(got.string, 'héllo ✓');
    assertEqual(got.bytes, [0, 1, 255]);
    assertEqual(got.strings, ['a', 'b']);
    assertEqual(Object.keys(got.object).sort(), ['name', 'nested', 'volume']);
    assertEqual(got.object.volume, 7);
    assertEqual(got.object.name, 'n');
    assertEqual(got.object.nested.muted, true);
    assertEqual(got.object.nested.list, [1, 2]);
    assertEqual(got.nothing, null);
    assertEqual(got.int32, 5);
    assertEqual(got.variant, [1, 'x']);

    // The raw data: the inferred and explicit types on the wire.
    const raw = [];
    channel.connect('received', (_c, message, data) => raw.push([message, data]));
    QipcUtil.send(channel, 'a', 5);
    QipcUtil.send(channel, 'b', 5, {type: 'i'});
    QipcUtil.send(channel, 'c', {x: 1});
    assertEqual(await Qipc.Channel.flush_async(bus, null), true);
    assertEqual(raw.map(([, data]) => data.get_type_string()), ['x', 'i', 'a{sv}']);
    // deepUnpack leaves the 'v' values boxed; unpack does not.
    assert(QipcUtil.deepUnpack(raw[2][1]).x instanceof GLib.Variant, 'deepUnpack keeps variants');
    assertEqual(QipcUtil.unpack(raw[2][1]).x, 1);
    assertEqual(QipcUtil.unpack(null), null);
    assertEqual(QipcUtil.deepUnpack(null), null);
});

test('/module/connect-received-detail', async () => {
    const {bus} = setUp();
    const channel = Qipc.Channel.new_for_bus(bus, 'gjs/detail');
    const only = collect(channel, 'set');
    for (const message of ['other', 'set', 'setX', 'set'])
        QipcUtil.send(channel, message, message.length);
    assertEqual(await Qipc.Channel.flush_async(bus, null), true);
    assertEqual(only.messages.map(([m, v]) => `${m}=${v}`), ['set=3', 'set=3']);
});

test('/module/default-bus', async () => {
    const {address} = setUp();
    GLib.setenv('QIPC_BUS_ADDRESS', address, true);
    onCleanup(() => {
        Qipc.Bus.get_default().close();
        GLib.unsetenv('QIPC_BUS_ADDRESS');
    });
    const inbox = collect(Qipc.Channel.new('gjs/default'));
    assertEqual(QipcUtil.send('gjs/default', 'hello', {to: 'world'}), true);
    const [[message, value]] = await inbox.wait(1);
    assertEqual(message, 'hello');
    assertEqual(value.to, 'world');
});

test('/module/await/system-semaphore', async () => {
    const sem = Qipc.SystemSemaphore.new(uniqueKey('sem'), 1, Qipc.SystemSemaphoreAccess.CREATE);
    onCleanup(() => sem.remove());
    assertEqual(await sem.acquire_async(null), true);
    assertEqual(sem.get_value(), 0);
    // Pending until released.
    let acquired = false;
    const pending = sem.acquire_async(null).then(result => {
        acquired = result;
    });
    assertEqual(acquired, false);
    sem.release(1);
    await withTimeout(pending, LINE_TIMEOUT_MS, 'the second acquire');
    assertEqual(acquired, true);
    sem.release(1);
});

test('/module/await/shared-memory', async () => {
    const shm = Qipc.SharedMemory.new(uniqueKey('shm'));
    onCleanup(() => shm.detach());
    assert(shm.create(64, Qipc.SharedMemoryAccess.READ_WRITE), 'create');
    assertEqual(await shm.lock_async(null), true);
    shm.write(0, new GLib.Bytes(new TextEncoder().encode('locked')));
    assertEqual(new TextDecoder().decode(shm.read(0, 6).toArray()), 'locked');
    assertEqual(shm.unlock(), true);
    const cancellable = new Gio.Cancellable();
    assertEqual(await shm.lock_async(cancellable), true);
    assertEqual(shm.unlock(), true);
});

test('/module/await/channel-and-bus', async () => {
    const {bus} = setUp();
    const channel = Qipc.Channel.new_for_bus(bus, 'gjs/listed');
    assert(channel, 'a channel');
    assertEqual(await Qipc.Channel.flush_async(bus, null), true);
    assertEqual(await Qipc.Channel.is_registered_async(bus, 'gjs/listed', null), true);
    assertEqual(await Qipc.Channel.is_registered_async(bus, 'gjs/unlisted', null), false);
    const listed = QipcUtil.unpack(await bus.list_channels_async(null));
    assertEqual(JSON.stringify(listed), JSON.stringify([['gjs/listed', 1]]));
});

run();
