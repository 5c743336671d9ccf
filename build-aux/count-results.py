#!/usr/bin/python3
"""Counts test results in meson testlog.json files and prints one line,
"N passed, N failed".

A test that reports its cases (TAP lines, or pytest -v lines) counts each
case; any other test counts once. A skipped case is not a pass: it counts
as failed, so that no run turns green by skipping. A test whose process
ends badly (a crash after some passing cases, a timeout) adds one
failure of its own.
"""
import json
import re
import sys

TAP = re.compile(r'^(ok|not ok) \d+\b(.*)$')
PYTEST = re.compile(r'::\S+ (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b')


def cases(stdout):
    tap = [(m.group(1) == 'ok' and '# SKIP' not in m.group(2).upper())
           for m in map(TAP.match, stdout.splitlines()) if m]
    if tap:
        return tap
    return [m.group(1) == 'PASSED' for m in PYTEST.finditer(stdout)]


def count(entry):
    ok = entry['result'] == 'OK'
    results = cases(entry.get('stdout') or '')
    if not results:
        return (1, 0) if ok else (0, 1)
    passed = sum(results)
    failed = len(results) - passed + (0 if ok else 1)
    return passed, failed


def main(paths):
    passed = failed = 0
    for path in paths:
        with open(path) as log:
            for line in log:
                p, f = count(json.loads(line))
                passed += p
                failed += f
    print(f'{passed} passed, {failed} failed')
    return 1 if failed or not passed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
