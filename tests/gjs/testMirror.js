// testMirror.js: a GObject class written in JavaScript, exported by a gjs
// child over qipc channels and mirrored here.
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The broker lives on this process's main loop, which keeps running while
// a test awaits a child's output.

import Gio from 'gi://Gio';
import GLib from 'gi://GLib';
import GObject from 'gi://GObject';
import Qipc from 'gi://Qipc?version=1.0';

import {JsCounter} from './mirrorTypes.js';
import {
    assert, assertEqual, assertRejects, deferred, onCleanup, run, spawn, test, withTimeout, PID,
} from './testlib.js';

Gio._promisify(Qipc.Mirror, 'new_async', 'new_finish');
Gio._promisify(Qipc.Mirror.prototype, 'call_async', 'call_finish');

const PATH = 'js/counter';
const WAIT_MS = 10000;
let serial = 0;

async function setUp() {
    const address = `unix:abstract=qipc-gjs-${PID}-mirror-${serial++}`;
    const broker = Qipc.Broker.new();
    broker.listen(address);
    const bus = Qipc.Bus.new_for_address(address);
    onCleanup(() => {
        bus.close();
        broker.close();
    });
    const exporter = spawn('mirror-export', address, PATH, '41');
    await exporter.expect('exported');
    return {address, bus, exporter};
}

// Resolves once CONDITION() holds after SIGNAL on OBJECT.
function waitFor(object, signal, condition, what) {
    const {promise, resolve} = deferred();
    const id = object.connect(signal, () => {
        if (condition())
            resolve();
    });
    if (condition())
        resolve();
    return withTimeout(promise, WAIT_MS, what).finally(() => object.disconnect(id));
}

test('a JS class is mirrored with its state, signals and properties', async () => {
    const {bus, exporter} = await setUp();
    const mirror = await Qipc.Mirror.new_async(bus, PATH, JsCounter, null);
    assert(mirror instanceof JsCounter, 'the mirror is a JsCounter');
    assertEqual(mirror.value, 41, 'initial value');
    assertEqual(mirror.label, 'start', 'initial label');
    const handle = Qipc.Mirror.get_for_object(mirror);
    assert(handle.remote_present, 'remote present');

    const seen = [];
    mirror.connect('value-changed', (_obj, value, label) => seen.push([value, label]));
    exporter.send('set 5');
    await exporter.expect('ok');
    await waitFor(mirror, 'value-changed', () => seen.length === 1, 'value-changed');
    assertEqual(seen[0], [5, 'start'], 'the remote signal');
    assertEqual(mirror.value, 5, 'the remote value');

    // Local set and action emission reach the original (the test's main
    // loop keeps running while it awaits the child).
    mirror.value = 7;
    exporter.send('wait-value 7');
    await exporter.expect('value 7');
    assertEqual(mirror.emit('increment', 3), 0, 'an emitted action returns 0 locally');
    exporter.send('wait-value 10');
    await exporter.expect('value 10');
    const result = await handle.call_async('increment', new GLib.Variant('(i)', [4]), null);
    assertEqual(result.get_type_string(), 'i', 'the call result type');
    assertEqual(result.unpack(), 14, 'the call result');
});

test('the mirror of a killed gjs exporter vanishes', async () => {
    const {bus, exporter} = await setUp();
    const mirror = Qipc.Mirror.new(bus, PATH, JsCounter);
    const handle = Qipc.Mirror.get_for_object(mirror);
    const vanished = waitFor(handle, 'vanished', () => !handle.remote_present, 'vanished');
    await exporter.kill();
    await vanished;
    assertEqual(mirror.value, 41, 'the last state stays');
    await assertRejects(handle.call_async('increment', new GLib.Variant('(i)', [1]), null),
        Qipc.remote_error_quark(), Qipc.RemoteError.VANISHED);
});

// A read-only property keeps its default on the mirror's instance, which
// GObject cannot set; the handle has the value the original reported.
const JsGauge = GObject.registerClass({
    GTypeName: 'QipcJsTestGauge',
    Properties: {
        'level': GObject.ParamSpec.int('level', null, null, GObject.ParamFlags.READABLE,
            0, 100, 0),
    },
}, class JsGauge extends GObject.Object {
    get level() {
        return this._level ?? 0;
    }

    setLevel(level) {
        this._level = level;
        this.notify('level');
    }
});

test('a read-only property is read from the handle', async () => {
    const {bus} = await setUp();
    const gauge = new JsGauge();
    gauge.setLevel(5);
    const id = bus.export_object('js/gauge', gauge, Qipc.ExportFlags.ALL);
    const mirror = Qipc.Mirror.new(bus, 'js/gauge', JsGauge);
    const handle = Qipc.Mirror.get_for_object(mirror);
    assertEqual(mirror.level, 0, 'the instance keeps the default');
    assertEqual(handle.get_remote_property('level'), [true, 5], 'the reported level');
    // The instance notifies, though it keeps its default.
    const changed = waitFor(mirror, 'notify::level',
        () => handle.get_remote_property('level')[1] === 8, 'the new level');
    gauge.setLevel(8);
    await changed;
    assert(bus.unexport_object(id), 'unexported');
});

run();
