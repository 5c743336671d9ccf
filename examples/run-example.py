#!/usr/bin/python3
# run-example.py: runs an example program the way a user would, and checks
# what it prints
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Usage: run-example.py SRCDIR BUILDDIR EXAMPLE LANG [LANG...]
#
# EXAMPLE is one of the scenarios below; each LANG (c, python, js) is the
# implementation one participant runs, so "chat c python js" is a chat of
# three programs in three languages. Every example talks through a broker
# this script starts at a private address (QIPC_BUS_ADDRESS), against the
# library and typelib meson's test environment points at. Every wait is
# bounded: a participant that does not print what it should within
# TIMEOUT seconds fails the run, with what it printed.

import os
import queue
import random
import socket
import subprocess
import sys
import threading
import time

SRCDIR, BUILDDIR, EXAMPLE, LANGS = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
TIMEOUT = 20
# The gi override of the source tree (gi.overrides.Qipc).
os.environ['PYTHONPATH'] = os.path.join(SRCDIR, '..', 'bindings', 'python')


class Participant:
    def __init__(self, program, lang, args):
        if lang == 'c':
            command = [os.path.join(BUILDDIR, os.path.basename(program))]
        elif lang == 'python':
            command = ['/usr/bin/python3', '-B', os.path.join(SRCDIR, program + '.py')]
        elif lang == 'js':
            command = ['gjs', '-m', os.path.join(SRCDIR, program + '.js')]
        else:
            sys.exit(f'unknown language {lang}')
        self.name = f'{os.path.basename(program)}[{lang}] {" ".join(args)}'
        self.process = subprocess.Popen(command + list(args), stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line.rstrip('\n'))
        self.lines.put(None)

    def expect(self, wanted, prefix=False):
        """Reads lines until WANTED (or one starting with it); returns it."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                fail(f'{self.name} did not print {wanted!r}; it printed {self.seen!r}')
            self.seen.append(line)
            if line == wanted or (prefix and line.startswith(wanted)):
                return line

    def send(self, line):
        self.process.stdin.write(line + '\n')
        self.process.stdin.flush()

    def end_input(self):
        self.process.stdin.close()

    def wait(self):
        try:
            status = self.process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            fail(f'{self.name} did not exit')
        if status != 0:
            fail(f'{self.name} exited with status {status}; it printed {self.seen!r}')


participants = []


def fail(message):
    print(f'FAIL: {message}', flush=True)
    for p in participants:
        p.process.kill()
    sys.exit(1)


def start(program, lang, *args):
    p = Participant(program, lang, args)
    participants.append(p)
    return p


def start_broker():
    name = f'qipc-example/{os.getpid()}/{random.getrandbits(32)}'
    broker = subprocess.Popen([os.environ['QIPC_BROKER'], '--address', f'unix:abstract={name}'])
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            try:
                s.connect('\0' + name)
                break
            except OSError:
                time.sleep(0.02)
    else:
        broker.kill()
        sys.exit('the broker did not start')
    os.environ['QIPC_BUS_ADDRESS'] = f'unix:abstract={name}'
    return broker


def chat():
    """Each participant joins, says hello, hears the others, and leaves."""
    names = ['alice', 'bob', 'carol', 'dave'][:len(LANGS)]
    people = []
    for name, lang in zip(names, LANGS):
        person = start('chat/chat', lang, name)
        person.expect(f'* {name} joined')
        for other in people:
            other.expect(f'* {name} joined')
        people.append(person)
    for name, person in zip(names, people):
        person.send(f'hello from {name}')
        for other in people:
            other.expect(f'<{name}> hello from {name}')
    leaving, others = people[0], people[1:]
    leaving.end_input()
    leaving.wait()
    for other in others:
        other.expect(f'* {names[0]} left')
    for other in others:
        other.end_input()
        other.wait()


def board():
    """One producer (the first language) and a consumer in each language
    after it: every consumer sees readings in order, then the end."""
    key = f'example-board-{os.getpid()}-{random.getrandbits(32)}'
    count = 20
    producer = start('shm/board', LANGS[0], key, 'produce', str(count))
    producer.expect(f'created {key}')
    consumers = [start('shm/board', lang, key, 'consume') for lang in LANGS[1:]]
    for consumer in consumers:
        consumer.expect('attached')
    producer.send('go')
    producer.expect(f'published {count}')
    producer.wait()
    for consumer in consumers:
        consumer.expect('done after ', prefix=True)
        readings = [int(line.split()[1].rstrip(':')) for line in consumer.seen
                    if line.startswith('reading ')]
        if not readings or readings != sorted(set(readings)) or readings[-1] > count:
            fail(f'{consumer.name} saw readings {readings}')
        last = consumer.seen[-1]
        if last != f'done after {readings[-1]}':
            fail(f'{consumer.name} ended with {last!r} after readings {readings}')
        consumer.wait()


def counter():
    """The first language serves a counter; each one after it watches a
    mirror of it: increments and a property set from a watcher reach
    everyone, and the watchers hear the server go."""
    server = start('counter/counter', LANGS[0], 'serve')
    server.expect('serving')
    watchers = [start('counter/counter', lang, 'watch') for lang in LANGS[1:]]
    for watcher in watchers:
        watcher.expect('start 0')
    for value in range(1, 4):
        server.send('inc')
        server.expect(f'value {value}')
        for watcher in watchers:
            watcher.expect(f'value {value}')
    watchers[0].send('set 10')
    server.expect('value 10')
    for watcher in watchers:
        watcher.expect('value 10')
    server.end_input()
    server.wait()
    for watcher in watchers:
        watcher.expect('gone')
        watcher.wait()


SCENARIOS = {'chat': chat, 'board': board, 'counter': counter}

broker = start_broker()
try:
    SCENARIOS[EXAMPLE]()
finally:
    broker.terminate()
    broker.wait(timeout=TIMEOUT)
print(f'ok: {EXAMPLE} with {" ".join(LANGS)}')
