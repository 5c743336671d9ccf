# test_channels.py: QipcBroker, QipcBus and QipcChannel from Python, with
# the broker in this process or in another one, and listeners in others.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A broker hosted here is served only while this process runs its main
# context: tests that block on a child's output (conftest.Child.readline)
# use a broker in a child process instead (remote_broker).

import gc
import hashlib
import os
import socket
import subprocess
import time

import pytest
from conftest import assert_error
from gi.repository import Gio, GLib, Qipc

# Every wait is bounded: a broken test fails after WAIT_S, never hangs.
WAIT_S = 10
BusError = Qipc.BusError


def bus_error(excinfo, code):
    assert_error(excinfo, Qipc.bus_error_quark(), code)


def wait_for(condition, what, timeout=WAIT_S, contexts=None):
    """Runs the main context (or CONTEXTS) until CONDITION() holds; fails
    the test after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    if contexts is None:
        # A ticking source wakes the blocking iteration to check the deadline.
        context = GLib.MainContext.default()
        tick = GLib.timeout_add(20, lambda: GLib.SOURCE_CONTINUE)
        try:
            while not condition():
                assert time.monotonic() < deadline, f'{what}: not within {timeout} s'
                context.iteration(True)
        finally:
            GLib.source_remove(tick)
        return
    while not condition():
        assert time.monotonic() < deadline, f'{what}: not within {timeout} s'
        if not any([context.iteration(False) for context in contexts]):
            time.sleep(0.001)


def finish(start, finish_func):
    """Calls START(callback), waits for the callback and returns
    FINISH_FUNC(result) with the source object, or the GLib.Error raised."""
    outcome = []

    def callback(source, result):
        try:
            outcome.append((source, finish_func(result)))
        except GLib.Error as e:
            outcome.append((source, e))

    start(callback)
    wait_for(lambda: outcome, 'async callback')
    return outcome[0]


class Inbox:
    """What a channel receives, as (message, data) pairs. It holds the
    channel: a channel that is finalized stops listening."""

    def __init__(self, channel, signal='received'):
        self.channel = channel
        self.messages = []
        channel.connect(signal, self._on_received)

    def _on_received(self, channel, message, data):
        self.messages.append((message, data))

    def wait(self, count):
        wait_for(lambda: len(self.messages) >= count,
                 f'{count} messages on {self.channel.get_name()} (got {self.messages})')
        return self.messages

    @property
    def names(self):
        return [message for message, _ in self.messages]


@pytest.fixture
def address(request):
    return f'unix:abstract=qipc-py-{os.getpid()}-{request.node.name}'


@pytest.fixture
def broker(address):
    """A broker in this process."""
    broker = Qipc.Broker.new()
    broker.listen(address)
    yield broker
    broker.close()


@pytest.fixture
def bus(broker, address):
    bus = Qipc.Bus.new_for_address(address)
    yield bus
    bus.close()


@pytest.fixture
def remote_broker(spawn, address):
    """A broker in a child process, serving while this one blocks."""
    child = spawn('channel-broker', address)
    child.expect('listening')
    return child


@pytest.fixture
def remote_bus(remote_broker, address):
    bus = Qipc.Bus.new_for_address(address)
    yield bus
    bus.close()


def test_sender_receives_its_own_message(broker, bus, address):
    added = []
    broker.connect('channel-added', lambda b, name: added.append(name))
    channel = Qipc.Channel.new_for_bus(bus, 'org.example/settings')
    assert channel.get_name() == 'org.example/settings'
    assert channel.props.bus == bus
    inbox = Inbox(channel)

    Qipc.Channel.send_for_bus(bus, 'org.example/settings', 'setValue', GLib.Variant('i', 42))
    [(message, data)] = inbox.wait(1)
    assert message == 'setValue'
    assert data.get_type_string() == 'i' and data.unpack() == 42
    assert added == ['org.example/settings']
    assert broker.props.n_clients == 1
    assert bus.is_connected()
    assert bus.get_address() == address


def test_fan_out_to_two_processes_in_order(spawn, remote_bus, address):
    listeners = [spawn('channel-listen', address, 'fan/out') for _ in range(2)]
    for listener in listeners:
        listener.expect('listening')
    inbox = Inbox(Qipc.Channel.new_for_bus(remote_bus, 'fan/out'))

    for i in range(20):
        Qipc.Channel.send_for_bus(remote_bus, 'fan/out', 'tick', GLib.Variant('u', i))
    # This process gets its own messages too, in the order they were sent.
    assert [data.unpack() for _, data in inbox.wait(20)] == list(range(20))
    for listener in listeners:
        for i in range(20):
            assert listener.readline() == f'received fan/out tick uint32 {i}'


def test_detailed_signal_sees_only_its_message(bus):
    channel = Qipc.Channel.new_for_bus(bus, 'detail/x')
    everything = Inbox(channel)
    set_value = Inbox(channel, 'received::setValue')
    never = Inbox(channel, 'received::neverSent')

    # A name no quark exists for reaches the undetailed handlers only.
    fresh = f'fresh-{os.getpid()}-{time.monotonic_ns()}'
    for message in ['other', 'setValue', 'setValueX', fresh, 'setValue']:
        Qipc.Channel.send_for_bus(bus, 'detail/x', message, GLib.Variant('s', message))
    everything.wait(5)
    assert everything.names == ['other', 'setValue', 'setValueX', fresh, 'setValue']
    assert set_value.names == ['setValue', 'setValue']
    assert never.messages == []


class Recorder(Qipc.Channel):
    """A channel subclass that overrides the receive virtual function."""

    def __init__(self, **properties):
        super().__init__(**properties)
        self.calls = []

    def do_receive(self, message, data):
        self.calls.append(('do_receive', message, None if data is None else data.unpack()))


def test_subclass_overrides_receive(bus):
    # Construction registers the channel: no constructor call needed.
    recorder = Recorder(bus=bus, name='sub/class')
    assert isinstance(recorder, Qipc.Channel)
    assert recorder.get_name() == 'sub/class' and recorder.get_bus() == bus
    recorder.connect('received', lambda c, m, d: c.calls.append(('handler', m)))
    recorder.connect_after('received', lambda c, m, d: c.calls.append(('after', m)))
    assert Qipc.Channel.is_registered_for_bus(bus, 'sub/class')

    Qipc.Channel.send_for_bus(bus, 'sub/class', 'ping', GLib.Variant('as', ['a', 'b']))
    Qipc.Channel.send_for_bus(bus, 'sub/class', 'bare', None)
    wait_for(lambda: len(recorder.calls) >= 6, 'six calls')
    # ::received is RUN_LAST: handlers, the class handler, then the after ones.
    assert recorder.calls == [
        ('handler', 'ping'), ('do_receive', 'ping', ['a', 'b']), ('after', 'ping'),
        ('handler', 'bare'), ('do_receive', 'bare', None), ('after', 'bare'),
    ]

    # A pattern works for subclasses too.
    deep = Recorder(bus=bus, name='sub/**')
    Qipc.Channel.send_for_bus(bus, 'sub/x/y', 'deep', GLib.Variant('i', 1))
    wait_for(lambda: deep.calls, 'the pattern subclass')
    assert deep.calls == [('do_receive', 'deep', 1)]


def test_patterns(bus):
    patterns = ['a/*', 'a/**', 'a/*/c', 'a/b']
    inboxes = {name: Inbox(Qipc.Channel.new_for_bus(bus, name)) for name in patterns}

    # Registrations reach the broker before a later query on the same bus.
    assert Qipc.Channel.is_registered_for_bus(bus, 'a/q/c')
    assert Qipc.Channel.is_registered_for_bus(bus, 'a/q/r/s')
    assert not Qipc.Channel.is_registered_for_bus(bus, 'a')
    assert not Qipc.Channel.is_registered_for_bus(bus, 'b/c')
    everything = Inbox(Qipc.Channel.new_for_bus(bus, '**'))
    assert Qipc.Channel.is_registered_for_bus(bus, 'b/c')

    # The message name says which channel name it was sent to.
    targets = ['a', 'a/b', 'a/b/c', 'a/b/c/d', 'b/a', 'a/x/c', 'ab/c', 'a/bc']
    for target in targets:
        Qipc.Channel.send_for_bus(bus, target, target, None)
    # One bus dispatches a message to all its matching channels before the
    # next: once '**' has the last one, the others have all theirs.
    everything.wait(len(targets))
    assert everything.names == targets
    assert inboxes['a/*'].names == ['a/b', 'a/bc']
    assert inboxes['a/**'].names == ['a/b', 'a/b/c', 'a/b/c/d', 'a/x/c', 'a/bc']
    assert inboxes['a/*/c'].names == ['a/b/c', 'a/x/c']
    assert inboxes['a/b'].names == ['a/b']


def test_is_registered_follows_a_killed_listener(spawn, remote_bus, address):
    name = 'registered/by/child'
    assert not Qipc.Channel.is_registered_for_bus(remote_bus, name)

    listener = spawn('channel-listen', address, name)
    listener.expect('listening')
    assert Qipc.Channel.is_registered_for_bus(remote_bus, name)
    _, registered = finish(lambda cb: Qipc.Channel.is_registered_async(remote_bus, name, None, cb),
                           Qipc.Channel.is_registered_finish)
    assert registered is True

    # The broker drops a dead client's channels as soon as it sees the
    # connection end; the answer comes back through the main loop.
    listener.kill()
    deadline = time.monotonic() + WAIT_S
    while Qipc.Channel.is_registered_for_bus(remote_bus, name):
        assert time.monotonic() < deadline, 'the killed listener is still registered'
        time.sleep(0.01)


def test_flush_sync_and_async(bus):
    events = []
    channel = Qipc.Channel.new_for_bus(bus, 'flush/x')
    channel.connect('received', lambda c, m, d: events.append('received'))
    assert Qipc.Channel.flush_for_bus(bus) is True

    # The broker queues our own copy before it answers the flush, and the
    # bus reads in order: the message comes first.
    Qipc.Channel.send_for_bus(bus, 'flush/x', 'm', None)

    def flushed(result):
        events.append('flushed')
        return Qipc.Channel.flush_finish(result)

    source, ok = finish(lambda cb: Qipc.Channel.flush_async(bus, None, cb), flushed)
    assert ok is True and source == bus
    assert events == ['received', 'flushed']

    # Cancelled before it starts: G_IO_ERROR_CANCELLED through the callback.
    cancellable = Gio.Cancellable()
    cancellable.cancel()
    _, error = finish(lambda cb: Qipc.Channel.flush_async(bus, cancellable, cb),
                      Qipc.Channel.flush_finish)
    assert isinstance(error, GLib.Error)
    assert error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)

    # A bad name fails through the callback too.
    _, error = finish(lambda cb: Qipc.Channel.is_registered_async(bus, 'a/*', None, cb),
                      Qipc.Channel.is_registered_finish)
    assert error.matches(Qipc.bus_error_quark(), BusError.INVALID_NAME)


@pytest.fixture
def default_bus_address(broker, address, monkeypatch):
    """$QIPC_BUS_ADDRESS names this test's broker; the default bus is
    closed afterwards, so the next get_default() connects anew."""
    monkeypatch.setenv('QIPC_BUS_ADDRESS', address)
    yield address
    Qipc.Bus.get_default().close()


def test_default_bus(default_bus_address):
    channel = Qipc.Channel.new('default/x')
    default = Qipc.Bus.get_default()
    assert default.get_address() == default_bus_address
    assert channel.get_bus() == default
    inbox = Inbox(channel)

    Qipc.Channel.send('default/x', 'hello', GLib.Variant('s', 'world'))
    assert Qipc.Channel.flush() is True
    assert Qipc.Channel.is_registered('default/x')
    assert not Qipc.Channel.is_registered('default/y')
    assert inbox.wait(1)[0][1].unpack() == 'world'

    source, ok = finish(lambda cb: Qipc.Channel.flush_async(None, None, cb),
                        Qipc.Channel.flush_finish)
    assert ok is True and source == default
    source, registered = finish(
        lambda cb: Qipc.Channel.is_registered_async(None, 'default/x', None, cb),
        Qipc.Channel.is_registered_finish)
    assert registered is True and source == default


# Values built in Python, each sent to another process and back.
ROUND_TRIP = [
    None,
    GLib.Variant('s', 'héllo wörld ✓'),
    GLib.Variant('s', ''),
    GLib.Variant('ay', b'\x00\x01binary\xff\x00'),
    GLib.Variant('ay', b''),
    GLib.Variant('as', ['one', '', 'three']),
    GLib.Variant('ai', [-1, 0, 2 ** 31 - 1]),
    GLib.Variant('(bxtd)', (True, -2 ** 63, 2 ** 64 - 1, -0.125)),
    GLib.Variant('a{sv}', {
        'name': GLib.Variant('s', 'thermostat'),
        'target': GLib.Variant('d', 21.5),
        'nested': GLib.Variant('a{sv}', {
            'list': GLib.Variant('ai', [1, 2, 3]),
            'deeper': GLib.Variant('a{sv}', {'bytes': GLib.Variant('ay', b'\x00\xff')}),
        }),
    }),
    GLib.Variant('a{sai}', {'x': [1], 'y': []}),
    GLib.Variant('mi', None),
    GLib.Variant('mi', 7),
    GLib.Variant('v', GLib.Variant('s', 'boxed twice')),
    GLib.Variant('aay', [b'a\x00b', b'']),
    GLib.Variant('()', ()),
    GLib.Variant('o', '/org/example/Thing'),
]


def test_data_round_trip(spawn, remote_bus, address):
    echo = spawn('channel-echo', address, 'echo/in', 'echo/out')
    echo.expect('listening')
    inbox = Inbox(Qipc.Channel.new_for_bus(remote_bus, 'echo/out'))

    for i, value in enumerate(ROUND_TRIP):
        Qipc.Channel.send_for_bus(remote_bus, 'echo/in', f'value{i}', value)
    inbox.wait(len(ROUND_TRIP))
    for i, (value, (message, data)) in enumerate(zip(ROUND_TRIP, inbox.messages)):
        assert message == f'value{i}'
        if value is None:
            assert data is None
            continue
        assert data.get_type_string() == value.get_type_string()
        assert data == value, f'{message}: sent {value.print_(True)}, got {data.print_(True)}'
        assert data.unpack() == value.unpack()


def test_large_payload_arrives_intact(spawn, remote_bus, address):
    listener = spawn('channel-listen', address, 'big/blob')
    listener.expect('listening')
    inbox = Inbox(Qipc.Channel.new_for_bus(remote_bus, 'big/blob'))

    # 64 copies of a random MiB, each stamped with its index: cheaper to
    # make than 64 MiB of os.urandom(), and a misplaced block still shows.
    mib = 1024 * 1024
    payload = bytearray(os.urandom(mib) * 64)
    for i in range(64):
        payload[i * mib:i * mib + 8] = i.to_bytes(8, 'little')
    payload = bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    value = GLib.Variant.new_from_bytes(GLib.VariantType.new('ay'), GLib.Bytes.new(payload), True)
    del payload
    Qipc.Channel.send_for_bus(remote_bus, 'big/blob', 'blob', value)
    Qipc.Channel.send_for_bus(remote_bus, 'big/blob', 'after', GLib.Variant('s', 'small'))
    del value

    (message, data), (after, small) = inbox.wait(2)
    assert message == 'blob' and after == 'after' and small.unpack() == 'small'
    received = data.get_data_as_bytes().get_data()
    assert len(received) == 64 * mib
    assert hashlib.sha256(received).hexdigest() == digest
    assert listener.readline() == f'received big/blob blob ay:{64 * mib}:{digest}'
    assert listener.readline() == "received big/blob after 'small'"


def test_invalid_names_and_addresses(broker, bus):
    def fails(code, call, *args):
        with pytest.raises(GLib.Error) as excinfo:
            call(*args)
        bus_error(excinfo, code)

    send = Qipc.Channel.send_for_bus
    fails(BusError.INVALID_NAME, send, bus, 'a//b', 'm', None)
    fails(BusError.INVALID_NAME, send, bus, 'a/*', 'm', None)
    fails(BusError.INVALID_NAME, send, bus, 'a/**', 'm', None)
    fails(BusError.INVALID_NAME, send, bus, 'a/b', '', None)
    fails(BusError.INVALID_NAME, send, bus, '', 'm', None)
    fails(BusError.INVALID_NAME, send, bus, 'a/', 'm', None)
    fails(BusError.INVALID_NAME, send, bus, 'x' * 256, 'm', None)
    fails(BusError.INVALID_NAME, send, bus, 'a/b', 'm' * 256, None)
    fails(BusError.INVALID_NAME, Qipc.Channel.new_for_bus, bus, 'a//b')
    fails(BusError.INVALID_NAME, Qipc.Channel.new_for_bus, bus, 'a/**/b')
    fails(BusError.INVALID_NAME, Qipc.Channel.new_for_bus, bus, 'a/*b')
    fails(BusError.INVALID_NAME, Qipc.Channel.new_for_bus, bus, 'a/***')
    fails(BusError.INVALID_NAME, Qipc.Channel.new_for_bus, bus, 'a/b*')
    fails(BusError.INVALID_NAME, Qipc.Channel.new_for_bus, bus, 'b*')
    fails(BusError.INVALID_NAME, Qipc.Channel.is_registered_for_bus, bus, 'a/*')
    fails(BusError.INVALID_ADDRESS, Qipc.Bus.new_for_address, 'nonsense')
    fails(BusError.INVALID_ADDRESS, Qipc.Bus.new_for_address, 'unix:nothing=1')
    # 255 bytes is the longest name.
    send(bus, 'x' * 255, 'm' * 255, None)
    # Data deeper than GVariant carries (128 levels) is refused, not sent.
    deep = GLib.Variant('i', 1)
    for _ in range(128):
        deep = GLib.Variant('v', deep)
    fails(BusError.LIMIT_EXCEEDED, send, bus, 'a/b', 'm', deep)
    send(bus, 'a/b', 'm', deep.get_variant())

    fails(BusError.BROKER_NOT_FOUND, Qipc.Bus.new_for_address, bus.get_address() + '-nobody')

    # A closed bus refuses everything with DISCONNECTED.
    bus.close()
    assert not bus.is_connected()
    fails(BusError.DISCONNECTED, send, bus, 'a/b', 'm', None)
    fails(BusError.DISCONNECTED, Qipc.Channel.new_for_bus, bus, 'a/b')
    fails(BusError.DISCONNECTED, Qipc.Channel.flush_for_bus, bus)
    fails(BusError.DISCONNECTED, Qipc.Channel.is_registered_for_bus, bus, 'a/b')


def test_broker_signals_and_clients(broker, bus, address):
    added, removed, notified = [], [], []
    broker.connect('channel-added', lambda b, name: added.append(name))
    broker.connect('channel-removed', lambda b, name: removed.append(name))
    broker.connect('notify::n-clients', lambda b, pspec: notified.append(b.props.n_clients))

    other = Qipc.Bus.new_for_address(address)
    first = Qipc.Channel.new_for_bus(other, 'sig/one')
    also_first = Qipc.Channel.new_for_bus(bus, 'sig/one')
    pattern = Qipc.Channel.new_for_bus(other, 'sig/*')
    Qipc.Channel.flush_for_bus(other)
    Qipc.Channel.flush_for_bus(bus)
    # A name's first listener adds it; a second listener does not.
    assert added == ['sig/one', 'sig/*']
    assert broker.props.n_clients == 2

    # A finalized channel unregisters; the name goes with its last listener.
    del pattern
    gc.collect()
    wait_for(lambda: removed == ['sig/*'], 'sig/* removed')
    other.close()
    wait_for(lambda: broker.props.n_clients == 1, 'the closed bus leaving')
    assert removed == ['sig/*']
    assert Qipc.Channel.is_registered_for_bus(bus, 'sig/one')
    del also_first
    gc.collect()
    wait_for(lambda: removed == ['sig/*', 'sig/one'], 'sig/one removed')
    assert max(notified) == 2 and notified[-1] == 1
    del first


def test_reconnects_to_a_new_broker(broker, bus, address):
    events = []
    bus.connect('connected', lambda b: events.append('connected'))
    bus.connect('disconnected', lambda b: events.append('disconnected'))
    inbox = Inbox(Qipc.Channel.new_for_bus(bus, 're/connect'))
    Qipc.Channel.flush_for_bus(bus)

    broker.close()
    wait_for(lambda: events == ['disconnected'], 'disconnected')
    assert not bus.is_connected()
    # Sent while disconnected: queued, and sent once connected again.
    Qipc.Channel.send_for_bus(bus, 're/connect', 'queued', None)

    successor = Qipc.Broker.new()
    try:
        successor.listen(address)
        wait_for(lambda: events == ['disconnected', 'connected'], 'connected')
        assert bus.is_connected()
        assert inbox.wait(1) == [('queued', None)]
        # The channel was registered again with the new broker.
        assert Qipc.Channel.is_registered_for_bus(bus, 're/connect')
    finally:
        successor.close()


# qipc_bus_close() sends what is queued, running the main context, and
# the socket can go away meanwhile (the broker dropped the connection):
# closing must then not touch it. gjs finalizing a broker before a bus
# at exit does just this.
def test_close_after_the_broker_left(spawn, address, monkeypatch):
    monkeypatch.setenv('G_DEBUG', 'fatal-criticals')
    child = spawn('channel-close-after-broker', address)
    child.expect('closed')
    assert child.wait() == 0


def test_slow_receiver_is_told_what_it_lost(broker, bus, address):
    broker.props.max_queued_bytes = 4096
    # The receiver's bus lives on a context of its own, which stays still
    # while the burst goes out: its socket fills, and the broker drops.
    receiver_context = GLib.MainContext.new()
    receiver_context.push_thread_default()
    try:
        receiver = Qipc.Bus.new_for_address(address)
        inbox = Inbox(Qipc.Channel.new_for_bus(receiver, 'slow/x'))
    finally:
        receiver_context.pop_thread_default()
    lost = []
    receiver.connect('messages-lost', lambda b, count: lost.append(count))
    contexts = [GLib.MainContext.default(), receiver_context]
    registered = []
    Qipc.Channel.flush_async(receiver, None, lambda s, r: registered.append(
        Qipc.Channel.flush_finish(r)))
    wait_for(lambda: registered, 'the receiver registered', contexts=contexts)

    count = 2000
    chunk = GLib.Variant('ay', b'x' * 1000)
    for i in range(count):
        Qipc.Channel.send_for_bus(bus, 'slow/x', 'chunk', chunk)
    assert Qipc.Channel.flush_for_bus(bus)

    # Nothing is lost silently: each message arrives or is counted.
    wait_for(lambda: len(inbox.messages) + sum(lost) == count,
             f'{count} messages received or counted lost', contexts=contexts)
    assert sum(lost) > 0
    assert receiver.get_messages_lost() == sum(lost)
    receiver.close()


def test_pattern_handler_learns_the_channel(bus):
    channel = Qipc.Channel.new_for_bus(bus, 'where/**')
    seen = []
    channel.connect('received', lambda ch, message, data: seen.append(ch.get_message_channel()))
    assert channel.get_message_channel() is None
    for target in ['where/a', 'where/b/c']:
        Qipc.Channel.send_for_bus(bus, target, 'm', None)
    wait_for(lambda: len(seen) == 2, 'two messages')
    assert seen == ['where/a', 'where/b/c']
    assert channel.get_message_channel() is None


def test_list_channels_and_monitor(broker, bus, address):
    keep = [Qipc.Channel.new_for_bus(bus, name) for name in ['list/a', 'list/a', 'list/**']]
    listed = dict(bus.list_channels().unpack())
    assert listed['list/a'] == 2
    assert listed['list/**'] == 1

    _, again = finish(lambda cb: bus.list_channels_async(None, cb), bus.list_channels_finish)
    assert dict(again.unpack()) == listed

    watcher = Qipc.Bus.new_for_address(address)
    seen = []
    watcher.connect('monitored', lambda b, channel, message, data:
                    seen.append((channel, message, data.unpack() if data else None)))
    assert watcher.start_monitor()
    Qipc.Channel.send_for_bus(bus, 'nobody/here', 'a', GLib.Variant('s', 'x'))
    Qipc.Channel.send_for_bus(bus, 'list/a', 'b', None)
    wait_for(lambda: len(seen) == 2, 'two monitored messages')
    assert seen == [('nobody/here', 'a', 'x'), ('list/a', 'b', None)]
    watcher.close()
    del keep


def make_certificate(directory, alt_names):
    """A self-signed certificate and its key for ALT_NAMES, made with
    openssl; returns the two file names."""
    cert, key = str(directory / 'cert.pem'), str(directory / 'key.pem')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
                    '-subj', '/CN=localhost', '-addext', f'subjectAltName={alt_names}',
                    '-days', '1', '-keyout', key, '-out', cert],
                   check=True, capture_output=True)
    return cert, key


def free_loopback_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def test_tcp_is_tls(tmp_path):
    cert, key = make_certificate(tmp_path, 'IP:127.0.0.1')
    broker = Qipc.Broker.new()
    with pytest.raises(GLib.Error) as excinfo:
        broker.listen('tcp:host=127.0.0.1,port=0')
    bus_error(excinfo, BusError.FAILED)
    assert 'TLS certificate' in excinfo.value.message

    broker.props.tls_certificate = Gio.TlsCertificate.new_from_files(cert, key)
    broker.set_policy_from_data(
        '{"allow": [{"anonymous": true, "send": ["t/**"], "receive": ["t/**"]}]}', -1)
    port = free_loopback_port()
    broker.listen(f'tcp:host=127.0.0.1,port={port}')
    try:
        bus = Qipc.Bus.new_for_address(f'tcp:host=127.0.0.1,port={port},ca={cert}')
        inbox = Inbox(Qipc.Channel.new_for_bus(bus, 't/x'))
        Qipc.Channel.send_for_bus(bus, 't/x', 'hello', GLib.Variant('s', 'over TLS'))
        assert inbox.wait(1) == [('hello', GLib.Variant('s', 'over TLS'))]
        bus.close()

        # Without ca= the system's authorities decide, and they do not
        # know this certificate: the bus closes, and stays closed.
        untrusted = Qipc.Bus.new_for_address(f'tcp:host=127.0.0.1,port={port}')
        with pytest.raises(GLib.Error) as excinfo:
            Qipc.Channel.flush_for_bus(untrusted)
        bus_error(excinfo, BusError.TLS_HANDSHAKE_FAILED)
        assert not untrusted.is_connected()
    finally:
        broker.close()
