# conftest.py: shared fixtures of the Python tests
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The tests run on Debian's /usr/bin/python3 (PyGObject is installed for it)
# against the freshly built library: meson sets GI_TYPELIB_PATH and
# LD_LIBRARY_PATH, and the gi override comes from bindings/python. Other
# processes are real ones: qipc_child.py, started with the same interpreter
# and environment.

import itertools
import os
import select
import subprocess
import sys
import time

import gi
import gi.overrides
import pytest

# The override in the source tree (bindings/python) comes before any
# installed one, so the tests check the code they ship with.
OVERRIDES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         '..', '..', 'bindings', 'python', 'gi', 'overrides')
gi.overrides.__path__.insert(0, os.path.normpath(OVERRIDES))

gi.require_version('GLib', '2.0')
gi.require_version('Gio', '2.0')
gi.require_version('Qipc', '1.0')
from gi.repository import GLib, Qipc  # noqa: E402

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'qipc_child.py')

# Generous bounds: they only decide how long a broken test takes to fail.
LINE_TIMEOUT = 30
LOOP_TIMEOUT = 30

_serial = itertools.count()


class Child:
    """A qipc_child.py process that the test talks to line by line."""

    def __init__(self, *args):
        self.args = args
        self.proc = subprocess.Popen(
            [sys.executable, '-B', CHILD, *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._buffer = b''

    @property
    def pid(self):
        return self.proc.pid

    def readline(self, timeout=LINE_TIMEOUT):
        """The next line the child prints, without its newline."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b'\n' not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f'child {self.args} printed nothing for {timeout} s '
                                     f'(so far: {self._buffer!r})')
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                self.proc.wait(timeout=LINE_TIMEOUT)
                raise AssertionError(f'child {self.args} exited with status '
                                     f'{self.proc.returncode} (output so far: {self._buffer!r})')
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b'\n', 1)
        return line.decode()

    def expect(self, expected, timeout=LINE_TIMEOUT):
        """Reads a line, checks it starts with EXPECTED, returns it."""
        line = self.readline(timeout)
        assert line.startswith(expected), \
            f'child {self.args}: expected {expected!r}, got {line!r}'
        return line

    def send(self, line):
        self.proc.stdin.write(line.encode() + b'\n')
        self.proc.stdin.flush()

    def close_stdin(self):
        if not self.proc.stdin.closed:
            self.proc.stdin.close()

    def wait(self, timeout=LINE_TIMEOUT):
        """Closes stdin (the child's signal to finish) and returns the exit status."""
        self.close_stdin()
        return self.proc.wait(timeout=timeout)

    def kill(self):
        """SIGKILLs the child and reaps it: whatever it held, it held when it died."""
        self.proc.kill()
        self.proc.wait(timeout=LINE_TIMEOUT)
        assert self.proc.returncode == -9

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.close_stdin()
        self.proc.stdout.close()


@pytest.fixture
def spawn():
    """spawn(*args) starts qipc_child.py with ARGS; all are killed at the end."""
    children = []

    def start(*args):
        child = Child(*args)
        children.append(child)
        return child

    yield start
    for child in children:
        child.cleanup()


@pytest.fixture
def make_key(request):
    """make_key(what) gives a key no other test or test run uses."""
    def make(what=''):
        return f'qipc-py/{os.getpid()}/{request.node.name}/{what}{next(_serial)}'
    return make


@pytest.fixture
def key(make_key):
    return make_key()


def run_loop(loop, timeout=LOOP_TIMEOUT):
    """Runs LOOP until something quits it; fails the test after TIMEOUT s."""
    timed_out = []

    def on_timeout():
        timed_out.append(True)
        loop.quit()
        return GLib.SOURCE_REMOVE

    source = GLib.timeout_add_seconds(timeout, on_timeout)
    loop.run()
    if not timed_out:
        GLib.source_remove(source)
    assert not timed_out, f'the main loop ran for {timeout} s without finishing'


def iterate_for(ms):
    """Runs the default main context for MS milliseconds."""
    loop = GLib.MainLoop.new(None, False)

    def stop():
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.timeout_add(ms, stop)
    loop.run()


def assert_error(excinfo, domain, code):
    error = excinfo.value
    assert error.matches(domain, code), \
        f'expected {GLib.quark_to_string(domain)} {code!r}, got {error.domain} {error.code}: {error.message}'


@pytest.fixture
def shm_error():
    """assert_error() for QipcSharedMemoryError."""
    def check(excinfo, code):
        assert_error(excinfo, Qipc.shared_memory_error_quark(), code)
    return check


@pytest.fixture
def sem_error():
    """assert_error() for QipcSystemSemaphoreError."""
    def check(excinfo, code):
        assert_error(excinfo, Qipc.system_semaphore_error_quark(), code)
    return check
