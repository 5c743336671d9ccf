#!/usr/bin/python3
# chat.py: a chat room over a QCOP channel
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Usage: chat.py NAME
#
# The same program as chat.c: each line typed is a "say" message on
# "chat/room" carrying (NAME, line); everything said there is printed.
# The gi override (gi.overrides.Qipc) turns the Python tuple into a
# GVariant and data.unpack() turns it back.

import sys

import gi
gi.require_version('Qipc', '1.0')
from gi.repository import GLib, Qipc  # noqa: E402


def on_received(channel, message, data):
    if data is None or data.get_type_string() != '(ss)':
        return
    who, text = data.unpack()
    if message == 'join':
        print(f'* {who} joined', flush=True)
    elif message == 'leave':
        print(f'* {who} left', flush=True)
    elif message == 'say':
        print(f'<{who}> {text}', flush=True)


def main():
    if len(sys.argv) != 2:
        print('Usage: chat.py NAME', file=sys.stderr)
        return 2
    name = sys.argv[1]
    loop = GLib.MainLoop()

    def say(message, text=''):
        Qipc.Channel.send('chat/room', message, (name, text))

    try:
        room = Qipc.Channel.new('chat/room')   # on the default bus
    except GLib.Error as error:
        print(f'chat.py: {error.message}', file=sys.stderr)
        return 1
    room.connect('received', on_received)
    say('join')

    def on_input(channel, condition):
        line = sys.stdin.readline()
        if line:
            say('say', line.rstrip('\n'))
            return GLib.SOURCE_CONTINUE
        say('leave')
        Qipc.Channel.flush()     # make sure it left before exiting
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.io_add_watch(GLib.IOChannel.unix_new(sys.stdin.fileno()),
                      GLib.PRIORITY_DEFAULT, GLib.IOCondition.IN | GLib.IOCondition.HUP,
                      on_input)
    loop.run()
    return 0


if __name__ == '__main__':
    sys.exit(main())
