#!/usr/bin/python3
# qipc_child.py: the other process of the Python tests.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Usage: qipc_child.py COMMAND KEY [ARGS...]
#
# Each command prints one line per step it reaches, flushed at once, so the
# test (conftest.Child) can follow it; commands that hold something wait for
# lines on stdin and exit normally at end of input. A failure prints
# "error DOMAIN CODE MESSAGE" and exits with status 2; an exception in a
# callback ends the child with status 4.

import hashlib
import os
import sys

import gi
import gi.overrides

# The source tree's override, as in conftest.py.
gi.overrides.__path__.insert(0, os.path.normpath(os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..', 'bindings', 'python', 'gi', 'overrides')))

gi.require_version('GLib', '2.0')
gi.require_version('Gio', '2.0')
gi.require_version('Qipc', '1.0')
from gi.repository import Gio, GLib, GObject, Qipc  # noqa: E402

# How long a child waits for anything before it gives up on its own, so a
# broken test never leaves a process behind for long.
PATIENCE_MS = 30000


def say(*words):
    print(*words, flush=True)


def read_command():
    """The next line on stdin, or None at end of input."""
    line = sys.stdin.readline()
    return line.strip() if line else None


def shm_attached(key, access='rw'):
    shm = Qipc.SharedMemory.new(key)
    shm.attach(Qipc.SharedMemoryAccess.READ_ONLY if access == 'ro'
               else Qipc.SharedMemoryAccess.READ_WRITE)
    return shm


def cmd_shm_read(key, offset, length, access='rw'):
    """Attaches, prints LENGTH bytes at OFFSET as text, and exits."""
    shm = shm_attached(key, access)
    data = shm.read(int(offset), int(length)).get_data()
    say('read', data.rstrip(b'\0').decode())
    say('access', 'ro' if shm.get_access() == Qipc.SharedMemoryAccess.READ_ONLY else 'rw')


def cmd_shm_write(key, offset, text):
    """Attaches read-write, writes TEXT at OFFSET under the lock, and exits."""
    shm = shm_attached(key)
    shm.lock()
    shm.write(int(offset), GLib.Bytes.new(text.encode()))
    shm.unlock()
    say('written')


def cmd_shm_hold_lock(key, text='held'):
    """Attaches, takes the lock, writes TEXT at 0 and holds the lock until
    told "unlock" on stdin."""
    shm = shm_attached(key)
    shm.lock()
    shm.write(0, GLib.Bytes.new(text.encode()))
    say('locked')
    while True:
        command = read_command()
        if command is None:
            return
        if command == 'unlock':
            shm.unlock()
            say('unlocked')


def cmd_shm_create_and_hold(key, size, text):
    """Creates the segment, writes TEXT at 0 and stays attached until the end
    of stdin."""
    shm = Qipc.SharedMemory.new(key)
    shm.create(int(size), Qipc.SharedMemoryAccess.READ_WRITE)
    shm.write(0, GLib.Bytes.new(text.encode()))
    say('created', shm.get_native_key())
    while read_command() is not None:
        pass


def cmd_shm_wait_changed(key):
    """Attaches, then waits on a main loop for ::changed and prints
    "changed" and what the segment holds."""
    loop = GLib.MainLoop.new(None, False)
    shm = shm_attached(key, 'ro')
    seen = []

    def on_changed(obj):
        seen.append(obj.read(0, 64).get_data().rstrip(b'\0').decode())
        loop.quit()

    def on_timeout():
        loop.quit()
        return GLib.SOURCE_REMOVE

    shm.connect('changed', on_changed)
    say('attached')
    GLib.timeout_add(PATIENCE_MS, on_timeout)
    loop.run()
    if not seen:
        say('timeout')
        sys.exit(3)
    say('changed', seen[0])


def cmd_shm_notify(key, text):
    """Attaches, writes TEXT at 0, notifies the other users and exits."""
    shm = shm_attached(key)
    shm.lock()
    shm.write(0, GLib.Bytes.new(text.encode()))
    shm.unlock()
    shm.notify_changed()
    say('notified')


def open_sem(key):
    return Qipc.SystemSemaphore.new(key, 0, Qipc.SystemSemaphoreAccess.OPEN)


def cmd_sem_hold(key, count):
    """Acquires COUNT units and then obeys stdin: "release N" releases N
    units; end of input exits normally."""
    sem = open_sem(key)
    for _ in range(int(count)):
        if not sem.try_acquire(PATIENCE_MS):
            say('timeout')
            sys.exit(3)
    say('acquired', count)
    while True:
        command = read_command()
        if command is None:
            return
        words = command.split()
        if words[0] == 'release':
            sem.release(int(words[1]))
            say('released', words[1])


def cmd_sem_release(key, count):
    """Releases COUNT units and exits normally."""
    sem = open_sem(key)
    sem.release(int(count))
    say('released', count)


def cmd_sem_ping_pong(ping_key, pong_key, rounds):
    """Takes a unit from PING and hands one to PONG, ROUNDS times."""
    ping = open_sem(ping_key)
    pong = open_sem(pong_key)
    say('ready')
    for i in range(int(rounds)):
        if not ping.try_acquire(PATIENCE_MS):
            say('timeout', i)
            sys.exit(3)
        pong.release(1)
    say('done')


def cmd_sem_acquire(key):
    """Waits for a unit (blocking) and reports what happened."""
    sem = open_sem(key)
    say('waiting')
    sem.acquire()
    say('acquired')


def serve_echo(server):
    """Echoes every byte each client sends until stdin closes."""
    clients = []

    def on_ready_read(socket):
        socket.write(socket.read_all())

    def on_new_connection(server):
        while server.has_pending_connections():
            socket = server.next_pending_connection()
            socket.connect('ready-read', on_ready_read)
            clients.append(socket)

    server.connect('new-connection', on_new_connection)
    loop = GLib.MainLoop()
    GLib.io_add_watch(GLib.IOChannel.unix_new(sys.stdin.fileno()),
                      GLib.PRIORITY_DEFAULT, GLib.IOCondition.IN | GLib.IOCondition.HUP,
                      lambda *args: loop.quit())
    GLib.timeout_add(PATIENCE_MS, loop.quit)
    loop.run()


def cmd_local_echo_server(name):
    """Listens on NAME, says "listening", echoes until stdin closes."""
    server = Qipc.LocalServer.new()
    server.listen(name)
    say('listening')
    serve_echo(server)


def cmd_tcp_echo_server(cert=None, key=None):
    """Listens on 127.0.0.1, port 0, says "listening PORT", echoes; with
    CERT and KEY (PEM files) every connection is TLS."""
    server = Qipc.TcpServer.new()
    if cert is not None:
        server.set_tls_certificate(Gio.TlsCertificate.new_from_files(cert, key))
    server.listen('127.0.0.1', 0)
    say('listening', server.get_server_port())
    serve_echo(server)


def cmd_local_send_memfd(name, text):
    """Connects to NAME and sends a memfd holding TEXT with one byte."""
    fd = os.memfd_create('qipc-test')
    os.write(fd, text.encode())
    socket = Qipc.LocalSocket.new()
    socket.connect_to_server(name)
    socket.wait_for_connected(PATIENCE_MS)
    fds = Gio.UnixFDList.new_from_array([fd])
    socket.write_with_fds(GLib.Bytes.new(b'!'), fds)
    socket.wait_for_bytes_written(PATIENCE_MS)
    say('sent')
    socket.wait_for_disconnected(PATIENCE_MS)


def serve_stdin(on_line):
    """Runs the main loop, calling ON_LINE with each line read from stdin,
    until stdin closes (or PATIENCE_MS pass)."""
    loop = GLib.MainLoop()
    pending = bytearray()

    def on_input(fd, condition):
        chunk = os.read(fd, 4096) if condition & GLib.IOCondition.IN else b''
        if not chunk:
            loop.quit()
            return GLib.SOURCE_REMOVE
        pending.extend(chunk)
        while b'\n' in pending:
            line, _, rest = bytes(pending).partition(b'\n')
            pending[:] = rest
            on_line(line.decode().strip())
        return GLib.SOURCE_CONTINUE

    # Raw reads: a buffered sys.stdin could swallow lines the watch never
    # reports.
    GLib.unix_fd_add_full(GLib.PRIORITY_DEFAULT, 0,
                          GLib.IOCondition.IN | GLib.IOCondition.HUP, on_input)
    GLib.timeout_add(PATIENCE_MS, loop.quit)
    loop.run()


def cmd_channel_broker(address, max_queued_bytes=None):
    """Hosts a QipcBroker at ADDRESS, says "listening", serves until stdin
    closes."""
    broker = Qipc.Broker.new()
    if max_queued_bytes is not None:
        broker.props.max_queued_bytes = int(max_queued_bytes)
    broker.listen(address)
    say('listening')
    serve_stdin(lambda line: None)
    broker.close()


def describe(data):
    """A message's data as one word: "none", "ay:LENGTH:SHA256" for large
    byte arrays, else the GVariant text format with types."""
    if data is None:
        return 'none'
    if data.get_type_string() == 'ay' and data.get_size() > 4096:
        raw = data.get_data_as_bytes().get_data()
        return f'ay:{len(raw)}:{hashlib.sha256(raw).hexdigest()}'
    return data.print_(True)


def channel_commands(bus):
    """Obeys stdin: "send CHANNEL MESSAGE [DATA]" (DATA in the GVariant text
    format) sends, flushes and says "sent"."""
    def on_flushed(source, result):
        try:
            Qipc.Channel.flush_finish(result)
            say('sent')
        except GLib.Error as e:
            say('error', e.domain, e.code, e.message)

    def on_line(line):
        words = line.split(' ', 3)
        if words[0] == 'send':
            data = GLib.Variant.parse(None, words[3], None, None) if len(words) > 3 else None
            Qipc.Channel.send_for_bus(bus, words[1], words[2], data)
            Qipc.Channel.flush_async(bus, None, on_flushed)
    serve_stdin(on_line)


def cmd_channel_listen(address, *names):
    """Connects to the broker at ADDRESS and listens on each NAME (names or
    patterns); says "listening" once the broker has the registrations, then
    "received NAME MESSAGE DATA" for each message (see describe()) while
    obeying channel_commands()."""
    bus = Qipc.Bus.new_for_address(address)
    channels = []
    for name in names:
        channel = Qipc.Channel.new_for_bus(bus, name)
        channel.connect('received', lambda channel, message, data: say(
            'received', channel.get_name(), message, describe(data)))
        channels.append(channel)
    # The broker handles a client's frames in order: once the flush is
    # answered, it has the registrations.
    Qipc.Channel.flush_for_bus(bus)
    say('listening')
    channel_commands(bus)
    bus.close()


def cmd_channel_echo(address, name, reply_channel):
    """Listens on NAME and sends every message back to REPLY_CHANNEL, with
    the same message name and data; says "listening" when registered."""
    bus = Qipc.Bus.new_for_address(address)

    def on_received(channel, message, data):
        Qipc.Channel.send_for_bus(bus, reply_channel, message, data)

    channel = Qipc.Channel.new_for_bus(bus, name)
    channel.connect('received', on_received)
    Qipc.Channel.flush_for_bus(bus)
    say('listening')
    channel_commands(bus)
    bus.close()


def cmd_channel_close_after_broker(address):
    """Hosts a broker at ADDRESS and connects a bus; closes the broker, sends
    a message the bus queues before it notices, closes the bus and says
    "closed"."""
    broker = Qipc.Broker.new()
    broker.listen(address)
    bus = Qipc.Bus.new_for_address(address)
    Qipc.Channel.flush_for_bus(bus)
    broker.close()
    Qipc.Channel.send_for_bus(bus, 'a/b', 'm', None)
    bus.close()
    say('closed')


class PyCounter(GObject.Object):
    """A counter written in Python: what cmd_dbus_export_counter exports."""
    __gsignals__ = {
        'changed': (GObject.SignalFlags.RUN_LAST, None, (int, str)),
        'bump': (GObject.SignalFlags.RUN_LAST | GObject.SignalFlags.ACTION, int, (int,)),
    }
    count = GObject.Property(type=int, default=0)
    level = GObject.Property(type=int, default=0, minimum=0, maximum=10)

    def do_bump(self, by):
        self.count += by
        return self.count


def cmd_dbus_export_counter(path, name):
    """On the session bus, exports a PyCounter at PATH (default interface,
    everything), owns NAME, says "ready"; then "emit N TEXT" emits changed,
    "set N" sets count, "unexport" and "export" end and redo the export
    (each says "ok" once sent), until stdin closes."""
    connection = Gio.bus_get_sync(Gio.BusType.SESSION, None)
    counter = PyCounter()
    export_id = Qipc.dbus_export_object(connection, path, None, counter, Qipc.ExportFlags.ALL)
    exported = [export_id]
    connection.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus',
                         'RequestName', GLib.Variant('(su)', (name, 4)), None,
                         Gio.DBusCallFlags.NONE, -1, None)
    say('ready')

    def on_line(line):
        words = line.split(' ', 2)
        if words[0] == 'emit':
            counter.emit('changed', int(words[1]), words[2])
        elif words[0] == 'set':
            counter.count = int(words[1])
        elif words[0] == 'get':
            say(counter.count)
            return
        elif words[0] == 'unexport':
            Qipc.dbus_unexport_object(connection, exported.pop())
        elif words[0] == 'export':
            exported.append(Qipc.dbus_export_object(connection, path, None, counter,
                                                    Qipc.ExportFlags.ALL))
        connection.flush_sync(None)
        say('ok')
    serve_stdin(on_line)
    for export_id in exported:
        Qipc.dbus_unexport_object(connection, export_id)


def cmd_mirror_export(address, path, value):
    """Exports a mirror_types.PyCounter whose value is VALUE at PATH on
    the broker at ADDRESS, says "exported", then obeys stdin: "set N",
    "label TEXT" (both say "ok"), "wait-value N" (says "value N" once
    the value is N)."""
    from mirror_types import PyCounter

    bus = Qipc.Bus.new_for_address(address)
    counter = PyCounter(value=int(value))
    bus.export_object(path, counter, Qipc.ExportFlags.ALL)
    waited = []

    def check_waited(*args):
        if waited and counter.props.value == waited[0]:
            say('value', waited.pop())

    counter.connect('notify::value', check_waited)

    def on_line(line):
        command, _, argument = line.partition(' ')
        if command == 'set':
            counter.props.value = int(argument)
        elif command == 'label':
            counter.props.label = argument
        elif command == 'wait-value':
            waited[:] = [int(argument)]
            check_waited()
            return
        say('ok')
    say('exported')
    serve_stdin(on_line)


COMMANDS = {
    'mirror-export': cmd_mirror_export,
    'local-echo-server': cmd_local_echo_server,
    'tcp-echo-server': cmd_tcp_echo_server,
    'local-send-memfd': cmd_local_send_memfd,
    'shm-read': cmd_shm_read,
    'shm-write': cmd_shm_write,
    'shm-hold-lock': cmd_shm_hold_lock,
    'shm-create-and-hold': cmd_shm_create_and_hold,
    'shm-wait-changed': cmd_shm_wait_changed,
    'shm-notify': cmd_shm_notify,
    'sem-hold': cmd_sem_hold,
    'sem-release': cmd_sem_release,
    'sem-ping-pong': cmd_sem_ping_pong,
    'sem-acquire': cmd_sem_acquire,
    'channel-broker': cmd_channel_broker,
    'channel-listen': cmd_channel_listen,
    'channel-echo': cmd_channel_echo,
    'channel-close-after-broker': cmd_channel_close_after_broker,
    'dbus-export-counter': cmd_dbus_export_counter,
}


def exit_on_exception(kind, value, traceback):
    """PyGObject reports an exception raised in a callback here and goes
    on; a child stops at once instead, so the test sees a clear failure
    rather than a missing line."""
    sys.__excepthook__(kind, value, traceback)
    sys.stdout.flush()
    os._exit(4)


def main():
    sys.excepthook = exit_on_exception
    command = COMMANDS[sys.argv[1]]
    try:
        command(*sys.argv[2:])
    except GLib.Error as e:
        say('error', e.domain, e.code, e.message)
        sys.exit(2)


if __name__ == '__main__':
    main()
