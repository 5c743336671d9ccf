// chat.js: a chat room over a QCOP channel
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Usage: gjs -m chat.js NAME
//
// The same program as chat.c: each line typed is a "say" message on
// "chat/room" carrying [NAME, line]; everything said there is printed.
// The qipc module turns plain JS values into a GVariant and unpacks what
// arrives. An installed program imports it as
// 'file:///usr/share/gjs-1.0/qipc/qipc.js'; this one runs from the
// source tree.

import Gio from 'gi://Gio';
import GLib from 'gi://GLib';
import Qipc from 'gi://Qipc?version=1.0';
import System from 'system';

import * as QipcUtil from '../../bindings/gjs/qipc.js';

const [name] = ARGV;
if (name === undefined) {
    printerr('Usage: gjs -m chat.js NAME');
    System.exit(2);
}

const say = (message, text = '') =>
    QipcUtil.send('chat/room', message, [name, text], {type: '(ss)'});

const room = Qipc.Channel.new('chat/room');   // on the default bus
// The callback gets the data already unpacked: ['alice', 'hello'].
QipcUtil.connectReceived(room, (message, value) => {
    if (!Array.isArray(value) || value.length !== 2)
        return;
    const [who, text] = value;
    if (message === 'join')
        print(`* ${who} joined`);
    else if (message === 'leave')
        print(`* ${who} left`);
    else if (message === 'say')
        print(`<${who}> ${text}`);
});
say('join');

const input = new Gio.DataInputStream({
    base_stream: new Gio.UnixInputStream({fd: 0, close_fd: false}),
});
const loop = new GLib.MainLoop(null, false);

async function readLines() {
    for (;;) {
        // eslint-disable-next-line no-await-in-loop
        const [line] = await input.read_line_async(GLib.PRIORITY_DEFAULT, null);
        if (line === null)
            break;
        say('say', new TextDecoder().decode(line));
    }
    say('leave');
    await Qipc.Channel.flush_async(null, null);   // default bus; make sure it left before exiting
}

Gio._promisify(Gio.DataInputStream.prototype, 'read_line_async', 'read_line_finish');
readLines().catch(e => {
    printerr(`chat.js: ${e.message}`);
    System.exit(1);
}).finally(() => loop.quit());
loop.run();
