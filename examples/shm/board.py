#!/usr/bin/python3
# board.py: a producer and consumers over shared memory, with change
# notification
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Usage: board.py KEY produce COUNT
#        board.py KEY consume
#
# The same program as board.c (see there for the layout: int32 sequence,
# then 60 bytes of text). The consumer reads through shm.memoryview(),
# without a copy, under `with shm.locked():`.

import struct
import sys

import gi
gi.require_version('Qipc', '1.0')
from gi.repository import GLib, Qipc  # noqa: E402

READING = struct.Struct('<i60s')


def produce(shm, count, loop):
    shm.create(READING.size, Qipc.SharedMemoryAccess.READ_WRITE)
    print(f'created {shm.get_key()}', flush=True)
    if not sys.stdin.readline():
        return 1
    view = shm.memoryview()
    sequences = iter(list(range(1, count + 1)) + [-1])

    def publish_next():
        sequence = next(sequences)
        text = f'temperature {20 + sequence // 10}.{sequence % 10} C'.encode()
        with shm.locked():
            READING.pack_into(view, 0, sequence, text)
        shm.notify_changed()
        if sequence == -1:
            loop.quit()
            return GLib.SOURCE_REMOVE
        return GLib.SOURCE_CONTINUE

    GLib.timeout_add(10, publish_next)
    loop.run()
    view.release()
    print(f'published {count}', flush=True)
    return 0


def consume(shm, loop):
    shm.attach(Qipc.SharedMemoryAccess.READ_ONLY)
    view = shm.memoryview()
    last_seen = 0

    def on_changed(shm):
        nonlocal last_seen
        with shm.locked():
            sequence, text = READING.unpack_from(view, 0)
        if sequence == -1:
            print(f'done after {last_seen}', flush=True)
            loop.quit()
        elif sequence > last_seen:
            text = text.rstrip(b'\0').decode()
            print(f'reading {sequence}: {text}', flush=True)
            last_seen = sequence

    shm.connect('changed', on_changed)
    print('attached', flush=True)
    loop.run()
    view.release()
    return 0


def main():
    args = sys.argv[1:]
    if not (len(args) == 3 and args[1] == 'produce') and not (len(args) == 2 and args[1] == 'consume'):
        print('Usage: board.py KEY produce COUNT | board.py KEY consume', file=sys.stderr)
        return 2
    shm = Qipc.SharedMemory.new(args[0])
    loop = GLib.MainLoop()
    try:
        if args[1] == 'produce':
            return produce(shm, int(args[2]), loop)
        return consume(shm, loop)
    except GLib.Error as error:
        print(f'board.py: {error.message}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
