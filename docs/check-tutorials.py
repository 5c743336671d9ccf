#!/usr/bin/python3
# check-tutorials.py: runs the programs of the Python and JavaScript tutorials
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Usage: check-tutorials.py SRCDIR python|javascript
#
# Every code block of docs/tutorial-LANG.md whose first line names a file
# ("# shm_reader.py: …", "// shm-reader.js: …") is written to a temporary
# directory, and the programs run the way the tutorial tells the reader to,
# against the library and typelib that the environment (meson's test_env)
# points at. The output each step must print is checked, so a tutorial
# cannot show code that does not work. JS imports of the installed module
# are pointed at bindings/gjs/qipc.js; Python finds the override through
# PYTHONPATH=bindings/python.

import os
import re
import subprocess
import sys
import tempfile
import time

SRCDIR, LANG = sys.argv[1], sys.argv[2]
INSTALLED_MODULE = 'file:///usr/share/gjs-1.0/qipc/qipc.js'
TIMEOUT = 20

if LANG == 'python':
    RUN, FENCE, COMMENT, EXT, SEP = ['/usr/bin/python3', '-B'], 'python', '#', '.py', '_'
else:
    RUN, FENCE, COMMENT, EXT, SEP = ['gjs', '-m'], 'js', '//', '.js', '-'

text = open(os.path.join(SRCDIR, 'docs', f'tutorial-{LANG}.md'), encoding='utf-8').read()
programs = {}
for block in re.findall(rf'^```{FENCE}\n(.*?)^```$', text, re.S | re.M):
    first = block.split('\n', 1)[0]
    m = re.match(rf'{re.escape(COMMENT)} (\S+{re.escape(EXT)}):', first)
    if not m:
        sys.exit(f'a {FENCE} block does not start with "{COMMENT} NAME{EXT}:": {first!r}')
    programs[m.group(1)] = block

env = dict(os.environ)
env['PYTHONPATH'] = os.path.join(os.path.abspath(SRCDIR), 'bindings', 'python')
# The tutorial's keys and broker address, made unique to this run.
tag = f'{os.getpid()}'

failures = []


def name(a, b):
    return f'{a}{SEP}{b}{EXT}'


with tempfile.TemporaryDirectory() as tmp:
    module_url = 'file://' + os.path.join(os.path.abspath(SRCDIR), 'bindings', 'gjs', 'qipc.js')
    for filename, code in programs.items():
        code = code.replace(INSTALLED_MODULE, module_url)
        code = code.replace("'tutorial/", f"'tutorial-{tag}/")
        code = code.replace('qipc-tutorial', f'qipc-tutorial-{tag}')
        with open(os.path.join(tmp, filename), 'w', encoding='utf-8') as f:
            f.write(code)

    def start(filename):
        return subprocess.Popen(RUN + [filename], cwd=tmp, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def expect_line(proc, expected, what):
        line = proc.stdout.readline().rstrip('\n')
        if line != expected:
            failures.append(f'{what}: expected {expected!r}, got {line!r}')
            return False
        return True

    def finish(proc, what, expected_lines=()):
        try:
            out, _ = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            failures.append(f'{what}: did not finish in {TIMEOUT} s; output {out!r}')
            return
        if proc.returncode != 0:
            failures.append(f'{what}: exit status {proc.returncode}; output {out!r}')
        lines = out.splitlines()
        if list(expected_lines) != lines:
            failures.append(f'{what}: expected {list(expected_lines)!r}, got {lines!r}')

    def run(filename, expected_lines=()):
        finish(start(filename), filename, expected_lines)

    # Shared memory: the reader creates, the writer writes and notifies.
    reader = start(name('shm', 'reader'))
    if expect_line(reader, 'waiting for a writer', name('shm', 'reader')):
        run(name('shm', 'writer'))
        finish(reader, name('shm', 'reader'), ['changed: hello from the writer'])
    else:
        reader.kill()

    # Semaphore: the waiter creates at 0, the other process releases.
    waiter = start(name('sem', 'wait'))
    if expect_line(waiter, 'waiting for the signal', name('sem', 'wait')):
        run(name('sem', 'signal'))
        finish(waiter, name('sem', 'wait'), ['got it'])
    else:
        waiter.kill()

    # Channel: a broker, a listener and a sender.
    broker = start('broker' + EXT)
    if expect_line(broker, 'broker listening', 'broker' + EXT):
        listener = start('listen' + EXT)
        if expect_line(listener, 'listening', 'listen' + EXT):
            run('send' + EXT)
            if LANG == 'python':
                said = "received say {'from': 'send.py', 'text': 'hello'}"
                quit_line = 'received quit None'
            else:
                said = 'received say {"from":"send.js","text":"hello"}'
                quit_line = 'received quit null'
            finish(listener, 'listen' + EXT, [said, quit_line])
        else:
            listener.kill()
    broker.kill()
    broker.communicate()

    # Errors: the program runs through, and each failure shows up as the
    # page says (the line starts; messages carry keys and addresses).
    errors = start('errors' + EXT)
    try:
        out, _ = errors.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        errors.kill()
        out, _ = errors.communicate()
    lines = out.splitlines()
    last = ('the semaphore stayed at 0 for 100 ms' if LANG == 'python'
            else 'acquired within 100 ms: false')
    starts = ['attach failed: ', 'bad address: ', 'not sendable: ', last]
    if errors.returncode != 0 or len(lines) != len(starts) or \
            not all(line.startswith(s) for line, s in zip(lines, starts)):
        failures.append(f'errors{EXT}: exit status {errors.returncode}, '
                        f'expected lines starting {starts!r}, got {lines!r}')

if failures:
    print('\n'.join(failures))
    sys.exit(1)
print(f'{len(programs)} programs of tutorial-{LANG}.md ran as shown')
