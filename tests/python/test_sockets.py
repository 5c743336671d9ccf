# test_sockets.py: QipcLocalSocket, QipcTcpSocket and their servers from
# Python, against servers in another process.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import subprocess

import pytest
from conftest import LOOP_TIMEOUT, assert_error, run_loop
from gi.repository import Gio, GLib, Qipc

WAIT_MS = LOOP_TIMEOUT * 1000
State = Qipc.SocketState
Error = Qipc.SocketError


def socket_error(excinfo, code):
    assert_error(excinfo, Qipc.socket_error_quark(), code)


def exchange(socket, payloads):
    """Writes each payload and collects the echo until all came back."""
    expected = b''.join(payloads)
    received = bytearray()
    loop = GLib.MainLoop()

    def on_ready_read(socket):
        received.extend(socket.read_all().get_data())
        if len(received) >= len(expected):
            loop.quit()

    handler = socket.connect('ready-read', on_ready_read)
    for payload in payloads:
        socket.write(GLib.Bytes.new(payload))
    run_loop(loop)
    socket.disconnect(handler)
    return bytes(received)


@pytest.fixture
def local_name(request):
    return f'@qipc-py-{os.getpid()}-{request.node.name}'


def test_local_echo_between_processes(spawn, local_name):
    server = spawn('local-echo-server', local_name)
    server.expect('listening')

    socket = Qipc.LocalSocket.new()
    states = []
    socket.connect('state-changed', lambda s, state: states.append(state))
    socket.connect_to_server(local_name)
    assert socket.wait_for_connected(WAIT_MS)
    assert socket.get_state() == State.CONNECTED
    assert states == [State.CONNECTING, State.CONNECTED]

    # Thousands of small writes come back in order and intact.
    payloads = [f'{i:05d};'.encode() for i in range(5000)]
    assert exchange(socket, payloads) == b''.join(payloads)

    socket.close()
    assert socket.get_state() == State.UNCONNECTED


def test_local_lines_and_waits(spawn, local_name):
    server = spawn('local-echo-server', local_name)
    server.expect('listening')
    socket = Qipc.LocalSocket.new()
    socket.connect_to_server(local_name)
    socket.wait_for_connected(WAIT_MS)

    socket.write(GLib.Bytes.new(b'first line\nsecond line\npartial'))
    while socket.bytes_available() < 30:
        assert socket.wait_for_ready_read(WAIT_MS)
    assert socket.can_read_line()
    assert socket.read_line(0).get_data() == b'first line\n'
    assert socket.read_line(0).get_data() == b'second line\n'
    assert not socket.can_read_line()
    assert socket.read_all().get_data() == b'partial'

    with pytest.raises(GLib.Error) as excinfo:
        socket.wait_for_ready_read(50)
    socket_error(excinfo, Error.SOCKET_TIMEOUT)


def test_local_peer_credentials_and_disconnect(spawn, local_name):
    server = spawn('local-echo-server', local_name)
    server.expect('listening')
    socket = Qipc.LocalSocket.new()
    socket.connect_to_server(local_name)
    socket.wait_for_connected(WAIT_MS)

    credentials = socket.get_peer_credentials()
    assert credentials.get_unix_pid() == server.pid
    assert credentials.get_unix_user() == os.getuid()

    # The server process dies: the socket ends up unconnected, with the reason.
    server.kill()
    assert socket.wait_for_disconnected(WAIT_MS)
    assert socket.get_state() == State.UNCONNECTED
    assert socket.get_error().matches(Qipc.socket_error_quark(), Error.REMOTE_HOST_CLOSED)


def test_local_fd_passing(spawn, local_name):
    server = Qipc.LocalServer.new()
    server.listen(local_name)
    child = spawn('local-send-memfd', local_name, 'shared through a memfd')

    assert server.wait_for_new_connection(WAIT_MS)
    socket = server.next_pending_connection()
    while socket.bytes_available() == 0:
        socket.wait_for_ready_read(WAIT_MS)
    assert socket.read_all().get_data() == b'!'
    fds = socket.take_fds()
    assert fds is not None and fds.get_length() == 1
    fd = fds.steal_fds()[0]
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        assert os.read(fd, 100) == b'shared through a memfd'
    finally:
        os.close(fd)
    child.expect('sent')
    socket.close()


def test_local_server_not_found(local_name):
    socket = Qipc.LocalSocket.new()
    errors = []
    socket.connect('error-occurred', lambda s, error: errors.append(error))
    socket.connect_to_server(local_name + '-nobody')
    with pytest.raises(GLib.Error) as excinfo:
        socket.wait_for_connected(WAIT_MS)
    assert excinfo.value.matches(Qipc.socket_error_quark(), Error.SERVER_NOT_FOUND) or \
        excinfo.value.matches(Qipc.socket_error_quark(), Error.CONNECTION_REFUSED)
    assert len(errors) == 1


def test_tcp_echo_port_zero(spawn):
    server = spawn('tcp-echo-server')
    port = int(server.expect('listening').split()[1])
    assert port > 0

    socket = Qipc.TcpSocket.new()
    socket.set_no_delay(True)
    socket.connect_to_host('127.0.0.1', port)
    assert socket.wait_for_connected(WAIT_MS)
    assert socket.get_peer_port() == port
    assert socket.get_peer_address() == '127.0.0.1'
    assert socket.get_no_delay()

    payloads = [b'x' * 100 for _ in range(1000)]
    assert exchange(socket, payloads) == b''.join(payloads)


def test_tcp_connection_refused():
    # A port that was free a moment ago: nobody listens there.
    probe = Gio.Socket.new(Gio.SocketFamily.IPV4, Gio.SocketType.STREAM, Gio.SocketProtocol.TCP)
    probe.bind(Gio.InetSocketAddress.new_from_string('127.0.0.1', 0), False)
    port = probe.get_local_address().get_port()
    probe.close()

    socket = Qipc.TcpSocket.new()
    socket.connect_to_host('127.0.0.1', port)
    with pytest.raises(GLib.Error) as excinfo:
        socket.wait_for_connected(WAIT_MS)
    socket_error(excinfo, Error.CONNECTION_REFUSED)


@pytest.fixture(scope='module')
def certificate(tmp_path_factory):
    directory = tmp_path_factory.mktemp('tls')
    cert, key = directory / 'cert.pem', directory / 'key.pem'
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
                    '-subj', '/CN=localhost',
                    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
                    '-days', '1', '-keyout', str(key), '-out', str(cert)],
                   check=True, capture_output=True)
    return str(cert), str(key)


def test_tls_self_signed_rejected_then_accepted(spawn, certificate):
    server = spawn('tcp-echo-server', *certificate)
    port = int(server.expect('listening').split()[1])

    # Verification is on by default: a self-signed certificate is refused.
    refused = Qipc.TcpSocket.new()
    refused.connect_to_host_encrypted('localhost', port)
    with pytest.raises(GLib.Error) as excinfo:
        refused.wait_for_connected(WAIT_MS)
    socket_error(excinfo, Error.TLS_HANDSHAKE_FAILED)
    assert refused.get_state() == State.UNCONNECTED

    # A tls-errors handler may accept it, as QSslSocket::ignoreSslErrors.
    accepted = Qipc.TcpSocket.new()
    seen = []

    def on_tls_errors(socket, peer_certificate, flags):
        seen.append(flags)
        return True

    encrypted = []
    accepted.connect('tls-errors', on_tls_errors)
    accepted.connect('encrypted', lambda s: encrypted.append(True))
    accepted.connect_to_host_encrypted('localhost', port)
    assert accepted.wait_for_connected(WAIT_MS)
    assert seen and seen[0] & Gio.TlsCertificateFlags.UNKNOWN_CA
    assert encrypted == [True]
    assert accepted.is_encrypted()
    assert accepted.get_peer_certificate() is not None
    assert exchange(accepted, [b'secret ', b'words']) == b'secret words'
