// testSockets.js: QipcLocalSocket, QipcTcpSocket and their servers from
// GJS, against echo servers in another process.
//
// SPDX-License-Identifier: LGPL-2.1-or-later

import GLib from 'gi://GLib';
import Qipc from 'gi://Qipc?version=1.0';

import {
    assert, assertEqual, deferred, run, spawn, test, withTimeout, PID,
    LINE_TIMEOUT_MS,
} from './testlib.js';

const State = Qipc.SocketState;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// Resolves when SOCKET emits SIGNAL, rejects on error-occurred.
function next(socket, signal) {
    const {promise, resolve, reject} = deferred();
    const ids = [
        socket.connect(signal, () => resolve()),
        socket.connect('error-occurred', (_s, error) => reject(error)),
    ];
    return withTimeout(promise.finally(() => ids.forEach(id => socket.disconnect(id))),
        LINE_TIMEOUT_MS, signal);
}

// Writes each text and resolves to everything echoed back.
function exchange(socket, texts) {
    const expected = texts.join('');
    let received = '';
    const {promise, resolve} = deferred();
    const id = socket.connect('ready-read', () => {
        received += decoder.decode(socket.read_all().toArray());
        if (received.length >= expected.length)
            resolve(received);
    });
    for (const text of texts)
        socket.write(new GLib.Bytes(encoder.encode(text)));
    return withTimeout(promise.finally(() => socket.disconnect(id)), LINE_TIMEOUT_MS, 'echo');
}

test('/sockets/local/echo', async () => {
    const name = `@qipc-gjs-${PID}-local-echo`;
    const server = spawn('local-echo-server', name);
    await server.expect('listening');

    const socket = Qipc.LocalSocket.new();
    const states = [];
    socket.connect('state-changed', (_s, state) => states.push(state));
    const connected = next(socket, 'connected');
    socket.connect_to_server(name);
    await connected;
    assertEqual(socket.state, State.CONNECTED);
    assertEqual(states, [State.CONNECTING, State.CONNECTED]);

    const texts = Array.from({length: 2000}, (_, i) => `${i};`);
    assertEqual(await exchange(socket, texts), texts.join(''));

    const credentials = socket.get_peer_credentials();
    assertEqual(credentials.get_unix_pid(), server.pid);

    const disconnected = next(socket, 'disconnected');
    socket.close();
    await disconnected;
    assertEqual(socket.state, State.UNCONNECTED);
});

test('/sockets/local/server-gone', async () => {
    const name = `@qipc-gjs-${PID}-server-gone`;
    const server = spawn('local-echo-server', name);
    await server.expect('listening');
    const socket = Qipc.LocalSocket.new();
    const connected = next(socket, 'connected');
    socket.connect_to_server(name);
    await connected;

    const {promise, resolve} = deferred();
    socket.connect('disconnected', () => resolve());
    await server.kill();
    await withTimeout(promise, LINE_TIMEOUT_MS, 'disconnected');
    assert(socket.get_error().matches(Qipc.socket_error_quark(), Qipc.SocketError.REMOTE_HOST_CLOSED));
});

test('/sockets/tcp/echo', async () => {
    const server = spawn('tcp-echo-server');
    const port = Number((await server.expect('listening')).split(' ')[1]);
    assert(port > 0, 'port 0 picked a port');

    const socket = Qipc.TcpSocket.new();
    const connected = next(socket, 'connected');
    socket.connect_to_host('127.0.0.1', port);
    await connected;
    assertEqual(socket.get_peer_port(), port);
    assertEqual(await exchange(socket, ['hello ', 'over ', 'tcp\n']), 'hello over tcp\n');
    assert(socket.can_read_line() === false);
});

test('/sockets/tcp/refused', async () => {
    const server = Qipc.TcpServer.new();
    server.listen('127.0.0.1', 0);
    const port = server.get_server_port();
    server.close();

    const socket = Qipc.TcpSocket.new();
    const {promise, resolve} = deferred();
    socket.connect('error-occurred', (_s, error) => resolve(error));
    socket.connect_to_host('127.0.0.1', port);
    const error = await withTimeout(promise, LINE_TIMEOUT_MS, 'error-occurred');
    assert(error.matches(Qipc.socket_error_quark(), Qipc.SocketError.CONNECTION_REFUSED),
        `expected CONNECTION_REFUSED, got ${error.message}`);
    assertEqual(socket.state, State.UNCONNECTED);
});

run();
