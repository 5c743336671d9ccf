// testlib.js: a tiny test runner for the GJS tests
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A test file registers tests with test(name, fn), where fn may be async,
// and ends with run(). run() spins a GLib main loop, runs the tests one
// after the other, each bounded in time, prints TAP-style lines, and ends
// the process with System.exit(1) when any test failed. Everything that
// could fail outside a test's own promise chain fails the process too:
// warnings and criticals are made fatal (an exception thrown in a signal
// handler or main loop callback is logged as a critical, an unhandled
// promise rejection as a warning), so gjs aborts with a non-zero status
// even when G_DEBUG=fatal-warnings is not set.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import System from 'system';

GLib.log_set_always_fatal(GLib.LogLevelFlags.LEVEL_ERROR |
                          GLib.LogLevelFlags.LEVEL_CRITICAL |
                          GLib.LogLevelFlags.LEVEL_WARNING);

Gio._promisify(Gio.Subprocess.prototype, 'wait_async', 'wait_finish');
Gio._promisify(Gio.DataInputStream.prototype, 'read_line_async', 'read_line_finish_utf8');

// Generous bounds: they only decide how long a broken test takes to fail.
export const TEST_TIMEOUT_MS = 45000;
export const LINE_TIMEOUT_MS = 30000;

const CHILD = GLib.build_filenamev([
    GLib.path_get_dirname(GLib.filename_from_uri(import.meta.url)[0]), 'child.js']);
const GJS = GLib.find_program_in_path('gjs') ?? 'gjs';

export const PID = new Gio.Credentials().get_unix_pid();

const tests = [];
let current = null;
let serial = 0;

export class AssertionError extends Error {
    constructor(message) {
        super(message);
        this.name = 'AssertionError';
    }
}

function show(value) {
    if (value instanceof Uint8Array)
        return `Uint8Array [${Array.from(value).join(', ')}]`;
    if (typeof value === 'string')
        return JSON.stringify(value);
    try {
        return JSON.stringify(value) ?? String(value);
    } catch {
        return String(value);
    }
}

function same(a, b) {
    if (a === b)
        return true;
    if ((Array.isArray(a) || a instanceof Uint8Array) && (Array.isArray(b) || b instanceof Uint8Array))
        return a.length === b.length && Array.from(a).every((x, i) => same(x, b[i]));
    return false;
}

export function assert(condition, message = 'assertion failed') {
    if (!condition)
        throw new AssertionError(message);
}

export function assertEqual(actual, expected, message = '') {
    if (!same(actual, expected))
        throw new AssertionError(`${message ? `${message}: ` : ''}expected ${show(expected)}, got ${show(actual)}`);
}

export function describeError(e) {
    if (e instanceof GLib.Error)
        return `${GLib.quark_to_string(e.domain)} ${e.code}: ${e.message}`;
    return `${e}`;
}

// Checks that E is a GLib.Error of DOMAIN (a quark) and CODE, and returns it.
export function assertError(e, domain, code, message = '') {
    if (!(e instanceof GLib.Error) || !e.matches(domain, code)) {
        throw new AssertionError(`${message ? `${message}: ` : ''}expected error ` +
            `${GLib.quark_to_string(domain)} ${code}, got ${e === undefined ? 'no error' : describeError(e)}`);
    }
    return e;
}

// Calls FN and checks that it throws a GLib.Error of DOMAIN and CODE.
export function assertThrows(fn, domain, code, message = '') {
    let value;
    try {
        value = fn();
    } catch (e) {
        return assertError(e, domain, code, message);
    }
    throw new AssertionError(`${message ? `${message}: ` : ''}expected error ` +
        `${GLib.quark_to_string(domain)} ${code}, but the call returned ${show(value)}`);
}

// Awaits PROMISE and checks that it rejects with a GLib.Error of DOMAIN and CODE.
export async function assertRejects(promise, domain, code, message = '') {
    let value;
    try {
        value = await promise;
    } catch (e) {
        return assertError(e, domain, code, message);
    }
    throw new AssertionError(`${message ? `${message}: ` : ''}expected error ` +
        `${GLib.quark_to_string(domain)} ${code}, but the call resolved to ${show(value)}`);
}

// Resolves after MS milliseconds of main loop.
export function delay(ms) {
    return new Promise(resolve => {
        GLib.timeout_add(GLib.PRIORITY_DEFAULT, ms, () => {
            resolve();
            return GLib.SOURCE_REMOVE;
        });
    });
}

// PROMISE, or a rejection with an AssertionError when it takes more than MS.
export function withTimeout(promise, ms, what) {
    let source = 0;
    const timeout = new Promise((resolve, reject) => {
        source = GLib.timeout_add(GLib.PRIORITY_DEFAULT, ms, () => {
            source = 0;
            reject(new AssertionError(`${what}: nothing happened for ${ms} ms`));
            return GLib.SOURCE_REMOVE;
        });
    });
    return Promise.race([promise, timeout]).finally(() => {
        if (source)
            GLib.source_remove(source);
    });
}

// A promise with its resolve/reject, for results that come from signals.
export function deferred() {
    let resolve, reject;
    const promise = new Promise((res, rej) => {
        resolve = res;
        reject = rej;
    });
    return {promise, resolve, reject};
}

// Runs FN at the end of the current test, passed or failed.
export function onCleanup(fn) {
    current.cleanups.push(fn);
}

// A key that no other test, test file or test run uses.
export function uniqueKey(what = '') {
    return `qipc-gjs/${PID}/${current.name}/${what}${serial++}`;
}

// A child.js process that the test talks to line by line.
export class Child {
    constructor(args) {
        this.args = args;
        this.proc = Gio.Subprocess.new([GJS, '-m', CHILD, ...args],
            Gio.SubprocessFlags.STDIN_PIPE | Gio.SubprocessFlags.STDOUT_PIPE);
        this.stdout = new Gio.DataInputStream({base_stream: this.proc.get_stdout_pipe()});
        this.stdin = this.proc.get_stdin_pipe();
        this.exited = null;
    }

    get pid() {
        return Number(this.proc.get_identifier());
    }

    // The next line the child prints, without its newline.
    async readline(timeout = LINE_TIMEOUT_MS) {
        const cancellable = new Gio.Cancellable();
        let line;
        try {
            [line] = await withTimeout(
                this.stdout.read_line_async(GLib.PRIORITY_DEFAULT, cancellable),
                timeout, `child ${this.args.join(' ')}`);
        } catch (e) {
            cancellable.cancel();
            throw e;
        }
        if (line === null) {
            const status = await this.wait();
            throw new AssertionError(`child ${this.args.join(' ')} exited with status ${status}`);
        }
        return line;
    }

    // Reads a line, checks that it starts with PREFIX, returns it.
    async expect(prefix, timeout = LINE_TIMEOUT_MS) {
        const line = await this.readline(timeout);
        if (!line.startsWith(prefix))
            throw new AssertionError(`child ${this.args.join(' ')}: expected ${show(prefix)}, got ${show(line)}`);
        return line;
    }

    send(line) {
        this.stdin.write_all(new TextEncoder().encode(`${line}\n`), null);
        this.stdin.flush(null);
    }

    closeStdin() {
        if (!this.stdin.is_closed())
            this.stdin.close(null);
    }

    async _reap(timeout) {
        if (this.exited === null) {
            this.exited = withTimeout(this.proc.wait_async(null), timeout,
                `waiting for child ${this.args.join(' ')} to exit`);
        }
        await this.exited;
        if (this.proc.get_if_exited())
            return this.proc.get_exit_status();
        return -this.proc.get_term_sig();
    }

    // Closes stdin (the child's cue to finish) and resolves to its exit
    // status, or to minus the signal that ended it.
    wait(timeout = LINE_TIMEOUT_MS) {
        this.closeStdin();
        return this._reap(timeout);
    }

    // SIGKILLs the child and reaps it: whatever it held, it held when it died.
    async kill() {
        this.proc.send_signal(9);
        assertEqual(await this._reap(LINE_TIMEOUT_MS), -9, `exit of killed child ${this.args.join(' ')}`);
    }

    async cleanup() {
        if (this.exited === null)
            this.proc.force_exit();
        try {
            await this._reap(LINE_TIMEOUT_MS);
        } catch (e) {
            printerr(`# cannot reap child ${this.args.join(' ')}: ${e}`);
        }
        this.closeStdin();
    }
}

// Starts child.js with ARGS; the child is killed at the end of the test.
export function spawn(...args) {
    const child = new Child(args);
    onCleanup(() => child.cleanup());
    return child;
}

export function test(name, fn) {
    tests.push({name, fn, knownBug: null});
}

// A test that fails because of a known library bug, described in BUG. It
// must fail: when the bug is fixed and the test passes, that is reported as
// a failure, so the marker gets removed.
export function testKnownBug(name, bug, fn) {
    tests.push({name, fn, knownBug: bug});
}

async function runOne(t, number) {
    current = {name: t.name, cleanups: []};
    let error = null;
    try {
        await withTimeout(Promise.resolve().then(() => t.fn()), TEST_TIMEOUT_MS, t.name);
    } catch (e) {
        error = e;
    }
    for (const cleanup of current.cleanups.reverse()) {
        try {
            await cleanup();
        } catch (e) {
            error ??= e;
        }
    }
    current = null;

    if (t.knownBug !== null) {
        if (error === null) {
            print(`not ok ${number} - ${t.name} # known bug is fixed, remove the marker: ${t.knownBug}`);
            return false;
        }
        print(`ok ${number} - ${t.name} # TODO known library bug: ${t.knownBug}`);
        print(`#   fails as expected: ${describeError(error)}`);
        return true;
    }
    if (error === null) {
        print(`ok ${number} - ${t.name}`);
        return true;
    }
    print(`not ok ${number} - ${t.name}`);
    printerr(`# ${t.name}: ${error instanceof GLib.Error ? describeError(error) : error}`);
    if (error.stack)
        printerr(error.stack.replace(/^/gm, '#   '));
    return false;
}

// Runs every registered test; exits with status 1 if any failed.
export function run() {
    const loop = new GLib.MainLoop(null, false);
    let failed = 0;

    print(`1..${tests.length}`);
    (async () => {
        for (const [i, t] of tests.entries()) {
            if (!await runOne(t, i + 1))
                failed++;
        }
    })().catch(e => {
        printerr(`# the runner failed: ${e}\n${e.stack ?? ''}`);
        failed++;
    }).finally(() => loop.quit());
    loop.run();

    if (failed > 0) {
        print(`# ${failed} of ${tests.length} tests failed`);
        System.exit(1);
    }
    print(`# all ${tests.length} tests passed`);
}
