// testMqtt.js: QipcBus and QipcChannel over MQTT from GJS, on a
// mosquitto the test starts on 127.0.0.1 at a free port.
//
// SPDX-License-Identifier: LGPL-2.1-or-later

import Gio from 'gi://Gio';
import GLib from 'gi://GLib';
import Qipc from 'gi://Qipc?version=1.0';

import {assert, assertEqual, delay, onCleanup, run, test, withTimeout} from './testlib.js';

Gio._promisify(Qipc.Channel, 'flush_async', 'flush_finish');
Gio._promisify(Qipc.Channel, 'is_registered_async', 'is_registered_finish');

function freePort() {
    const socket = Gio.Socket.new(Gio.SocketFamily.IPV4, Gio.SocketType.STREAM,
        Gio.SocketProtocol.TCP);
    socket.bind(Gio.InetSocketAddress.new_from_string('127.0.0.1', 0), false);
    const port = socket.get_local_address().get_port();
    socket.close();
    return port;
}

// A mosquitto of the test's own, killed at the end of the test.
async function startMosquitto() {
    const port = freePort();
    const dir = GLib.dir_make_tmp('qipc-gjs-mosquitto-XXXXXX');
    const config = GLib.build_filenamev([dir, 'mosquitto.conf']);
    GLib.file_set_contents(config,
        `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`);
    const proc = Gio.Subprocess.new(['mosquitto', '-c', config],
        Gio.SubprocessFlags.STDOUT_SILENCE);
    onCleanup(() => {
        proc.force_exit();
        proc.wait(null);
        GLib.unlink(config);
        GLib.rmdir(dir);
    });
    const client = new Gio.SocketClient();
    for (let i = 0; ; i++) {
        try {
            client.connect_to_host(`127.0.0.1:${port}`, 0, null).close(null);
            break;
        } catch (e) {
            assert(i < 500, 'mosquitto did not start');
            await delay(10);
        }
    }
    return `mqtt://127.0.0.1:${port}`;
}

test('/mqtt/own-message', async () => {
    const address = await startMosquitto();
    const bus = Qipc.Bus.new_for_address(`${address}?format=json`);
    onCleanup(() => bus.close());
    const channel = Qipc.Channel.new_for_bus(bus, 'gjs/**');
    const received = [];
    channel.connect('received', (c, message, data) => received.push([message, data]));
    assertEqual(await Qipc.Channel.flush_async(bus, null), true);
    assertEqual(await Qipc.Channel.is_registered_async(bus, 'gjs/a/b', null), true);

    Qipc.Channel.send_for_bus(bus, 'gjs/a/b', 'tuple',
        new GLib.Variant('(sid)', ['x', -3, 1.5]));
    await withTimeout((async () => {
        while (received.length === 0)
            await delay(5);
    })(), 10000, 'the message');
    const [[message, data]] = received;
    assertEqual(message, 'tuple');
    assertEqual(data.get_type_string(), '(sid)');
    assertEqual(JSON.stringify(data.deepUnpack()), JSON.stringify(['x', -3, 1.5]));
});

test('/mqtt/json-nonfinite-and-unsupported', async () => {
    const address = await startMosquitto();
    const bus = Qipc.Bus.new_for_address(`${address}?format=json`);
    onCleanup(() => bus.close());
    const channel = Qipc.Channel.new_for_bus(bus, 'gjs/odd');
    const received = [];
    channel.connect('received', (c, message, data) => received.push([message, data]));
    assertEqual(await Qipc.Channel.flush_async(bus, null), true);

    // JSON cannot tell "just nothing" in a maybe of a maybe from nothing.
    const justNothing = GLib.Variant.new_maybe(null, GLib.Variant.new_maybe(new GLib.VariantType('i'), null));
    let error = null;
    try {
        Qipc.Channel.send_for_bus(bus, 'gjs/odd', 'no', justNothing);
    } catch (e) {
        error = e;
    }
    assert(error !== null && error.matches(Qipc.bus_error_quark(), Qipc.BusError.UNSUPPORTED_DATA),
        `expected UNSUPPORTED_DATA, got ${error}`);

    Qipc.Channel.send_for_bus(bus, 'gjs/odd', 'yes', new GLib.Variant('ad', [NaN, -Infinity, 2.5]));
    await withTimeout((async () => {
        while (received.length === 0)
            await delay(5);
    })(), 10000, 'the message');
    const [[message, data]] = received;
    assertEqual(message, 'yes');
    const [nan, inf, other] = data.deepUnpack();
    assert(Number.isNaN(nan) && inf === -Infinity && other === 2.5, `got ${data.print(true)}`);
});

run();
