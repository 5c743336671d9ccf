// counter.js: a counter object whose signals are watched from another
// process
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Usage: gjs -m counter.js serve | gjs -m counter.js watch
//
// The same program as counter.c, with the class written in JavaScript:
// the GObject type system is the interface, so no IDL and no generated
// code. `serve` exports it ("inc" on stdin adds one); `watch` mirrors it,
// prints every value-changed, and "set N" sets the mirror's property,
// which sets the served counter's.

import Gio from 'gi://Gio';
import GLib from 'gi://GLib';
import GObject from 'gi://GObject';
import Qipc from 'gi://Qipc?version=1.0';
import System from 'system';

const PATH = 'examples/counter';

const Counter = GObject.registerClass({
    GTypeName: 'ExampleCounter',
    Properties: {
        'value': GObject.ParamSpec.int('value', null, null, GObject.ParamFlags.READWRITE,
            -2147483648, 2147483647, 0),
    },
    Signals: {
        'value-changed': {param_types: [GObject.TYPE_INT]},
    },
}, class Counter extends GObject.Object {
    get value() {
        return this._value ?? 0;
    }

    set value(value) {
        if (value === this.value)
            return;
        this._value = value;
        this.notify('value');
        this.emit('value-changed', value);
    }
});

const [role] = ARGV;
if (role !== 'serve' && role !== 'watch') {
    printerr('Usage: gjs -m counter.js serve | gjs -m counter.js watch');
    System.exit(2);
}
const loop = new GLib.MainLoop(null, false);
const bus = Qipc.Bus.get_default();
let counter, exportId = 0;

if (role === 'serve') {
    counter = new Counter();
    exportId = bus.export_object(PATH, counter, Qipc.ExportFlags.ALL);
    print('serving');
} else {
    // Subscribes, then reads the state: no change is missed between.
    counter = Qipc.Mirror.new(bus, PATH, Counter.$gtype);
    Qipc.Mirror.get_for_object(counter).connect('vanished', () => {
        print('gone');
        loop.quit();
    });
    print(`start ${counter.value}`);
}
counter.connect('value-changed', (_counter, value) => print(`value ${value}`));

const input = new Gio.DataInputStream({
    base_stream: new Gio.UnixInputStream({fd: 0, close_fd: false}),
});
function readLine() {
    input.read_line_async(GLib.PRIORITY_DEFAULT, null, (stream, result) => {
        const [bytes] = stream.read_line_finish(result);
        if (bytes === null) {
            loop.quit();
            return;
        }
        const line = new TextDecoder().decode(bytes).trim();
        if (role === 'serve' && line === 'inc')
            counter.value += 1;
        else if (role === 'watch' && line.startsWith('set '))
            counter.value = Number(line.slice(4));   // sets the served one too
        else
            printerr(`counter.js: unknown command ${line}`);
        readLine();
    });
}
readLine();
loop.run();
if (exportId !== 0)
    bus.unexport_object(exportId);
