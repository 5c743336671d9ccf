// testDbusChannels.js: QipcChannel over a private dbus-daemon, from GJS.
//
// SPDX-License-Identifier: LGPL-2.1-or-later

import Gio from 'gi://Gio';
import GLib from 'gi://GLib';
import Qipc from 'gi://Qipc?version=1.0';

import {
    assert, assertEqual, deferred, onCleanup, run, test, withTimeout, LINE_TIMEOUT_MS,
} from './testlib.js';

Gio._promisify(Qipc.Channel, 'flush_async', 'flush_finish');
Gio._promisify(Qipc.Channel, 'is_registered_async', 'is_registered_finish');

// A session dbus-daemon of this test's own, killed at the end of the
// test; resolves to its address.
async function startDaemon() {
    const proc = Gio.Subprocess.new(
        ['dbus-daemon', '--session', '--nofork', '--nosyslog', '--print-address=1'],
        Gio.SubprocessFlags.STDOUT_PIPE | Gio.SubprocessFlags.STDERR_SILENCE);
    onCleanup(async () => {
        proc.force_exit();
        await proc.wait_async(null);
    });
    const stdout = new Gio.DataInputStream({base_stream: proc.get_stdout_pipe()});
    const [line] = await withTimeout(stdout.read_line_async(GLib.PRIORITY_DEFAULT, null),
        LINE_TIMEOUT_MS, 'the address of dbus-daemon');
    assert(line?.startsWith('unix:'), `dbus-daemon printed ${line}`);
    return `dbus:address=${line.trim()}`;
}

test('/dbus-channels/send-and-receive', async () => {
    const address = await startDaemon();
    const bus = Qipc.Bus.new_for_address(address);
    const sender = Qipc.Bus.new_for_address(address);
    onCleanup(() => {
        bus.close();
        sender.close();
    });
    const channel = Qipc.Channel.new_for_bus(bus, 'gjs/*');
    const {promise, resolve} = deferred();
    channel.connect('received', (_channel, message, data) => resolve([message, data]));
    await Qipc.Channel.flush_async(bus, null);
    assert(await Qipc.Channel.is_registered_async(sender, 'gjs/x', null), 'registered');
    assert(!await Qipc.Channel.is_registered_async(sender, 'gjs/x/y', null), 'one segment only');

    // A maybe type, which D-Bus itself cannot carry.
    Qipc.Channel.send_for_bus(sender, 'gjs/x', 'hello', new GLib.Variant('(sms)', ['world', null]));
    const [message, data] = await withTimeout(promise, LINE_TIMEOUT_MS, 'the message');
    assertEqual(message, 'hello');
    assertEqual(data.deepUnpack(), ['world', null]);
    assertEqual(channel.get_message_channel(), null);
});

run();
