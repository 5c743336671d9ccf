# test_typelib.py: every class of the Qipc typelib, constructed and called
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Walks the classes the typelib describes and, for each, calls a
# constructor and one method through PyGObject, so a broken annotation
# (a wrong transfer, a missing (nullable), a constructor that is not one)
# fails here rather than in a user's program. The table below says how to
# build each class; a class the typelib gains without a row in it fails
# the test, so the table grows with the library. Abstract classes must
# refuse construction and be covered by the rows of their subclasses.

import os

import gi
import pytest
from gi.repository import Gio, GObject, Qipc

from conftest import iterate_for


def typelib_classes():
    """{name: ObjectInfo} of every class in the Qipc namespace."""
    return {info.get_name(): info
            for info in gi.Repository.get_default().get_infos('Qipc')
            if isinstance(info, gi._gi.ObjectInfo)}


@pytest.fixture
def hosted_broker():
    """The address of a broker this process hosts."""
    address = f'unix:abstract=qipc-py-{os.getpid()}-typelib'
    broker = Qipc.Broker.new()
    broker.listen(address)
    yield address
    broker.close()


@pytest.fixture
def context(make_key, hosted_broker):
    """What the constructors need; every object made is closed at the end."""
    made = []

    class Context:
        key = staticmethod(make_key)
        address = hosted_broker

        def keep(self, obj, close=None):
            made.append(close or (lambda: None))
            return obj

        def bus(self):
            bus = Qipc.Bus.new_for_address(self.address)
            return self.keep(bus, bus.close)

    yield Context()
    for close in reversed(made):
        close()
    iterate_for(10)


def check_shared_memory(ctx):
    key = ctx.key('shm')
    shm = Qipc.SharedMemory.new(key)
    assert shm.get_key() == key


def check_system_semaphore(ctx):
    key = ctx.key('sem')
    sem = ctx.keep(Qipc.SystemSemaphore.new(key, 0, Qipc.SystemSemaphoreAccess.CREATE),
                   lambda: sem.remove())
    assert sem.get_key() == key


def check_local_socket(ctx):
    sock = Qipc.LocalSocket.new()
    assert sock.get_state() == Qipc.SocketState.UNCONNECTED


def check_tcp_socket(ctx):
    sock = Qipc.TcpSocket.new()
    assert sock.get_state() == Qipc.SocketState.UNCONNECTED


def check_local_server(ctx):
    server = Qipc.LocalServer.new()
    assert not server.is_listening()


def check_tcp_server(ctx):
    server = Qipc.TcpServer.new()
    assert not server.is_listening()


def check_broker(ctx):
    broker = Qipc.Broker.new()
    assert broker.get_n_clients() == 0
    broker.close()


def check_bus(ctx):
    bus = ctx.bus()
    assert bus.get_address() == ctx.address


def check_channel(ctx):
    bus = ctx.bus()
    channel = Qipc.Channel.new_for_bus(bus, 'x')
    assert channel.get_name() == 'x'


def check_mirror(ctx):
    bus = ctx.bus()
    original = Gio.Cancellable()
    export_id = bus.export_object('typelib/thing', original, Qipc.ExportFlags.ALL)
    ctx.keep(export_id, lambda: bus.unexport_object(export_id))
    mirror = Qipc.Mirror.new(bus, 'typelib/thing', Gio.Cancellable)
    assert isinstance(mirror, Gio.Cancellable)
    assert Qipc.Mirror.get_for_object(mirror).get_path() == 'typelib/thing'


# How to construct each class and which method to call on it.
CONSTRUCTORS = {
    'SharedMemory': check_shared_memory,
    'SystemSemaphore': check_system_semaphore,
    'LocalSocket': check_local_socket,
    'TcpSocket': check_tcp_socket,
    'LocalServer': check_local_server,
    'TcpServer': check_tcp_server,
    'Broker': check_broker,
    'Bus': check_bus,
    'Channel': check_channel,
    'Mirror': check_mirror,
}

# Abstract classes: not constructed, but each needs a concrete subclass
# in the table.
ABSTRACT = {'Socket', 'Server'}


def test_table_covers_every_class():
    classes = typelib_classes()
    missing = sorted(set(classes) - set(CONSTRUCTORS) - ABSTRACT)
    assert not missing, f'classes of the typelib with no row in CONSTRUCTORS: {missing}'
    stale = sorted((set(CONSTRUCTORS) | ABSTRACT) - set(classes))
    assert not stale, f'rows for classes the typelib does not have: {stale}'


@pytest.mark.parametrize('name', sorted(CONSTRUCTORS))
def test_construct_and_call(name, context):
    info = typelib_classes()[name]
    assert not info.get_abstract(), f'{name} is abstract in the typelib'
    CONSTRUCTORS[name](context)


@pytest.mark.parametrize('name', sorted(ABSTRACT))
def test_abstract_class(name):
    classes = typelib_classes()
    info = classes[name]
    assert info.get_abstract(), f'{name} is not marked abstract in the typelib'
    gtype = info.get_g_type()
    assert gtype.is_abstract()
    with pytest.raises(TypeError, match='abstract'):
        getattr(Qipc, name)()
    subclasses = sorted(n for n, i in classes.items()
                        if n != name and GObject.type_is_a(i.get_g_type(), gtype))
    assert subclasses, f'abstract {name} has no subclass in the typelib'
    concrete = [n for n in subclasses if not classes[n].get_abstract()]
    uncovered = [n for n in concrete if n not in CONSTRUCTORS]
    assert concrete and not uncovered, \
        f'abstract {name}: concrete subclasses {concrete}, without a row: {uncovered}'
