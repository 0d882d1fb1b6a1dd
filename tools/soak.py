#!/usr/bin/env python3
"""Soak bench (issue 17 item 4): one dpt-generate --batch process runs JOBS jobs on the demo model,
some of them failing (missing, corrupt or truncated audio, a bad shape or style, an output whose
directory is a file; malformed lines between them), and reports what the process itself measured after each
job (--batch-stats: VmRSS, VmHWM, open descriptors). Checks:
  * resident memory flat: its highest and lowest levels and its peak over the last window of jobs
    less than 1 MiB above those of the first window after the warm-up (10% of the jobs, >= 20);
  * no descriptor leak: the same count after every job;
  * every good job's output (npz, csv, json, plot) byte-equal to a single run of the same job;
  * exactly the failing jobs reported, one line each, and the batch's exit status 1.
Prints RSS/fd at jobs 1, 100 and the last, and one 'soak: ... OK|FAILED' line.
  tools/soak.py [--jobs N] [--build DIR] [--keep DIR]      (make soak: 1000 jobs; make soak-short: 100)
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import wave

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, 'weights', 'demo-tiny.dpt')
SHAPE = os.path.join(ROOT, 'examples', 'data', 'shape.npy')
GROWTH_LIMIT_KIB = 1024
# every job is generated with these (the batch and the single runs alike)
OPTS = ['--cfg-cond', 'audio', '--threads', '1', '--seed', '7', '-q']


def write_wav(path, seconds, seed):
    sr = 16000
    t = np.arange(int(sr * seconds)) / sr
    x = 0.3 * np.sin(2 * np.pi * 180 * t) * np.sin(2 * np.pi * 3 * t)
    x += 0.05 * np.random.default_rng(seed).normal(size=t.size)
    with wave.open(path, 'wb') as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype('<i2').tobytes())


def make_inputs(d, gen, style_prog):
    """Good inputs and bad ones; returns (good configurations, bad job lines)."""
    aud = [os.path.join(d, f'a{i}.wav') for i in range(3)]
    for i, (a, sec) in enumerate(zip(aud, (0.6, 1.0, 1.7))):
        write_wav(a, sec, i)
    flac = os.path.join(ROOT, 'examples', 'data', 'speech.flac')
    # a style vector from a generated clip (dpt-style)
    motion = os.path.join(d, 'motion.npz')
    r = subprocess.run([gen, '-m', MODEL, '-a', aud[2], '-c', SHAPE, '-o', motion] + OPTS,
                       capture_output=True, text=True)
    if r.returncode:
        sys.exit(f'soak: cannot make the style clip: {r.stderr.strip()}')
    style = os.path.join(d, 'style.npy')
    r = subprocess.run([style_prog, '-m', MODEL, '-c', motion, '-o', style, '-q'], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f'soak: cannot make the style vector: {r.stderr.strip()}')
    good = []   # (audio, style or '-', extension, plot?)
    for a in aud:
        for st, ext, plot in (('-', 'npz', False), (style, 'npz', True), ('-', 'csv', False), (style, 'json', False)):
            good.append((a, st, ext, plot))
    good.append((flac, style, 'npz', False))
    # bad inputs, one of each kind
    corrupt = os.path.join(d, 'corrupt.wav')
    with open(corrupt, 'wb') as f:
        f.write(b'RIFF\x24\x00\x00\x00WAVEfmt ' + bytes(range(256)) * 4)
    truncated = os.path.join(d, 'truncated.wav')
    with open(aud[1], 'rb') as f:
        data = f.read()
    with open(truncated, 'wb') as f:
        f.write(data[:30])
    bad_shape = os.path.join(d, 'bad_shape.npy')
    with open(bad_shape, 'w') as f:
        f.write('not an npy file\n')
    nan_shape = os.path.join(d, 'nan_shape.npy')
    np.save(nan_shape, np.full(100, np.nan, np.float32))
    bad_style = os.path.join(d, 'bad_style.npy')
    np.save(bad_style, np.zeros(3, np.float32))
    blocker = os.path.join(d, 'blocker')
    with open(blocker, 'w') as f:
        f.write('a file where a directory is needed\n')
    bad = [f'{os.path.join(d, "missing.wav")}\t{SHAPE}\t-\t{{out}}.npz',
           f'{corrupt}\t{SHAPE}\t-\t{{out}}.npz',
           f'{truncated}\t{SHAPE}\t-\t{{out}}.npz',
           f'{aud[0]}\t{bad_shape}\t-\t{{out}}.npz',
           f'{aud[0]}\t{nan_shape}\t-\t{{out}}.npz',
           f'{aud[1]}\t{SHAPE}\t{bad_style}\t{{out}}.npz',
           f'{aud[1]}\t{SHAPE}\t-\t{blocker}/sub/{{name}}.npz',
           f'{aud[0]}\t{SHAPE}\t{{out}}-malformed.npz']   # the last: a malformed line (3 fields)
    return good, bad


def out_files(base, ext, plot):
    return [f'{base}.{ext}'] + ([f'{base}.svg'] if plot else [])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--jobs', type=int, default=1000)
    ap.add_argument('--warmup', type=int, default=0, help='job after which memory must stay flat '
                    '(default: 10%% of the jobs, at least 20)')
    ap.add_argument('--build', default=os.environ.get('DPT_BUILD', os.path.join(ROOT, 'build')))
    ap.add_argument('--keep', help='work in this directory and keep it')
    a = ap.parse_args()
    gen = os.path.join(a.build, 'dpt-generate')
    style_prog = os.path.join(a.build, 'dpt-style')
    for prog in (gen, style_prog):
        if not os.access(prog, os.X_OK):
            sys.exit(f'soak: {prog}: not built (make)')
    warmup = a.warmup or max(20, a.jobs // 10)
    if a.jobs < warmup + 1:
        sys.exit('soak: --jobs must exceed the warm-up')
    d = a.keep or tempfile.mkdtemp(prefix='dpt-soak-')
    os.makedirs(d, exist_ok=True)
    problems = []
    try:
        good, bad = make_inputs(d, gen, style_prog)
        # references: each good configuration run once on its own
        refs = []
        for i, (aud, st, ext, plot) in enumerate(good):
            base = os.path.join(d, f'ref{i}')
            cmd = [gen, '-m', MODEL, '-a', aud, '-c', SHAPE, '-o', f'{base}.{ext}'] + OPTS
            cmd += ['-s', st] if st != '-' else []
            cmd += ['--plot', f'{base}.svg'] if plot else []
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode:
                sys.exit(f'soak: single run {i} failed: {r.stderr.strip()}')
            refs.append([open(p, 'rb').read() for p in out_files(base, ext, plot)])
        # the jobs: every 7th a failing one, cycling through the kinds
        outdir = os.path.join(d, 'out')
        os.makedirs(outdir, exist_ok=True)
        malformed_line = bad.pop()
        lines, expect = [], []   # expect[i] = ('good', config, base) or ('bad', kind, base)
        n_bad = n_good = 0
        for j in range(a.jobs):
            name = f'j{j:05d}'
            base = os.path.join(outdir, name)
            if j % 60 == 59:   # a malformed line (3 fields): reported while reading, not a job
                lines.append(malformed_line.format(out=base))
            if j % 7 == 3:
                kind = n_bad % len(bad)
                n_bad += 1
                lines.append(bad[kind].format(out=base, name=name))
                expect.append(('bad', kind, base))
            else:
                c = n_good % len(good)
                n_good += 1
                aud, st, ext, plot = good[c]
                lines.append(f'{aud}\t{SHAPE}\t{st}\t{base}.{ext}' + (f'\t{base}.svg' if plot else ''))
                expect.append(('good', c, base))
        jobs = os.path.join(d, 'jobs.tsv')
        with open(jobs, 'w') as f:
            f.write('# soak bench jobs\n' + '\n'.join(lines) + '\n')
        stats_path = os.path.join(d, 'stats.tsv')
        r = subprocess.run([gen, '-m', MODEL, '--batch', jobs, '--batch-stats', stats_path] + OPTS,
                           capture_output=True, text=True)
        err = r.stderr.strip().splitlines()
        malformed = a.jobs // 60
        if r.returncode != 1:
            problems.append(f'batch exit status {r.returncode}, expected 1')
        want_err = n_bad + malformed + 1   # one line per failing job or malformed line, then the summary
        if len(err) != want_err:
            problems.append(f'{len(err)} stderr lines, expected {want_err}: {err[:3]}')
        if not err or f'{n_bad + malformed} of {a.jobs + malformed} job(s) failed' not in err[-1]:
            problems.append(f'last stderr line: {err[-1] if err else None!r}')
        # the stats: one line per job run (the malformed lines are not jobs)
        rows = [list(map(int, ln.split('\t'))) for ln in open(stats_path).read().splitlines()]
        if len(rows) != a.jobs:
            problems.append(f'{len(rows)} stats lines, expected {a.jobs}')
        if len(rows) < warmup + 2:   # the batch died early: no figures to judge
            print('\n'.join(f'soak: {p}' for p in problems + err[-3:]))
            print(f'soak: {a.jobs} jobs, only {len(rows)} ran, FAILED')
            return 1
        # outputs
        equal = 0
        for kind, c, base in expect:
            if kind == 'good':
                aud, st, ext, plot = good[c]
                got = [open(p, 'rb').read() if os.path.exists(p) else None for p in out_files(base, ext, plot)]
                if got == refs[c]:
                    equal += 1
                elif len(problems) < 20:
                    problems.append(f'{base}: differs from the single run of configuration {c}')
            else:
                left = [p for p in os.listdir(outdir) if p.startswith(os.path.basename(base) + '.')]
                if left:
                    problems.append(f'failing job wrote {left}')
        tmp_left = [p for p in os.listdir(outdir) if '.tmp-' in p]
        if tmp_left:
            problems.append(f'temporaries left: {tmp_left[:5]}')
        # memory and descriptors
        by_job = {row[0]: row for row in rows}
        ok_mismatch = [row[0] for row in rows if row[0] <= len(expect) and row[2] != (expect[row[0] - 1][0] == 'good')]
        if ok_mismatch:
            problems.append(f'stats ok column wrong at jobs {ok_mismatch[:5]}')
        if any(row[3] < 0 or row[5] < 0 for row in rows):
            problems.append('/proc/self not readable: no figures')
        first_fd = rows[0][5]
        fd_leak = [row for row in rows if row[5] != first_fd]
        if fd_leak:
            problems.append(f'descriptors changed: {first_fd} at job {rows[0][0]}, {fd_leak[0][5]} at job {fd_leak[0][0]}')
        # Jobs differ in size (the 8 s clip's buffers are the largest), so RSS after one job is not
        # RSS after the next: compare the highest and the lowest RSS of the first window after the
        # warm-up with those of the last window, and the peak (VmHWM) between the two.
        after = [row for row in rows if row[0] > warmup]
        w = min(100, len(after) // 2)
        first, final = after[:w], after[-w:]
        growth = max(max(r_[3] for r_ in final) - max(r_[3] for r_ in first),
                     min(r_[3] for r_ in final) - min(r_[3] for r_ in first),
                     final[-1][4] - first[-1][4])
        if growth >= GROWTH_LIMIT_KIB:
            problems.append(f'resident memory grew by {growth} KiB between jobs {first[0][0]}-{first[-1][0]} '
                            f'and {final[0][0]}-{final[-1][0]} (limit {GROWTH_LIMIT_KIB})')
        last = rows[-1]

        def at(j):
            row = by_job.get(j) or min(rows, key=lambda r_: abs(r_[0] - j))
            return f'job {row[0]}: RSS {row[3]} KiB, peak {row[4]} KiB, {row[5]} fds'
        marks = sorted({1, min(100, last[0]), last[0]})
        for j in marks:
            print(f'soak: {at(j)}')
        verdict = 'OK' if not problems else 'FAILED'
        for p in problems:
            print(f'soak: {p}')
        mid = min(100, last[0])
        print(f'soak: {a.jobs} jobs ({n_bad} failing, {malformed} malformed lines between them), '
              f'RSS {rows[0][3]}/{by_job.get(mid, last)[3]}/{last[3]} KiB at jobs 1/{mid}/{last[0]}, '
              f'growth {growth} KiB (jobs {first[0][0]}-{first[-1][0]} to {final[0][0]}-{final[-1][0]}), '
              f'fds {rows[0][5]}/{by_job.get(mid, last)[5]}/{last[5]}, '
              f'outputs equal to single runs {equal}/{n_good}, {verdict}')
        return 0 if not problems else 1
    finally:
        if not a.keep:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
