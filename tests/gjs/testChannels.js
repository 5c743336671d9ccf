// testChannels.js: QipcBroker, QipcBus and QipcChannel from GJS, with the
// broker in this process and listeners here and in a child process.
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The broker lives on this process's main loop, which keeps running while
// a test awaits a child's output, so the children's buses are served.

import Gio from 'gi://Gio';
import GLib from 'gi://GLib';
import GObject from 'gi://GObject';
import Qipc from 'gi://Qipc?version=1.0';

import {
    assert, assertEqual, assertRejects, assertThrows, deferred, delay, onCleanup, run, spawn,
    test, withTimeout, PID, LINE_TIMEOUT_MS,
} from './testlib.js';

// Static functions promisify as methods do: the wrapper looks for the
// finish function on the source object (the bus, which has none of that
// name), then on Qipc.Channel.
Gio._promisify(Qipc.Channel, 'flush_async', 'flush_finish');
Gio._promisify(Qipc.Channel, 'is_registered_async', 'is_registered_finish');
Gio._promisify(Qipc.Bus.prototype, 'list_channels_async', 'list_channels_finish');

const BusError = Qipc.BusError;
const BUS_ERROR = Qipc.bus_error_quark();
let serial = 0;

// A broker in this process and a bus connected to it, both closed at the
// end of the test, the bus first.
function setUp() {
    const address = `unix:abstract=qipc-gjs-${PID}-channels-${serial++}`;
    const broker = Qipc.Broker.new();
    broker.listen(address);
    const bus = Qipc.Bus.new_for_address(address);
    onCleanup(() => {
        bus.close();
        broker.close();
    });
    return {address, broker, bus};
}

// What CHANNEL receives through SIGNAL ('received' or a detailed form), as
// [message, data] pairs. It holds the channel: a finalized channel stops
// listening.
class Inbox {
    constructor(channel, signal = 'received') {
        this.channel = channel;
        this.messages = [];
        this._waiters = [];
        channel.connect(signal, (_channel, message, data) => {
            this.messages.push([message, data]);
            this._check();
        });
    }

    get names() {
        return this.messages.map(([message]) => message);
    }

    // Resolves to the messages once COUNT have come.
    wait(count) {
        const {promise, resolve} = deferred();
        this._waiters.push({count, resolve});
        this._check();
        return withTimeout(promise, LINE_TIMEOUT_MS, `${count} messages on ${this.channel.name}`);
    }

    _check() {
        this._waiters = this._waiters.filter(({count, resolve}) => {
            if (this.messages.length < count)
                return true;
            resolve(this.messages);
            return false;
        });
    }
}

test('/channels/own-message', async () => {
    const {broker, bus} = setUp();
    const added = [];
    broker.connect('channel-added', (_broker, name) => added.push(name));
    const channel = Qipc.Channel.new_for_bus(bus, 'org.example/settings');
    assertEqual(channel.name, 'org.example/settings');
    assert(channel.bus === bus, 'the channel is on its bus');
    const inbox = new Inbox(channel);

    const settings = new GLib.Variant('a{sv}', {
        volume: new GLib.Variant('i', 7),
        name: new GLib.Variant('s', 'speaker ✓'),
        raw: new GLib.Variant('ay', new Uint8Array([0, 1, 255])),
        nested: new GLib.Variant('a{sv}', {muted: new GLib.Variant('b', false)}),
    });
    Qipc.Channel.send_for_bus(bus, 'org.example/settings', 'apply', settings);
    Qipc.Channel.send_for_bus(bus, 'org.example/settings', 'reset', null);

    const [[message, data], [reset, nothing]] = await inbox.wait(2);
    assertEqual(message, 'apply');
    assert(data.equal(settings), `sent ${settings.print(true)}, got ${data.print(true)}`);
    const unpacked = data.recursiveUnpack();
    assertEqual(unpacked.volume, 7);
    assertEqual(unpacked.name, 'speaker ✓');
    assertEqual(unpacked.raw, [0, 1, 255]);
    assertEqual(unpacked.nested.muted, false);
    assertEqual(reset, 'reset');
    assertEqual(nothing, null);
    assertEqual(added, ['org.example/settings']);
    assertEqual(broker.n_clients, 1);
});

test('/channels/detailed-signal', async () => {
    const {bus} = setUp();
    const channel = Qipc.Channel.new_for_bus(bus, 'gjs/detail');
    const everything = new Inbox(channel);
    const setValue = new Inbox(channel, 'received::setValue');

    for (const message of ['other', 'setValue', 'setValueX', 'setValue'])
        Qipc.Channel.send_for_bus(bus, 'gjs/detail', message, new GLib.Variant('s', message));
    await everything.wait(4);
    assertEqual(everything.names, ['other', 'setValue', 'setValueX', 'setValue']);
    assertEqual(setValue.names, ['setValue', 'setValue']);
    assertEqual(setValue.messages[0][1].unpack(), 'setValue');
});

test('/channels/child-process', async () => {
    const {address, bus} = setUp();
    const child = spawn('channel-listen', address, 'gjs/child', 'gjs/*');
    await child.expect('listening');
    const inbox = new Inbox(Qipc.Channel.new_for_bus(bus, 'gjs/child'));

    for (let i = 0; i < 3; i++)
        Qipc.Channel.send_for_bus(bus, 'gjs/child', 'tick', new GLib.Variant('u', i));
    Qipc.Channel.send_for_bus(bus, 'gjs/other', 'note', new GLib.Variant('s', 'for the pattern'));

    // The sender gets its own messages too, in order.
    assertEqual((await inbox.wait(3)).map(([, data]) => data.unpack()), [0, 1, 2]);
    // Each message reaches both of the child's channels, in the order sent.
    for (let i = 0; i < 3; i++) {
        const lines = [await child.readline(), await child.readline()];
        assertEqual(lines.sort(), [`received gjs/* tick uint32 ${i}`,
            `received gjs/child tick uint32 ${i}`]);
    }
    assertEqual(await child.readline(), "received gjs/* note 'for the pattern'");
    assertEqual(await child.wait(), 0, 'exit status of the listener');
});

test('/channels/is-registered', async () => {
    const {address, bus} = setUp();
    const name = 'gjs/registered';
    assertEqual(await Qipc.Channel.is_registered_async(bus, name, null), false);

    const child = spawn('channel-listen', address, name);
    await child.expect('listening');
    assertEqual(await Qipc.Channel.is_registered_async(bus, name, null), true);
    assertEqual(Qipc.Channel.is_registered_for_bus(bus, name), true);

    // The broker drops a dead client's channels as soon as it sees the
    // connection end.
    await child.kill();
    const deadline = GLib.get_monotonic_time() + LINE_TIMEOUT_MS * 1000;
    while (await Qipc.Channel.is_registered_async(bus, name, null)) {
        assert(GLib.get_monotonic_time() < deadline, 'the killed listener is still registered');
        await delay(10);
    }

    await assertRejects(Qipc.Channel.is_registered_async(bus, 'gjs/*', null),
        BUS_ERROR, BusError.INVALID_NAME, 'a pattern is no channel name');
});

test('/channels/flush', async () => {
    const {bus} = setUp();
    const events = [];
    const channel = Qipc.Channel.new_for_bus(bus, 'gjs/flush');
    channel.connect('received', () => events.push('received'));

    // The broker queues our own copy before it answers the flush, and the
    // bus reads in order: the message comes first.
    Qipc.Channel.send_for_bus(bus, 'gjs/flush', 'm', null);
    assertEqual(await Qipc.Channel.flush_async(bus, null), true);
    events.push('flushed');
    assertEqual(events, ['received', 'flushed']);
    assertEqual(Qipc.Channel.flush_for_bus(bus), true);

    // With a callback, the promisified function is the plain one.
    const {promise, resolve} = deferred();
    Qipc.Channel.flush_async(bus, null, (source, result) =>
        resolve([source, Qipc.Channel.flush_finish(result)]));
    const [source, flushed] = await withTimeout(promise, LINE_TIMEOUT_MS, 'flush callback');
    assert(source === bus, 'the source object is the bus');
    assertEqual(flushed, true);

    const cancellable = new Gio.Cancellable();
    cancellable.cancel();
    await assertRejects(Qipc.Channel.flush_async(bus, cancellable),
        Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED);
});

test('/channels/patterns', async () => {
    const {bus} = setUp();
    const inboxes = Object.fromEntries(['a/*', 'a/**', 'a/*/c'].map(
        name => [name, new Inbox(Qipc.Channel.new_for_bus(bus, name))]));
    assertEqual(Qipc.Channel.is_registered_for_bus(bus, 'a/q/c'), true);
    assertEqual(Qipc.Channel.is_registered_for_bus(bus, 'a'), false);
    const everything = new Inbox(Qipc.Channel.new_for_bus(bus, '**'));

    // The message name says which channel name it was sent to.
    const targets = ['a', 'a/b', 'a/b/c', 'a/b/c/d', 'b/a', 'a/x/c'];
    for (const target of targets)
        Qipc.Channel.send_for_bus(bus, target, target, null);
    // One bus dispatches a message to all its matching channels before the
    // next: once '**' has the last one, the others have all theirs.
    await everything.wait(targets.length);
    assertEqual(everything.names, targets);
    assertEqual(inboxes['a/*'].names, ['a/b']);
    assertEqual(inboxes['a/**'].names, ['a/b', 'a/b/c', 'a/b/c/d', 'a/x/c']);
    assertEqual(inboxes['a/*/c'].names, ['a/b/c', 'a/x/c']);
});

test('/channels/list-monitor-and-matched-name', async () => {
    const {address, bus} = setUp();
    const pattern = Qipc.Channel.new_for_bus(bus, 'where/**');
    const matched = [];
    pattern.connect('received', channel => matched.push(channel.get_message_channel()));
    const listed = Object.fromEntries((await bus.list_channels_async(null)).deepUnpack());
    assertEqual(listed['where/**'], 1);

    const watcher = Qipc.Bus.new_for_address(address);
    onCleanup(() => watcher.close());
    const seen = [];
    watcher.connect('monitored', (_bus, channel, message) => seen.push([channel, message]));
    assertEqual(watcher.start_monitor(), true);
    Qipc.Channel.send_for_bus(bus, 'where/a/b', 'm', null);
    Qipc.Channel.send_for_bus(bus, 'elsewhere', 'n', null);
    // A ticking source wakes the blocking iteration to check the deadline.
    const context = GLib.MainContext.default();
    const deadline = GLib.get_monotonic_time() + LINE_TIMEOUT_MS * 1000;
    const tick = GLib.timeout_add(GLib.PRIORITY_DEFAULT, 20, () => GLib.SOURCE_CONTINUE);
    while ((seen.length < 2 || matched.length < 1) && GLib.get_monotonic_time() < deadline)
        context.iteration(true);
    GLib.source_remove(tick);
    assertEqual(seen, [['where/a/b', 'm'], ['elsewhere', 'n']]);
    assertEqual(matched, ['where/a/b']);
});

const Recorder = GObject.registerClass({
    GTypeName: 'QipcTestGjsRecorder',
}, class Recorder extends Qipc.Channel {
    _init(params) {
        super._init(params);
        this.calls = [];
    }

    vfunc_receive(message, data) {
        this.calls.push(['vfunc', message, data === null ? null : data.deepUnpack()]);
    }
});

test('/channels/subclass-vfunc', async () => {
    const {bus} = setUp();
    // Construction registers the channel.
    const recorder = new Recorder({bus, name: 'gjs/sub/**'});
    assert(recorder instanceof Qipc.Channel, 'a Qipc.Channel');
    assertEqual(recorder.name, 'gjs/sub/**');
    recorder.connect('received', (_c, message) => recorder.calls.push(['handler', message]));
    recorder.connect_after('received', (_c, message) => recorder.calls.push(['after', message]));
    assertEqual(Qipc.Channel.is_registered_for_bus(bus, 'gjs/sub/x/y'), true);

    Qipc.Channel.send_for_bus(bus, 'gjs/sub/x', 'ping', new GLib.Variant('as', ['a', 'b']));
    Qipc.Channel.send_for_bus(bus, 'gjs/sub/x/y', 'bare', null);
    assertEqual(await Qipc.Channel.flush_async(bus, null), true);
    // ::received is RUN_LAST: handlers, the class handler, then the after ones.
    assertEqual(JSON.stringify(recorder.calls), JSON.stringify([
        ['handler', 'ping'], ['vfunc', 'ping', ['a', 'b']], ['after', 'ping'],
        ['handler', 'bare'], ['vfunc', 'bare', null], ['after', 'bare'],
    ]));
});

test('/channels/errors', () => {
    const {bus} = setUp();
    const send = (channel, message) => () => Qipc.Channel.send_for_bus(bus, channel, message, null);
    assertThrows(send('a//b', 'm'), BUS_ERROR, BusError.INVALID_NAME, 'empty segment');
    assertThrows(send('a/*', 'm'), BUS_ERROR, BusError.INVALID_NAME, 'a pattern as target');
    assertThrows(send('a/b', ''), BUS_ERROR, BusError.INVALID_NAME, 'empty message name');
    assertThrows(send('x'.repeat(256), 'm'), BUS_ERROR, BusError.INVALID_NAME, '256 bytes');
    assertThrows(() => Qipc.Channel.new_for_bus(bus, 'a//b'), BUS_ERROR, BusError.INVALID_NAME,
        'listening on an empty segment');
    assertThrows(() => Qipc.Channel.new_for_bus(bus, 'a/**/b'), BUS_ERROR, BusError.INVALID_NAME,
        "'**' before the end");
    assertThrows(() => Qipc.Channel.new_for_bus(bus, 'a/b*'), BUS_ERROR, BusError.INVALID_NAME,
        "'*' in part of a segment");
    assertThrows(() => Qipc.Bus.new_for_address('nonsense'), BUS_ERROR, BusError.INVALID_ADDRESS);
    // Data deeper than GVariant carries (128 levels): refused, not sent.
    let deep = new GLib.Variant('i', 1);
    for (let i = 0; i < 128; i++)
        deep = new GLib.Variant('v', deep);
    assertThrows(() => Qipc.Channel.send_for_bus(bus, 'a/b', 'm', deep), BUS_ERROR,
        BusError.LIMIT_EXCEEDED, 'data 129 levels deep');
    Qipc.Channel.send_for_bus(bus, 'a/b', 'm', deep.get_variant());

    bus.close();
    assertEqual(bus.is_connected(), false);
    assertThrows(send('a/b', 'm'), BUS_ERROR, BusError.DISCONNECTED, 'sending on a closed bus');
});

test('/channels/default-bus', async () => {
    const {address} = setUp();
    GLib.setenv('QIPC_BUS_ADDRESS', address, true);
    // The default bus stays until closed; the next test connects anew.
    onCleanup(() => {
        Qipc.Bus.get_default().close();
        GLib.unsetenv('QIPC_BUS_ADDRESS');
    });

    const channel = Qipc.Channel.new('gjs/default');
    assertEqual(channel.bus.address, address);
    const inbox = new Inbox(channel);
    assertEqual(Qipc.Channel.send('gjs/default', 'hello', new GLib.Variant('s', 'world')), true);
    assertEqual(Qipc.Channel.is_registered('gjs/default'), true);
    assertEqual(await Qipc.Channel.flush_async(null, null), true);
    assertEqual(await Qipc.Channel.is_registered_async(null, 'gjs/nobody', null), false);
    const [[message, data]] = await inbox.wait(1);
    assertEqual(message, 'hello');
    assertEqual(data.unpack(), 'world');
});

// TCP is TLS: the broker needs a certificate, and the bus trusts the
// authorities of its ca= file, or else the system's (which do not know a
// self-signed test certificate).
test('/channels/tcp-is-tls', async () => {
    const dir = GLib.dir_make_tmp('qipc-gjs-tls-XXXXXX');
    const [cert, key] = [`${dir}/cert.pem`, `${dir}/key.pem`];
    onCleanup(() => {
        for (const file of [cert, key])
            GLib.unlink(file);
        GLib.rmdir(dir);
    });
    const openssl = Gio.Subprocess.new(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
        '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1',
        '-keyout', key, '-out', cert], Gio.SubprocessFlags.STDERR_SILENCE);
    assert(openssl.wait_check(null), 'openssl made the certificate');

    const broker = Qipc.Broker.new();
    onCleanup(() => broker.close());
    assertThrows(() => broker.listen('tcp:host=127.0.0.1,port=0'), BUS_ERROR, BusError.FAILED,
        'TCP without a certificate');
    broker.tls_certificate = Gio.TlsCertificate.new_from_files(cert, key);
    broker.set_policy_from_data(
        '{"allow": [{"anonymous": true, "send": ["t/**"], "receive": ["t/**"]}]}', -1);
    const probe = new Gio.SocketListener();
    const port = probe.add_any_inet_port(null);
    probe.close();
    broker.listen(`tcp:host=127.0.0.1,port=${port}`);

    const bus = Qipc.Bus.new_for_address(`tcp:host=127.0.0.1,port=${port},ca=${cert}`);
    onCleanup(() => bus.close());
    const inbox = new Inbox(Qipc.Channel.new_for_bus(bus, 't/x'));
    Qipc.Channel.send_for_bus(bus, 't/x', 'hello', new GLib.Variant('s', 'over TLS'));
    const [[message, data]] = await inbox.wait(1);
    assertEqual([message, data.unpack()], ['hello', 'over TLS']);

    const untrusted = Qipc.Bus.new_for_address(`tcp:host=127.0.0.1,port=${port}`);
    onCleanup(() => untrusted.close());
    await assertRejects(Qipc.Channel.flush_async(untrusted, null),
        BUS_ERROR, BusError.TLS_HANDSHAKE_FAILED);
    assertEqual(untrusted.is_connected(), false);
});

run();
