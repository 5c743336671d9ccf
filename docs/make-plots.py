#!/usr/bin/python3
# make-plots.py: the bar charts of docs/performance.md, from bench output
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Usage: make-plots.py [--results DIR] [--out DIR]
#        make-plots.py --check [--results DIR] [--images DIR]
#
# Reads the ROUND lines that bench/run-bench.sh prints, as checked in under
# bench/results/ (channels.log; sockets.log, whose "# socket ping-pong and
# throughput, pinned|unpinned" lines tell the two passes apart), takes the
# median of the rounds of each figure, and writes hand-made SVG bar charts
# (standard library only: no matplotlib) into docs/images/. With --check it
# writes them into a temporary directory and fails unless they equal the
# checked-in ones, so the plots cannot drift from the data.

import argparse
import filecmp
import math
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(HERE)

COLOURS = ['#3465a4', '#f57900', '#73d216', '#75507b', '#cc0000', '#c4a000']
NAMES = {
    'qipc': 'qipc',
    'gdbus': 'GDBus signals',
    'gdbus-method': 'GDBus method call',
    'zeromq': 'ZeroMQ PUB/SUB',
    'raw': 'raw socket pairs',
    'raw-relay': 'raw, through a relay',
    'qt5': 'Qt 5',
    'raw-blocking': 'raw, blocking',
    'raw-poll': 'raw, poll()',
}


def read_rounds(path, mode_from_comments=False):
    """{(key, implementation): [values]}; with MODE_FROM_COMMENTS the key
    gets the "pinned:"/"unpinned:" prefix of the pass it is in."""
    rounds = {}
    mode = None
    with open(path, encoding='utf-8') as f:
        for line in f:
            words = line.split()
            if mode_from_comments and line.startswith('#'):
                mode = 'unpinned' if 'unpinned,' in words else 'pinned'
                continue
            if not words or words[0] != 'ROUND':
                continue
            key = f'{mode}:{words[1]}' if mode_from_comments else words[1]
            rounds.setdefault((key, words[2]), []).append(float(words[3]))
    return rounds


def median(rounds, key, impl):
    return statistics.median(rounds[(key, impl)])


def fmt(value):
    """A short label for a bar: 3 significant digits, thousands separated."""
    if value >= 100:
        return f'{value:,.0f}'
    if value >= 10:
        return f'{value:.1f}'
    if value >= 1:
        return f'{value:.2f}'
    return f'{value:.3f}'


def esc(text):
    return text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')


def bar_chart(title, unit, groups, series, values, log=False):
    """An SVG grouped bar chart: GROUPS along the x axis, one bar per
    SERIES in each group, VALUES[group][series]; a logarithmic y axis with
    LOG."""
    width, height = 760, 400
    left, right, top, bottom = 70, 20, 50, 90
    plot_w, plot_h = width - left - right, height - top - bottom
    all_values = [v for g in groups for s in series if (v := values[g].get(s)) is not None]
    if log:
        lo = 10 ** math.floor(math.log10(min(all_values)))
        hi = 10 ** math.ceil(math.log10(max(all_values)))
        ticks = [10 ** e for e in range(round(math.log10(lo)), round(math.log10(hi)) + 1)]

        def y(v):
            return top + plot_h * (1 - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)))
    else:
        step = 10 ** math.floor(math.log10(max(all_values)))
        for m in (1, 2, 5, 10):
            if max(all_values) / (step * m) <= 6:
                step *= m
                break
        hi = step * math.ceil(max(all_values) / step)
        ticks = [step * i for i in range(int(round(hi / step)) + 1)]

        def y(v):
            return top + plot_h * (1 - v / hi)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
           f'<text x="{width / 2:.1f}" y="22" text-anchor="middle" font-size="15" '
           f'font-weight="bold">{esc(title)}</text>',
           f'<text x="14" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
           f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{esc(unit)}'
           f'{" (log scale)" if log else ""}</text>']
    for t in ticks:
        ty = y(t)
        out.append(f'<line x1="{left}" y1="{ty:.1f}" x2="{left + plot_w}" y2="{ty:.1f}" '
                   f'stroke="#d3d7cf" stroke-width="1"/>')
        out.append(f'<text x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end">{esc(fmt(t))}</text>')
    group_w = plot_w / len(groups)
    bar_w = group_w * 0.8 / len(series)
    base = y(lo) if log else y(0)
    for gi, group in enumerate(groups):
        gx = left + gi * group_w + group_w * 0.1
        for si, s in enumerate(series):
            v = values[group].get(s)
            if v is None:
                continue
            bx, by = gx + si * bar_w, y(v)
            out.append(f'<rect x="{bx:.1f}" y="{by:.1f}" width="{bar_w - 2:.1f}" '
                       f'height="{base - by:.1f}" fill="{COLOURS[si % len(COLOURS)]}">'
                       f'<title>{esc(NAMES.get(s, s))}, {esc(group)}: {esc(fmt(v))} {esc(unit)}</title></rect>')
            out.append(f'<text x="{bx + (bar_w - 2) / 2:.1f}" y="{by - 4:.1f}" '
                       f'text-anchor="middle" font-size="9">{esc(fmt(v))}</text>')
        out.append(f'<text x="{left + (gi + 0.5) * group_w:.1f}" y="{top + plot_h + 18}" '
                   f'text-anchor="middle">{esc(group)}</text>')
    out.append(f'<line x1="{left}" y1="{base:.1f}" x2="{left + plot_w}" y2="{base:.1f}" '
               f'stroke="#2e3436" stroke-width="1"/>')
    # Legend, in rows under the axis.
    lx, ly = left, top + plot_h + 42
    for si, s in enumerate(series):
        label = NAMES.get(s, s)
        w = 22 + 7 * len(label)
        if lx + w > width - right:
            lx, ly = left, ly + 18
        out.append(f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" '
                   f'fill="{COLOURS[si % len(COLOURS)]}"/>')
        out.append(f'<text x="{lx + 16}" y="{ly}">{esc(label)}</text>')
        lx += w
    out.append('</svg>')
    return '\n'.join(out) + '\n'


def plots(results):
    """{file name: SVG text}."""
    channels = read_rounds(os.path.join(results, 'channels.log'))
    sockets = read_rounds(os.path.join(results, 'sockets.log'), mode_from_comments=True)
    impls = ['qipc', 'gdbus', 'zeromq', 'raw']
    fanouts = [('1', '1 → 1'), ('4', '1 → 4'), ('16', '1 → 16')]
    charts = {}

    charts['channels-throughput.svg'] = bar_chart(
        'Channels: messages per second each receiver gets (unpinned, median)', 'messages/s',
        [label for _, label in fanouts], impls,
        {label: {i: median(channels, f'unpinned:fanout-{n}', i) for i in impls}
         for n, label in fanouts},
        log=True)

    charts['channels-cpu.svg'] = bar_chart(
        'Channels: CPU time of all processes per delivered message (unpinned, median)', 'µs',
        [label for _, label in fanouts], impls,
        {label: {i: median(channels, f'unpinned:fanout-{n}-cpu', i) / 1000 for i in impls}
         for n, label in fanouts},
        log=True)

    rt_impls = ['qipc', 'gdbus', 'gdbus-method', 'zeromq', 'raw', 'raw-relay']
    charts['channels-roundtrip.svg'] = bar_chart(
        'Channels: round trip, median of rounds', 'µs',
        [NAMES[i] for i in rt_impls], ['unpinned', 'pinned'],
        {NAMES[i]: {m: median(channels, f'{m}:roundtrip', i) for m in ('unpinned', 'pinned')}
         for i in rt_impls})

    sock_impls = ['qipc', 'qt5', 'raw-blocking', 'raw-poll']
    charts['sockets-roundtrip.svg'] = bar_chart(
        'Local sockets: ping-pong round trip of 64-byte frames, median', 'µs',
        [NAMES[i] for i in sock_impls], ['unpinned', 'pinned'],
        {NAMES[i]: {m: median(sockets, f'{m}:socket-pingpong', i) for m in ('unpinned', 'pinned')}
         for i in sock_impls})

    charts['sockets-throughput.svg'] = bar_chart(
        'Local sockets: one-way 64-byte messages per second, median', 'messages/s',
        [NAMES[i] for i in sock_impls], ['unpinned', 'pinned'],
        {NAMES[i]: {m: median(sockets, f'{m}:socket-throughput', i) for m in ('unpinned', 'pinned')}
         for i in sock_impls},
        log=True)
    return charts


def write(charts, out):
    os.makedirs(out, exist_ok=True)
    for name, svg in charts.items():
        with open(os.path.join(out, name), 'w', encoding='utf-8', newline='\n') as f:
            f.write(svg)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--results', default=os.path.join(SRCDIR, 'bench', 'results'))
    parser.add_argument('--out', default=os.path.join(HERE, 'images'))
    parser.add_argument('--check', action='store_true',
                        help='compare with the SVGs in --out instead of writing them')
    args = parser.parse_args()
    charts = plots(args.results)
    if not args.check:
        write(charts, args.out)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        write(charts, tmp)
        bad = []
        for name in sorted(charts):
            mine = os.path.join(args.out, name)
            if not os.path.exists(mine):
                bad.append(f'{name}: not checked in')
            elif not filecmp.cmp(os.path.join(tmp, name), mine, shallow=False):
                bad.append(f'{name}: differs from what bench/results gives')
        extra = sorted(set(n for n in os.listdir(args.out) if n.endswith('.svg')) - set(charts))
        bad += [f'{name}: no longer made by make-plots.py' for name in extra]
    if bad:
        print('\n'.join(bad))
        print('run docs/make-plots.py and commit docs/images/')
        return 1
    print(f'{len(charts)} plots match bench/results')
    return 0


if __name__ == '__main__':
    sys.exit(main())
