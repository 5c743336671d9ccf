// child.js: the other process of the GJS tests.
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Usage: gjs -m child.js COMMAND KEY [ARGS...]
//
// Each command prints one line per step it reaches, so the test
// (testlib.js Child) can follow it; commands that hold something wait for
// lines on stdin and exit normally at end of input. A failure prints
// "error DOMAIN CODE MESSAGE" and exits with status 2.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import GObject from 'gi://GObject';
import Qipc from 'gi://Qipc?version=1.0';
import System from 'system';

// How long a child waits for anything before it gives up on its own, so a
// broken test never leaves a process behind for long.
const PATIENCE_MS = 30000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const stdin = new Gio.DataInputStream({
    base_stream: new Gio.UnixInputStream({fd: 0, close_fd: false}),
});

function say(...words) {
    print(words.join(' '));
}

// The next line on stdin, or null at end of input.
function readCommand() {
    const [line] = stdin.read_line_utf8(null);
    return line === null ? null : line.trim();
}

function bytes(text) {
    return new GLib.Bytes(encoder.encode(text));
}

function textAt(shm, offset, length) {
    return decoder.decode(shm.read(offset, length).toArray()).replace(/\0+$/, '');
}

function attached(key, access = 'rw') {
    const shm = Qipc.SharedMemory.new(key);
    shm.attach(access === 'ro' ? Qipc.SharedMemoryAccess.READ_ONLY : Qipc.SharedMemoryAccess.READ_WRITE);
    return shm;
}

function openSem(key) {
    return Qipc.SystemSemaphore.new(key, 0, Qipc.SystemSemaphoreAccess.OPEN);
}

// Echoes every byte each client of SERVER sends until stdin closes.
function serveEcho(server) {
    const clients = [];
    server.connect('new-connection', () => {
        while (server.has_pending_connections()) {
            const socket = server.next_pending_connection();
            socket.connect('ready-read', () => socket.write(socket.read_all()));
            clients.push(socket);
        }
    });
    runUntilStdinCloses();
}

// Runs the main loop until stdin closes (or PATIENCE_MS pass).
function runUntilStdinCloses() {
    const loop = new GLib.MainLoop(null, false);
    const input = new Gio.UnixInputStream({fd: 0, close_fd: false});
    input.read_bytes_async(1, GLib.PRIORITY_DEFAULT, null, () => loop.quit());
    GLib.timeout_add(GLib.PRIORITY_DEFAULT, PATIENCE_MS, () => loop.quit());
    loop.run();
}

// A message's data as one word: "none", or the GVariant text format with
// types.
function describe(data) {
    return data === null ? 'none' : data.print(true);
}

// A counter written in JavaScript: what dbus-export-counter exports. Unlike
// mirrorTypes.js's JsCounter it keeps the GType name GJS makes up, so the
// test checks the default interface name derived from it.
const GjsCounter = GObject.registerClass({
    Properties: {
        'count': GObject.ParamSpec.int('count', '', '', GObject.ParamFlags.READWRITE,
            -2147483648, 2147483647, 0),
    },
    Signals: {
        'changed': {param_types: [GObject.TYPE_INT, GObject.TYPE_STRING]},
        'bump': {
            flags: GObject.SignalFlags.RUN_LAST | GObject.SignalFlags.ACTION,
            param_types: [GObject.TYPE_INT],
            return_type: GObject.TYPE_INT,
        },
    },
}, class GjsCounter extends GObject.Object {});

const commands = {
    // Listens on NAME, says "listening", echoes until stdin closes.
    'local-echo-server'(name) {
        const server = Qipc.LocalServer.new();
        server.listen(name);
        say('listening');
        serveEcho(server);
    },

    // Listens on 127.0.0.1, port 0, says "listening PORT", echoes.
    'tcp-echo-server'() {
        const server = Qipc.TcpServer.new();
        server.listen('127.0.0.1', 0);
        say('listening', server.get_server_port());
        serveEcho(server);
    },

    // Attaches, prints LENGTH bytes at OFFSET as text, and exits.
    'shm-read'(key, offset, length, access = 'rw') {
        const shm = attached(key, access);
        say('read', textAt(shm, Number(offset), Number(length)));
        say('access', shm.get_access() === Qipc.SharedMemoryAccess.READ_ONLY ? 'ro' : 'rw');
    },

    // Attaches read-write, writes TEXT at OFFSET under the lock, and exits.
    'shm-write'(key, offset, text) {
        const shm = attached(key);
        shm.lock();
        shm.write(Number(offset), bytes(text));
        shm.unlock();
        say('written');
    },

    // Attaches, takes the lock, writes TEXT at 0 and holds the lock until
    // told "unlock" on stdin.
    'shm-hold-lock'(key, text = 'held') {
        const shm = attached(key);
        shm.lock();
        shm.write(0, bytes(text));
        say('locked');
        for (let command; (command = readCommand()) !== null;) {
            if (command === 'unlock') {
                shm.unlock();
                say('unlocked');
            }
        }
    },

    // Creates the segment, writes TEXT at 0 and stays attached until the
    // end of stdin.
    'shm-create-and-hold'(key, size, text) {
        const shm = Qipc.SharedMemory.new(key);
        shm.create(Number(size), Qipc.SharedMemoryAccess.READ_WRITE);
        shm.write(0, bytes(text));
        say('created', shm.get_native_key());
        while (readCommand() !== null)
            ;
    },

    // Attaches, then waits on a main loop for ::changed and prints
    // "changed" and what the segment holds.
    'shm-wait-changed'(key) {
        const loop = new GLib.MainLoop(null, false);
        const shm = attached(key, 'ro');
        let seen = null;
        shm.connect('changed', () => {
            seen = textAt(shm, 0, 64);
            loop.quit();
        });
        say('attached');
        GLib.timeout_add(GLib.PRIORITY_DEFAULT, PATIENCE_MS, () => {
            loop.quit();
            return GLib.SOURCE_REMOVE;
        });
        loop.run();
        if (seen === null) {
            say('timeout');
            System.exit(3);
        }
        say('changed', seen);
    },

    // Attaches, writes TEXT at 0, notifies the other users and exits.
    'shm-notify'(key, text) {
        const shm = attached(key);
        shm.lock();
        shm.write(0, bytes(text));
        shm.unlock();
        shm.notify_changed();
        say('notified');
    },

    // Acquires COUNT units and then obeys stdin: "release N" releases N
    // units; end of input exits normally.
    'sem-hold'(key, count) {
        const sem = openSem(key);
        for (let i = 0; i < Number(count); i++) {
            if (!sem.try_acquire(PATIENCE_MS)) {
                say('timeout');
                System.exit(3);
            }
        }
        say('acquired', count);
        for (let command; (command = readCommand()) !== null;) {
            const words = command.split(' ');
            if (words[0] === 'release') {
                sem.release(Number(words[1]));
                say('released', words[1]);
            }
        }
    },

    // Releases COUNT units and exits normally.
    'sem-release'(key, count) {
        openSem(key).release(Number(count));
        say('released', count);
    },

    // Takes a unit from PING and hands one to PONG, ROUNDS times.
    'sem-ping-pong'(pingKey, pongKey, rounds) {
        const ping = openSem(pingKey);
        const pong = openSem(pongKey);
        say('ready');
        for (let i = 0; i < Number(rounds); i++) {
            if (!ping.try_acquire(PATIENCE_MS)) {
                say('timeout', i);
                System.exit(3);
            }
            pong.release(1);
        }
        say('done');
    },

    // Waits for a unit (blocking) and reports what happened.
    'sem-acquire'(key) {
        const sem = openSem(key);
        say('waiting');
        sem.acquire();
        say('acquired');
    },

    // Connects to the broker at ADDRESS and listens on each NAME (names or
    // patterns); says "listening" once the broker has the registrations,
    // then "received NAME MESSAGE DATA" for each message, until stdin
    // closes.
    'channel-listen'(address, ...names) {
        const bus = Qipc.Bus.new_for_address(address);
        const channels = names.map(name => {
            const channel = Qipc.Channel.new_for_bus(bus, name);
            channel.connect('received', (_channel, message, data) =>
                say('received', name, message, describe(data)));
            return channel;
        });
        // The broker handles a client's frames in order: once the flush is
        // answered, it has the registrations.
        Qipc.Channel.flush_for_bus(bus);
        say('listening');
        runUntilStdinCloses();
        // The channels are used up to here, so they listen up to here.
        channels.length = 0;
        bus.close();
    },
    // dbus-export-counter PATH NAME: on the session bus, exports a
    // GjsCounter at PATH (everything, default interface), owns NAME, says
    // "ready TYPENAME"; then "emit N TEXT" emits changed, "set N" sets
    // count (each says "ok" once sent), "get" says count, until stdin
    // closes.
    'dbus-export-counter'(path, name) {
        const connection = Gio.bus_get_sync(Gio.BusType.SESSION, null);
        const counter = new GjsCounter();
        counter.connect('bump', (self, by) => {
            self.count += by;
            return self.count;
        });
        const id = Qipc.dbus_export_object(connection, path, null, counter, Qipc.ExportFlags.ALL);
        connection.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus',
            'RequestName', new GLib.Variant('(su)', [name, 4]), null, Gio.DBusCallFlags.NONE, -1, null);
        say('ready', GObject.type_name(GjsCounter.$gtype));

        // The main loop runs while waiting for commands: it serves the
        // method calls and property accesses.
        const loop = new GLib.MainLoop(null, false);
        const readNext = () => stdin.read_line_async(GLib.PRIORITY_DEFAULT, null, (_stream, result) => {
            const [line] = stdin.read_line_finish_utf8(result);
            if (line === null) {
                loop.quit();
                return;
            }
            const [word, value, ...text] = line.trim().split(' ');
            if (word === 'get') {
                say(counter.count);
            } else {
                if (word === 'emit')
                    counter.emit('changed', Number(value), text.join(' '));
                else if (word === 'set')
                    counter.count = Number(value);
                connection.flush_sync(null);
                say('ok');
            }
            readNext();
        });
        readNext();
        GLib.timeout_add(GLib.PRIORITY_DEFAULT, PATIENCE_MS, () => loop.quit());
        loop.run();
        Qipc.dbus_unexport_object(connection, id);
    },

    // Exports a mirrorTypes.js JsCounter whose value is VALUE at PATH on
    // the broker at ADDRESS, says "exported", then obeys stdin: "set N"
    // (says "ok"), "wait-value N" (says "value N" once the value is N).
    async 'mirror-export'(address, path, value) {
        const {JsCounter} = await import('./mirrorTypes.js');
        const bus = Qipc.Bus.new_for_address(address);
        const counter = new JsCounter({value: Number(value)});
        bus.export_object(path, counter, Qipc.ExportFlags.ALL);
        let waited = null;
        const checkWaited = () => {
            if (waited !== null && counter.value === waited) {
                say('value', waited);
                waited = null;
            }
        };
        counter.connect('notify::value', checkWaited);
        const loop = new GLib.MainLoop(null, false);
        const readNext = () => stdin.read_line_async(GLib.PRIORITY_DEFAULT, null, (_stream, result) => {
            const [bytes] = stdin.read_line_finish(result);
            if (bytes === null) {
                loop.quit();
                return;
            }
            const [command, argument] = decoder.decode(bytes).trim().split(' ');
            if (command === 'set') {
                counter.value = Number(argument);
                say('ok');
            } else if (command === 'wait-value') {
                waited = Number(argument);
                checkWaited();
            }
            readNext();
        });
        readNext();
        say('exported');
        GLib.timeout_add(GLib.PRIORITY_DEFAULT, PATIENCE_MS, () => loop.quit());
        loop.run();
        bus.close();
    },
};

const [name, ...args] = ARGV;
if (!(name in commands)) {
    printerr(`child.js: unknown command ${name}`);
    System.exit(64);
}
try {
    await commands[name](...args);
} catch (e) {
    if (!(e instanceof GLib.Error))
        throw e;
    say('error', GLib.quark_to_string(e.domain), e.code, e.message);
    System.exit(2);
}
