#!/usr/bin/python3
# check-site.py: opens pages of the generated reference in headless
# Chromium and checks that their internal links lead somewhere
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Usage: check-site.py CHROMIUM SITEDIR PAGE...
#
# Each PAGE (index.html, a class page…) is rendered with
# `chromium --headless --dump-dom`, so what is checked is the DOM after the
# page's scripts ran, as a reader's browser shows it. Every href and src in
# it that is not external (no scheme, or file:) must name a file of the site,
# and a #fragment must name an id (or a name) in that file: in the dumped
# DOM for the page itself, in the file's HTML for the others. CHROMIUM ''
# (meson found none) skips the test (exit 77).

import html.parser
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

SKIP = 77
TIMEOUT = 60


class Collector(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links = []
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None:
                continue
            if name in ('href', 'src'):
                self.links.append((tag, name, value))
            elif name == 'id' or (name == 'name' and tag == 'a'):
                self.ids.add(value)


def parse(text):
    collector = Collector()
    collector.feed(text)
    collector.close()
    return collector


def dump_dom(chromium, path, profile):
    result = subprocess.run(
        [chromium, '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
         f'--user-data-dir={profile}', '--dump-dom', 'file://' + path],
        capture_output=True, text=True, timeout=TIMEOUT)
    if result.returncode != 0 or '<html' not in result.stdout.lower():
        raise RuntimeError(f'chromium could not render {path} (status {result.returncode}): '
                           f'{result.stderr[-2000:]}')
    return result.stdout


def main():
    chromium, site, pages = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3:]
    if not chromium or not shutil.which(chromium):
        print('chromium not found: apt-get install chromium (build-aux/install-deps.sh does)')
        return SKIP
    ids_of = {}

    def ids(path):
        if path not in ids_of:
            with open(path, encoding='utf-8', errors='replace') as f:
                ids_of[path] = parse(f.read()).ids
        return ids_of[path]

    broken = []
    checked = 0
    with tempfile.TemporaryDirectory() as profile:
        for page in pages:
            path = os.path.join(site, page)
            dom = parse(dump_dom(chromium, path, profile))
            if not dom.links:
                broken.append(f'{page}: the rendered page has no links at all')
            ids_of[path] = dom.ids
            for tag, attr, value in dom.links:
                url = urllib.parse.urlsplit(value)
                if url.scheme not in ('', 'file') or (not url.path and not url.fragment):
                    continue   # external, javascript:, or href="" (the page itself)
                if url.scheme == 'file':
                    target = urllib.parse.unquote(url.path)
                elif url.path:
                    target = os.path.normpath(os.path.join(os.path.dirname(path),
                                                           urllib.parse.unquote(url.path)))
                else:
                    target = path
                checked += 1
                where = f'{page}: <{tag} {attr}="{value}">'
                if not target.startswith(site + os.sep):
                    broken.append(f'{where} leaves the site')
                elif not os.path.isfile(target):
                    broken.append(f'{where}: no file {os.path.relpath(target, site)}')
                elif url.fragment and target.endswith('.html') and \
                        urllib.parse.unquote(url.fragment) not in ids(target):
                    broken.append(f'{where}: no id "{url.fragment}" in '
                                  f'{os.path.relpath(target, site)}')
    if broken:
        print('\n'.join(broken))
        return 1
    print(f'{len(pages)} pages rendered, {checked} internal links lead somewhere')
    return 0


if __name__ == '__main__':
    sys.exit(main())
