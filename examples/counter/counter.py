#!/usr/bin/python3
# counter.py: a counter object whose signals are watched from another
# process
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Usage: counter.py serve | counter.py watch
#
# The same program as counter.c, with the class written in Python: the
# GObject type system is the interface, so no IDL and no generated code.
# `serve` exports it ("inc" on stdin adds one); `watch` mirrors it, prints
# every value-changed, and "set N" sets the mirror's property, which sets
# the served counter's.

import sys

import gi
gi.require_version('Qipc', '1.0')
from gi.repository import GLib, GObject, Qipc  # noqa: E402

PATH = 'examples/counter'


class Counter(GObject.Object):
    __gtype_name__ = 'ExampleCounter'
    __gsignals__ = {
        'value-changed': (GObject.SignalFlags.RUN_LAST, None, (int,)),
    }
    # A class default: an instance made from C (as a mirror is) may not
    # run __init__.
    _value = 0

    @GObject.Property(type=int, minimum=-2**31, maximum=2**31 - 1, default=0)
    def value(self):
        return self._value

    @value.setter
    def value(self, value):
        if value != self._value:
            self._value = value
            self.emit('value-changed', value)


def main():
    if sys.argv[1:] not in (['serve'], ['watch']):
        print('Usage: counter.py serve | counter.py watch', file=sys.stderr)
        return 2
    serving = sys.argv[1] == 'serve'
    loop = GLib.MainLoop()
    bus = Qipc.Bus.get_default()

    if serving:
        counter = Counter()
        export_id = bus.export_object(PATH, counter, Qipc.ExportFlags.ALL)
        print('serving', flush=True)
    else:
        # Subscribes, then reads the state: no change is missed between.
        counter = Qipc.Mirror.new(bus, PATH, Counter)
        Qipc.Mirror.get_for_object(counter).connect(
            'vanished', lambda mirror: (print('gone', flush=True), loop.quit()))
        print(f'start {counter.value}', flush=True)
    counter.connect('value-changed', lambda counter, value: print(f'value {value}', flush=True))

    def on_input(channel, condition):
        line = sys.stdin.readline()
        if not line:
            loop.quit()
            return GLib.SOURCE_REMOVE
        line = line.strip()
        if serving and line == 'inc':
            counter.value += 1
        elif not serving and line.startswith('set '):
            counter.value = int(line[4:])      # sets the served one too
        else:
            print(f'counter.py: unknown command {line}', file=sys.stderr)
        return GLib.SOURCE_CONTINUE

    GLib.io_add_watch(GLib.IOChannel.unix_new(sys.stdin.fileno()), GLib.PRIORITY_DEFAULT,
                      GLib.IOCondition.IN | GLib.IOCondition.HUP, on_input)
    loop.run()
    if serving:
        bus.unexport_object(export_id)
    return 0


if __name__ == '__main__':
    sys.exit(main())
