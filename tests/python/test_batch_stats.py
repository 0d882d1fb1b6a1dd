"""dpt-generate --batch-stats (the soak bench's figures, tools/soak.py): one line per job run, the
job's line in the jobs file, whether it succeeded, the process's resident and peak memory and its
open descriptors."""
import subprocess

import helpers

GEN = str(helpers.BUILD / 'dpt-generate')
MODEL = str(helpers.ROOT / 'weights' / 'demo-tiny.dpt')
SPEECH = str(helpers.ROOT / 'examples' / 'data' / 'speech.flac')
SHAPE = str(helpers.ROOT / 'examples' / 'data' / 'shape.npy')


def test_batch_stats_lines(tmp_path):
    jobs = tmp_path / 'jobs.tsv'
    jobs.write_text(f'# comment\n{SPEECH}\t{SHAPE}\t-\t{tmp_path}/a.npz\n'
                    f'{tmp_path}/missing.wav\t{SHAPE}\t-\t{tmp_path}/b.npz\n'
                    f'{SPEECH}\t{SHAPE}\n'
                    f'{SPEECH}\t{SHAPE}\t-\t{tmp_path}/c.csv\n')
    stats = tmp_path / 'stats.tsv'
    r = subprocess.run([GEN, '-m', MODEL, '--batch', jobs, '--batch-stats', stats, '--cfg-cond', 'audio',
                        '--steps', '2', '-q'], capture_output=True, text=True)
    assert r.returncode == 1, r.stderr
    assert '2 of 4 job(s) failed' in r.stderr.splitlines()[-1], r.stderr
    rows = [list(map(int, line.split('\t'))) for line in stats.read_text().splitlines()]
    assert [row[:3] for row in rows] == [[1, 2, 1], [2, 3, 0], [3, 5, 1]]
    for _, _, _, rss, hwm, fds in rows:
        assert 1000 < rss <= hwm < 1 << 20   # KiB: a few MiB for the demo model
        assert fds == 3                      # stdin, stdout, stderr (the stats file not counted)
    assert (tmp_path / 'a.npz').exists() and (tmp_path / 'c.csv').exists()


def test_batch_stats_needs_batch(tmp_path):
    r = subprocess.run([GEN, '-m', MODEL, '-a', SPEECH, '-c', SHAPE, '-o', tmp_path / 'o.npz',
                        '--batch-stats', tmp_path / 's.tsv'], capture_output=True, text=True)
    assert r.returncode == 2 and '--batch-stats needs --batch' in r.stderr, r.stderr
    assert not (tmp_path / 's.tsv').exists()


def test_batch_stats_unwritable(tmp_path):
    jobs = tmp_path / 'jobs.tsv'
    jobs.write_text(f'{SPEECH}\t{SHAPE}\t-\t{tmp_path}/a.npz\n')
    r = subprocess.run([GEN, '-m', MODEL, '--batch', jobs, '--batch-stats', tmp_path / 'no' / 's.tsv',
                        '--cfg-cond', 'audio', '--steps', '2', '-q'], capture_output=True, text=True)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and 's.tsv: cannot create: No such file or directory' in lines[0], r.stderr
    assert not (tmp_path / 'a.npz').exists()
