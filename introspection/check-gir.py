#!/usr/bin/python3
# check-gir.py: every public function of qipc is in the GIR
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Reads the public headers for the functions they export (each declaration
# after a QIPC_AVAILABLE_IN_* macro, and the get_type function of each
# G_DECLARE_*_TYPE), reads Qipc-1.0.gir for what g-ir-scanner described,
# and fails listing every exported function that the GIR lacks, or has
# only as introspectable="0". A function whose doc comment in the C
# sources is annotated `(skip)` is left out on purpose: it is reported as
# "skipped: reason", the reason being taken from the comment, and a skip
# without any text to give as reason is a failure too.
#
# Every class's description must also hold a short example (a ``` code
# block), as the docs promise.
#
# g-ir-scanner's own warnings are not checked here: introspection/meson.build
# generates the GIR with fatal_warnings: true, so any of them fails the build.
#
# Usage: check-gir.py --gir Qipc-1.0.gir --headers H... --sources C...

import argparse
import re
import sys
import xml.etree.ElementTree as ET

CORE = '{http://www.gtk.org/introspection/core/1.0}'
C_NS = '{http://www.gtk.org/introspection/c/1.0}'
GLIB_NS = '{http://www.gtk.org/introspection/glib/1.0}'

# Only these carry a callable c:identifier that counts as "in the GIR";
# virtual methods are reached through their class struct, not by symbol.
CALLABLE_TAGS = {CORE + 'function', CORE + 'method', CORE + 'constructor'}

EXPORT_RE = re.compile(r'\bQIPC_AVAILABLE_IN_[A-Z0-9_]+\b')
DECLARE_RE = re.compile(r'^\s*G_DECLARE_(?:FINAL|DERIVABLE|INTERFACE)_TYPE\s*\(\s*\w+\s*,\s*(\w+)\s*,')
FUNC_RE = re.compile(r'\b([A-Za-z_]\w*)\s*\(')


def strip_comments(text):
    """TEXT without C comments and preprocessor lines, keeping the line count."""
    def blank(match):
        return re.sub(r'[^\n]', ' ', match.group(0))
    text = re.sub(r'/\*.*?\*/', blank, text, flags=re.S)
    text = re.sub(r'//[^\n]*', '', text)
    # Preprocessor lines, with their continuations: the export macros'
    # own #defines are not declarations.
    return re.sub(r'^[ \t]*#(?:[^\n]*\\\n)*[^\n]*', '', text, flags=re.M)


def exported_functions(path):
    """[(name, line)] of the functions HEADER declares as public API."""
    with open(path, encoding='utf-8') as f:
        text = strip_comments(f.read())
    found = []
    for match in EXPORT_RE.finditer(text):
        rest = text[match.end():]
        line = text.count('\n', 0, match.end()) + 1
        # The declaration after the macro ends at the first ';' (or, for
        # G_DECLARE_*_TYPE, which has none, at its closing parenthesis).
        declare = DECLARE_RE.match(rest)
        if declare:
            found.append((declare.group(1) + '_get_type', line))
            continue
        decl = rest.split(';', 1)[0]
        # The declaration may start on the next line: count from there.
        skipped = len(decl) - len(decl.lstrip())
        line += rest.count('\n', 0, skipped)
        func = FUNC_RE.search(decl)
        if func is None or EXPORT_RE.search(decl):
            sys.exit(f'{path}:{line}: cannot read the declaration after the export macro: {decl.strip()!r}')
        found.append((func.group(1), line))
    return found


def gir_symbols(path):
    """(callables, not_introspectable, get_types) of the GIR at PATH."""
    root = ET.parse(path).getroot()
    callables = set()
    hidden = set()
    get_types = set()
    for element in root.iter():
        get_type = element.get(GLIB_NS + 'get-type')
        if get_type:
            get_types.add(get_type)
        if element.tag not in CALLABLE_TAGS:
            continue
        ident = element.get(C_NS + 'identifier')
        if not ident:
            continue
        if element.get('introspectable') == '0':
            hidden.add(ident)
        else:
            callables.add(ident)
    return callables, hidden - callables, get_types


def classes_without_example(path):
    """The names of the GIR's classes whose doc has no ``` code block."""
    root = ET.parse(path).getroot()
    missing = []
    for klass in root.iter(CORE + 'class'):
        doc = klass.find(CORE + 'doc')
        if doc is None or '```' not in (doc.text or ''):
            missing.append(klass.get(C_NS + 'type') or klass.get('name'))
    return missing


def skip_reason(comment_lines):
    """The reason a (skip) doc comment gives, or '' when it gives none."""
    # What follows the annotation on its own line, as in
    # "* foo: (skip): only for C", is the reason when present.
    head = re.sub(r'^\s*\*\s*\w+:\s*\(skip\)\s*:?', '', comment_lines[0]).strip()
    if head:
        return head
    # Otherwise the description: the paragraph after the @param lines, and
    # of it the sentences that say what bindings use instead, if any.
    body = []
    in_params = True
    for raw in comment_lines[1:]:
        text = re.sub(r'^\s*\*\s?', '', raw).rstrip()
        if in_params:
            if text.startswith('@') or not text:
                continue
            in_params = False
        if not text:
            if body:
                break
            continue
        if re.match(r'^(Returns|Since|Deprecated|Stability)\s*:', text):
            break
        body.append(text.strip())
    description = ' '.join(body)
    sentences = re.split(r'(?<=[.!?])\s+', description)
    about_bindings = [s for s in sentences if re.search(r'\bbinding', s, re.I)]
    return ' '.join(about_bindings or sentences).strip()


def skipped_functions(sources):
    """{name: (reason, where)} for every doc comment annotated (skip)."""
    skips = {}
    for path in sources:
        with open(path, encoding='utf-8') as f:
            lines = f.read().split('\n')
        for i, line in enumerate(lines):
            match = re.match(r'^\s*\*\s*(\w+):.*\(skip\)', line)
            if not match or i == 0 or not lines[i - 1].strip().startswith('/**'):
                continue
            block = [line]
            for following in lines[i + 1:]:
                if following.strip().startswith('*/'):
                    break
                block.append(following)
            skips[match.group(1)] = (skip_reason(block), f'{path}:{i + 1}')
    return skips


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--gir', required=True)
    parser.add_argument('--headers', nargs='+', required=True)
    parser.add_argument('--sources', nargs='+', required=True)
    args = parser.parse_args()

    callables, hidden, get_types = gir_symbols(args.gir)
    skips = skipped_functions(args.sources)

    problems = []
    checked = 0
    for header in args.headers:
        for name, line in exported_functions(header):
            checked += 1
            where = f'{header}:{line}'
            if name.endswith('_get_type') and name in get_types:
                continue
            if name in callables:
                continue
            if name in skips:
                reason, comment = skips[name]
                if reason:
                    print(f'skipped: {name}: {reason}')
                else:
                    problems.append(f'{where}: {name} is annotated (skip) at {comment} '
                                    'but its doc comment gives no reason')
                continue
            if name in hidden:
                problems.append(f'{where}: {name} is in the GIR only as introspectable="0" '
                                '(fix its annotations, or mark it (skip) with a reason)')
            else:
                problems.append(f'{where}: {name} is missing from the GIR '
                                '(document it, or mark it (skip) with a reason)')

    for name in classes_without_example(args.gir):
        problems.append(f'{name}: its class description has no example (a ``` code block)')

    if checked == 0:
        problems.append('no exported function found in the headers: is the export macro still QIPC_AVAILABLE_IN_*?')
    for problem in problems:
        print(problem)
    print(f'{checked} public functions checked, {len(problems)} problems')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
