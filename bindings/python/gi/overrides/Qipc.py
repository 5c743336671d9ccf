# Qipc.py: the PyGObject override of the Qipc namespace
#
# SPDX-License-Identifier: LGPL-2.1-or-later

"""Pythonic additions to ``gi.repository.Qipc``.

Importing ``from gi.repository import Qipc`` loads this override
automatically; everything of the introspected API stays as it is, and the
classes below gain what makes them feel native in Python.

Plain Python values as channel data
-----------------------------------
:meth:`Channel.send` and :meth:`Channel.send_for_bus` take a plain Python
value wherever the C API takes a ``GVariant``::

    Qipc.Channel.send('org.example/settings', 'set', {'x': 1, 'name': 'n'})
    Qipc.Channel.send_for_bus(bus, 'a/b', 'tick', 42)
    Qipc.Channel.send('a/b', 'ping', None)                 # no data
    Qipc.Channel.send('a/b', 'set', GLib.Variant('u', 7))  # as it is
    Qipc.Channel.send('a/b', 'set', {'x': 1}, type='a{si}')

The conversion (:func:`to_variant`) is, applied recursively:

========================  ====================================================
Python value              GVariant
========================  ====================================================
``None``                  no data (only at the top level)
``GLib.Variant``          itself
``bool``                  ``b``
``int``                   ``x`` (int64); outside its range a ``TypeError``
``float``                 ``d``
``str``                   ``s``
``bytes``, ``bytearray``  ``ay``
``list``                  an array: ``aT`` when every element converts to
                          the same type ``T``; ``av`` (each element wrapped
                          in a variant) when they differ or the list is
                          empty
``tuple``                 a tuple ``(T1T2…)`` of the converted elements;
                          ``()`` for the empty tuple
``dict`` with str keys    ``a{sv}``: each value converted and wrapped in a
                          variant
anything else             ``TypeError`` naming the value and its type
========================  ====================================================

With ``type=``, the value is converted by PyGObject's own
``GLib.Variant(type, value)`` instead, so any type string works
(``'a{si}'``, ``'u'``, ``'(sas)'``…); a value that does not fit the type
raises ``TypeError``.

Receiving data
--------------
The ``received`` signal hands over a ``GLib.Variant`` (or ``None``);
``GLib.Variant.unpack()`` turns it into Python values in one call, nested
containers included::

    def on_received(channel, message, data):
        value = data.unpack() if data is not None else None
        # {'x': 1, 'name': 'n'} for the first example above

    channel = Qipc.Channel.new_for_bus(bus, 'org.example/settings')
    channel.connect('received', on_received)

PyGObject unpacks ``ay`` to a list of ints; for ``bytes`` use
``data.get_data_as_bytes().get_data()`` instead.

Locks and semaphores as context managers
----------------------------------------
::

    with shm.locked():                 # lock() … unlock()
        shm.write(0, GLib.Bytes(b'hello'))
    with shm.locked(timeout_ms=100):   # try_lock(100); TimeoutError if not
        ...
    with sem.acquired():               # acquire() … release(1)
        ...
    with sem.acquired(timeout_ms=0):   # try_acquire(0); TimeoutError if not
        ...

The lock is released (the semaphore released) when the body raises, too.

Zero-copy access to a segment
-----------------------------
``shm.memoryview()`` is a ``memoryview`` (format ``'B'``) over the mapping of
an attached segment, read-only when the segment was attached
``Qipc.SharedMemoryAccess.READ_ONLY``. It works with ``bytes()``,
``struct.unpack_from``/``pack_into`` and ``numpy.frombuffer``::

    view = shm.memoryview()
    with shm.locked():
        view[0:5] = b'hello'
        count, = struct.unpack_from('<I', view, 8)

The view keeps the ``SharedMemory`` object alive, but not the mapping:
detaching (or creating/attaching anew) while a view exists is the caller's
error, and touching the view afterwards may crash the process.

Asynchronous calls
------------------
PyGObject 3.42 (Debian 12) has no awaitable async methods; use the callback
form. The callback runs on the thread-default main context of the caller,
so a ``GLib.MainLoop`` (or another iteration of that context) must run::

    def on_flushed(bus, result):
        try:
            Qipc.Channel.flush_finish(result)
        except GLib.Error as e:
            print('flush failed:', e.message)
        loop.quit()

    Qipc.Channel.flush_async(bus, None, on_flushed)  # bus None: the default

    def on_acquired(sem, result):
        sem.acquire_finish(result)
        try:
            ...
        finally:
            sem.release(1)

    sem.acquire_async(None, on_acquired)
    loop.run()

Errors
------
Failures raise ``GLib.Error`` with the qipc domain and code; match them with
``matches()`` and the error quark functions::

    try:
        Qipc.Channel.new_for_bus(bus, 'a//b')
    except GLib.Error as e:
        if e.matches(Qipc.bus_error_quark(), Qipc.BusError.INVALID_NAME):
            ...

The domains are ``Qipc.shared_memory_error_quark()`` with
``Qipc.SharedMemoryError``, ``Qipc.system_semaphore_error_quark()`` with
``Qipc.SystemSemaphoreError``, ``Qipc.bus_error_quark()`` with
``Qipc.BusError``, and so on for every class with an error enum.
"""

import contextlib
import ctypes

from gi.repository import GLib

from ..module import get_introspection_module
from ..overrides import override

Qipc = get_introspection_module('Qipc')

__all__ = ['to_variant']

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


def _describe(value):
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + '...'
    return f'{text} (of type {type(value).__name__})'


def _convert(value, root):
    if isinstance(value, GLib.Variant):
        return value
    # bool before int: bool is a subclass of int.
    if isinstance(value, bool):
        return GLib.Variant.new_boolean(value)
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise TypeError(f'cannot convert {_describe(value)} to a GVariant: '
                            f'outside the range of int64 (x); pass type= for another one')
        return GLib.Variant.new_int64(value)
    if isinstance(value, float):
        return GLib.Variant.new_double(value)
    if isinstance(value, str):
        return GLib.Variant.new_string(value)
    if isinstance(value, (bytes, bytearray)):
        return GLib.Variant('ay', bytes(value))
    if isinstance(value, list):
        children = [_convert(v, root) for v in value]
        types = {c.get_type_string() for c in children}
        if len(types) == 1:
            return GLib.Variant.new_array(GLib.VariantType.new(types.pop()), children)
        return GLib.Variant.new_array(GLib.VariantType.new('v'),
                                      [GLib.Variant.new_variant(c) for c in children])
    if isinstance(value, tuple):
        return GLib.Variant.new_tuple(*[_convert(v, root) for v in value])
    if isinstance(value, dict):
        entries = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f'cannot convert {_describe(root)} to a GVariant: '
                                f'dict key {_describe(key)} is not a str')
            entries.append(GLib.Variant.new_dict_entry(
                GLib.Variant.new_string(key),
                GLib.Variant.new_variant(_convert(item, root))))
        return GLib.Variant.new_array(GLib.VariantType.new('{sv}'), entries)
    if value is None:
        raise TypeError(f'cannot convert {_describe(root)} to a GVariant: '
                        f'None is only allowed as the whole value')
    raise TypeError(f'cannot convert {_describe(value)} to a GVariant'
                    + ('' if value is root else f' (in {_describe(root)})'))


def to_variant(value, type=None):
    """Converts VALUE to a ``GLib.Variant`` as the module docstring describes.

    None gives None; with TYPE (a GVariant type string) the value is given
    to ``GLib.Variant(type, value)``. Raises TypeError when VALUE cannot be
    converted.
    """
    if type is not None:
        if isinstance(value, GLib.Variant):
            if value.get_type_string() != type:
                raise TypeError(f'{_describe(value)} is not of type {type!r}')
            return value
        try:
            return GLib.Variant(type, value)
        except (TypeError, ValueError, OverflowError, KeyError) as e:
            raise TypeError(f'cannot convert {_describe(value)} to a GVariant '
                            f'of type {type!r}: {e}') from e
    if value is None:
        return None
    return _convert(value, value)


class Channel(Qipc.Channel):
    """``send()`` and ``send_for_bus()`` take plain Python values; see the
    module docstring for the conversion and for unpacking received data
    with ``GLib.Variant.unpack()``."""

    @staticmethod
    def send(channel, message, data=None, type=None):
        """Sends MESSAGE with DATA (a Python value, a GLib.Variant or None)
        on CHANNEL of the default bus. TYPE: a GVariant type string to
        convert DATA to."""
        return Qipc.Channel.send(channel, message, to_variant(data, type))

    @staticmethod
    def send_for_bus(bus, channel, message, data=None, type=None):
        """As send(), on BUS (None: the default bus)."""
        return Qipc.Channel.send_for_bus(bus, channel, message, to_variant(data, type))


Channel = override(Channel)
__all__.append('Channel')


_libqipc = None


def _lib():
    """libqipc through ctypes, for the one function introspection skips
    (qipc_shared_memory_get_data). The typelib names this soname, and GObject
    Introspection has loaded it already, so dlopen() returns that copy."""
    global _libqipc
    if _libqipc is None:
        lib = ctypes.CDLL('libqipc-1.0.so.0')
        lib.qipc_shared_memory_get_data.restype = ctypes.c_void_p
        lib.qipc_shared_memory_get_data.argtypes = [ctypes.c_void_p]
        lib.qipc_shared_memory_get_size.restype = ctypes.c_size_t
        lib.qipc_shared_memory_get_size.argtypes = [ctypes.c_void_p]
        _libqipc = lib
    return _libqipc


def _gobject_address(obj):
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return get_pointer(obj.__gpointer__, None)


class SharedMemory(Qipc.SharedMemory):
    """Adds ``locked()`` and ``memoryview()``; see the module docstring."""

    @contextlib.contextmanager
    def locked(self, timeout_ms=None):
        """A context manager holding the segment's lock: ``lock()`` (or
        ``try_lock(timeout_ms)``, raising TimeoutError when the time runs
        out) on entry, ``unlock()`` on exit, also when the body raises."""
        if timeout_ms is None:
            self.lock()
        elif not self.try_lock(timeout_ms):
            raise TimeoutError(f'lock of shared memory {self.get_key()!r} '
                               f'not free within {timeout_ms} ms')
        try:
            yield self
        finally:
            self.unlock()

    def memoryview(self):
        """A zero-copy ``memoryview`` (format 'B') over the attached
        segment, read-only when attached read-only. Raises GLib.Error
        (QIPC_SHARED_MEMORY_ERROR_FAILED) when not attached. Detaching while
        the view exists is the caller's error."""
        if not self.is_attached():
            raise GLib.Error.new_literal(Qipc.shared_memory_error_quark(),
                                         f'shared memory {self.get_key()!r} is not attached',
                                         Qipc.SharedMemoryError.FAILED)
        lib = _lib()
        address = _gobject_address(self)
        data = lib.qipc_shared_memory_get_data(address)
        size = lib.qipc_shared_memory_get_size(address)
        array = (ctypes.c_ubyte * size).from_address(data)
        # The array (and so every view of it) holds this object.
        array._qipc_shared_memory = self
        view = memoryview(array).cast('B')
        if self.get_access() == Qipc.SharedMemoryAccess.READ_ONLY:
            view = view.toreadonly()
        return view


SharedMemory = override(SharedMemory)
__all__.append('SharedMemory')


class SystemSemaphore(Qipc.SystemSemaphore):
    """Adds ``acquired()``; see the module docstring."""

    @contextlib.contextmanager
    def acquired(self, timeout_ms=None):
        """A context manager holding one unit of the semaphore:
        ``acquire()`` (or ``try_acquire(timeout_ms)``, raising TimeoutError
        when the time runs out) on entry, ``release(1)`` on exit, also when
        the body raises."""
        if timeout_ms is None:
            self.acquire()
        elif not self.try_acquire(timeout_ms):
            raise TimeoutError(f'semaphore {self.get_key()!r} '
                               f'not acquired within {timeout_ms} ms')
        try:
            yield self
        finally:
            self.release(1)


SystemSemaphore = override(SystemSemaphore)
__all__.append('SystemSemaphore')
