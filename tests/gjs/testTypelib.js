// testTypelib.js: every class of the Qipc typelib, constructed and called
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Walks the classes the Qipc namespace has in GJS and, for each, calls a
// constructor and one method, so a broken annotation (a wrong transfer, a
// missing (nullable), a constructor that is not one) fails here rather
// than in a user's program. The table below says how to build each class;
// a class the typelib gains without a row in it fails the test, so the
// table grows with the library. Abstract classes must refuse construction
// and be covered by the rows of their subclasses.

import Gio from 'gi://Gio';
import GObject from 'gi://GObject';
import Qipc from 'gi://Qipc?version=1.0';

import {assert, assertEqual, onCleanup, run, test, uniqueKey, PID} from './testlib.js';

let serial = 0;

// A broker in this process, closed at the end of the test; its address.
function hostBroker() {
    const address = `unix:abstract=qipc-gjs-${PID}-typelib-${serial++}`;
    const broker = Qipc.Broker.new();
    broker.listen(address);
    onCleanup(() => broker.close());
    return address;
}

function newBus(address) {
    const bus = Qipc.Bus.new_for_address(address);
    onCleanup(() => bus.close());
    return bus;
}

// How to construct each class and which method to call on it.
const CONSTRUCTORS = {
    SharedMemory() {
        const key = uniqueKey('shm');
        const shm = Qipc.SharedMemory.new(key);
        assertEqual(shm.get_key(), key);
    },
    SystemSemaphore() {
        const key = uniqueKey('sem');
        const sem = Qipc.SystemSemaphore.new(key, 0, Qipc.SystemSemaphoreAccess.CREATE);
        onCleanup(() => sem.remove());
        assertEqual(sem.get_key(), key);
    },
    LocalSocket() {
        assertEqual(Qipc.LocalSocket.new().get_state(), Qipc.SocketState.UNCONNECTED);
    },
    TcpSocket() {
        assertEqual(Qipc.TcpSocket.new().get_state(), Qipc.SocketState.UNCONNECTED);
    },
    LocalServer() {
        assertEqual(Qipc.LocalServer.new().is_listening(), false);
    },
    TcpServer() {
        assertEqual(Qipc.TcpServer.new().is_listening(), false);
    },
    Broker() {
        const broker = Qipc.Broker.new();
        assertEqual(broker.get_n_clients(), 0);
        broker.close();
    },
    Bus() {
        const address = hostBroker();
        assertEqual(newBus(address).get_address(), address);
    },
    Channel() {
        const bus = newBus(hostBroker());
        assertEqual(Qipc.Channel.new_for_bus(bus, 'x').get_name(), 'x');
    },
    Mirror() {
        const bus = newBus(hostBroker());
        const id = bus.export_object('typelib/thing', new Gio.Cancellable(), Qipc.ExportFlags.ALL);
        onCleanup(() => bus.unexport_object(id));
        const mirror = Qipc.Mirror.new(bus, 'typelib/thing', Gio.Cancellable);
        assert(mirror instanceof Gio.Cancellable, 'the mirror is a Gio.Cancellable');
        assertEqual(Qipc.Mirror.get_for_object(mirror).get_path(), 'typelib/thing');
    },
};

// Abstract classes: not constructed, but each needs a concrete subclass
// in the table.
const ABSTRACT = ['Socket', 'Server'];

// {name: class} of every GObject class in the Qipc namespace.
function typelibClasses() {
    const classes = {};
    for (const name of Object.keys(Qipc)) {
        const value = Qipc[name];
        if (typeof value === 'function' && value.$gtype !== undefined &&
            GObject.type_is_a(value.$gtype, GObject.TYPE_OBJECT))
            classes[name] = value;
    }
    return classes;
}

function isAbstract(klass) {
    return GObject.type_test_flags(klass.$gtype, GObject.TypeFlags.ABSTRACT);
}

test('the table covers every class', () => {
    const names = Object.keys(typelibClasses());
    assert(names.length > 0, 'no class found in the Qipc namespace');
    const known = [...Object.keys(CONSTRUCTORS), ...ABSTRACT];
    const missing = names.filter(n => !known.includes(n)).sort();
    assertEqual(missing, [], 'classes of the typelib with no row in CONSTRUCTORS');
    const stale = known.filter(n => !names.includes(n)).sort();
    assertEqual(stale, [], 'rows for classes the typelib does not have');
});

for (const name of Object.keys(CONSTRUCTORS).sort()) {
    test(`construct ${name} and call a method`, () => {
        const klass = typelibClasses()[name];
        assert(klass !== undefined, `${name} is not in the typelib`);
        assert(!isAbstract(klass), `${name} is abstract`);
        CONSTRUCTORS[name]();
    });
}

for (const name of ABSTRACT) {
    test(`${name} is abstract and covered by its subclasses`, () => {
        const classes = typelibClasses();
        const klass = classes[name];
        assert(klass !== undefined, `${name} is not in the typelib`);
        assert(isAbstract(klass), `${name} is not abstract`);
        let error = null;
        try {
            new klass();
        } catch (e) {
            error = e;
        }
        assert(error !== null && /abstract/.test(`${error}`),
            `constructing ${name} should fail as abstract, got ${error}`);
        const concrete = Object.entries(classes)
            .filter(([n, k]) => n !== name && GObject.type_is_a(k.$gtype, klass.$gtype) && !isAbstract(k))
            .map(([n]) => n).sort();
        assert(concrete.length > 0, `abstract ${name} has no concrete subclass`);
        assertEqual(concrete.filter(n => !(n in CONSTRUCTORS)), [],
            `abstract ${name}: concrete subclasses without a row`);
    });
}

run();
