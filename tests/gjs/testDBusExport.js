// testDBusExport.js: a GJS GObject class exported on D-Bus in one process
// and seen from another, through qipc_dbus_connect_signal, method calls,
// properties and gdbus introspect.
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Everything runs on a private bus (Gio.TestDBus) that the children reach
// through DBUS_SESSION_BUS_ADDRESS.

import Gio from 'gi://Gio';
import GLib from 'gi://GLib';
import Qipc from 'gi://Qipc?version=1.0';

import {assertEqual, deferred, run, spawn, test, withTimeout, PID, LINE_TIMEOUT_MS} from './testlib.js';

Gio._promisify(Gio.DBusConnection.prototype, 'call', 'call_finish');
Gio._promisify(Gio.Subprocess.prototype, 'communicate_utf8_async', 'communicate_utf8_finish');

// A private bus: not Gio.TestDBus, whose watcher process is a fork() of
// this multi-threaded one and can deadlock in it.
const daemon = Gio.Subprocess.new(['dbus-daemon', '--session', '--nofork', '--print-address=1'],
    Gio.SubprocessFlags.STDOUT_PIPE);
const [address] = new Gio.DataInputStream({base_stream: daemon.get_stdout_pipe()}).read_line_utf8(null);
GLib.setenv('DBUS_SESSION_BUS_ADDRESS', address, true);
let serial = 0;

function newConnection() {
    return Gio.DBusConnection.new_for_address_sync(address,
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
        null, null);
}

// A child exporting a GjsCounter: {child, name, path, iface}.
async function spawnExporter() {
    const n = serial++;
    const name = `org.qipc.GjsTest.P${PID}.N${n}`;
    const path = `/org/qipc/gjstest/p${PID}/counter${n}`;
    const child = spawn('dbus-export-counter', path, name);
    const [, typeName] = (await child.expect('ready ')).split(' ');
    // The default interface: every character D-Bus does not allow as '_'.
    const iface = `org.qipc.Object.${typeName.replace(/[^A-Za-z0-9_]/g, '_')}`;
    return {child, name, path, iface};
}

async function command(child, line, reply = 'ok') {
    child.send(line);
    return child.expect(reply);
}

test('signals of a GJS class reach a JS function in another process', async () => {
    const {child, name, path, iface} = await spawnExporter();
    const connection = newConnection();
    const got = [];
    const second = deferred();
    const id = Qipc.dbus_connect_signal(connection, name, path, iface, 'Changed', null, (value, text) => {
        got.push([value, text]);
        if (got.length === 2)
            second.resolve();
    });
    await command(child, 'emit 7 hi');
    await command(child, 'emit -2 two words');
    await withTimeout(second.promise, LINE_TIMEOUT_MS, 'two Changed signals');
    assertEqual(JSON.stringify(got), JSON.stringify([[7, 'hi'], [-2, 'two words']]));
    assertEqual(Qipc.dbus_disconnect_signal(connection, id), true);
    connection.close_sync(null);
});

test('actions and properties of a GJS class over D-Bus', async () => {
    const {child, name, path, iface} = await spawnExporter();
    const connection = newConnection();
    const reply = await connection.call(name, path, iface, 'Bump', new GLib.Variant('(i)', [4]),
        null, Gio.DBusCallFlags.NONE, -1, null);
    assertEqual(reply.deepUnpack()[0], 4);
    await command(child, 'get', '4');

    await connection.call(name, path, 'org.freedesktop.DBus.Properties', 'Set',
        new GLib.Variant('(ssv)', [iface, 'Count', new GLib.Variant('i', 9)]),
        null, Gio.DBusCallFlags.NONE, -1, null);
    await command(child, 'get', '9');
    await command(child, 'set 11');
    const value = await connection.call(name, path, 'org.freedesktop.DBus.Properties', 'Get',
        new GLib.Variant('(ss)', [iface, 'Count']), null, Gio.DBusCallFlags.NONE, -1, null);
    assertEqual(value.recursiveUnpack()[0], 11);
    connection.close_sync(null);
});

test('gdbus introspect shows the GJS class', async () => {
    const {name, path, iface} = await spawnExporter();
    const proc = Gio.Subprocess.new(['gdbus', 'introspect', '--session', '--dest', name,
        '--object-path', path], Gio.SubprocessFlags.STDOUT_PIPE);
    const [out] = await withTimeout(proc.communicate_utf8_async(null, null), LINE_TIMEOUT_MS, 'gdbus');
    for (const text of [`interface ${iface} {`, 'Bump(in  i arg0,', 'Changed(i arg0,',
        'readwrite i Count = 0;']) {
        if (!out.includes(text))
            throw new Error(`gdbus introspect output lacks ${JSON.stringify(text)}:\n${out}`);
    }
});

try {
    run();
} finally {
    // force_exit() only asks GLib's worker thread to send the signal:
    // wait, or gjs may end before it is sent.
    daemon.force_exit();
    daemon.wait(null);
}
