// board.js: a producer and consumers over shared memory, with change
// notification
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Usage: gjs -m board.js KEY produce COUNT
//        gjs -m board.js KEY consume
//
// The same program as board.c (see there for the layout: int32 sequence,
// then 60 bytes of text). GJS has no zero-copy view of foreign memory, so
// this one copies with read() and write(), which take the offset and
// GLib.Bytes.

import GLib from 'gi://GLib';
import Qipc from 'gi://Qipc?version=1.0';
import System from 'system';

const SIZE = 64;
const [key, role, countArg] = ARGV;

function encode(sequence) {
    const reading = new Uint8Array(SIZE);
    new DataView(reading.buffer).setInt32(0, sequence, true);
    const text = `temperature ${20 + Math.floor(sequence / 10)}.${sequence % 10} C`;
    reading.set(new TextEncoder().encode(text), 4);
    return new GLib.Bytes(reading);
}

function decode(bytes) {
    const reading = bytes.toArray();
    const sequence = new DataView(reading.buffer, reading.byteOffset).getInt32(0, true);
    const end = reading.indexOf(0, 4);
    const text = new TextDecoder().decode(reading.subarray(4, end < 0 ? SIZE : end));
    return [sequence, text];
}

function produce(shm, count, loop) {
    shm.create(SIZE, Qipc.SharedMemoryAccess.READ_WRITE);
    print(`created ${shm.get_key()}`);
    const stdin = GLib.IOChannel.unix_new(0);
    const [status] = stdin.read_line();
    if (status !== GLib.IOStatus.NORMAL)
        return 1;
    let next = 1;
    GLib.timeout_add(GLib.PRIORITY_DEFAULT, 10, () => {
        const sequence = next > count ? -1 : next++;
        shm.lock();
        try {
            shm.write(0, encode(sequence));
        } finally {
            shm.unlock();
        }
        shm.notify_changed();
        if (sequence === -1) {
            loop.quit();
            return GLib.SOURCE_REMOVE;
        }
        return GLib.SOURCE_CONTINUE;
    });
    loop.run();
    print(`published ${count}`);
    return 0;
}

function consume(shm, loop) {
    shm.attach(Qipc.SharedMemoryAccess.READ_ONLY);
    let lastSeen = 0;
    shm.connect('changed', () => {
        shm.lock();
        let bytes;
        try {
            bytes = shm.read(0, SIZE);
        } finally {
            shm.unlock();
        }
        const [sequence, text] = decode(bytes);
        if (sequence === -1) {
            print(`done after ${lastSeen}`);
            loop.quit();
        } else if (sequence > lastSeen) {
            print(`reading ${sequence}: ${text}`);
            lastSeen = sequence;
        }
    });
    print('attached');
    loop.run();
    return 0;
}

if (!(role === 'produce' && countArg !== undefined) && role !== 'consume') {
    printerr('Usage: gjs -m board.js KEY produce COUNT | gjs -m board.js KEY consume');
    System.exit(2);
}
const shm = Qipc.SharedMemory.new(key);
const loop = new GLib.MainLoop(null, false);
try {
    System.exit(role === 'produce' ? produce(shm, Number(countArg), loop) : consume(shm, loop));
} catch (e) {
    printerr(`board.js: ${e.message}`);
    System.exit(1);
}
