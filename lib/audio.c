/* Audio front end (spec §3): what upstream's demo gets from
 *     librosa.load(path, sr=16000, mono=True)           (librosa 0.10.2, python-soxr 0.3.7)
 * followed by its normalisation and window padding.
 *
 * librosa.load, step by step, and how it is reproduced here:
 *   1. soundfile reads info.frames frames as float32 (libsndfile's own int→float scaling). An
 *      error reported by libsndfile during the read fails the load; a short read just gives fewer
 *      frames. Non-finite samples fail (librosa's valid_audio).
 *   2. to_mono: np.mean over the channel axis in float32 — numpy's pairwise float32 sum of the C
 *      channel values of a frame (started from 0), then divided by (float)C. pairwise_sum below
 *      reproduces numpy's summation order, so the mono signal is bit-identical.
 *   3. resample (only when the native rate differs from 16 kHz): soxr.resample(y, sr, 16000,
 *      quality='soxr_hq') → python-soxr's cysoxr_divide_proc: soxr_create(sr, 16000, 1) with
 *      soxr_io_spec(FLOAT32_I, FLOAT32_I), soxr_quality_spec(SOXR_HQ, 0) and the default runtime
 *      spec; input fed in chunks of int(48000·sr/16000) samples into an output buffer of
 *      olen = ceil(n·16000/sr) samples, then one flush call (input NULL) if the buffer is not
 *      full. The same call sequence is made here (streamed: the native-rate signal is never held
 *      in memory as a whole).
 *   4. fix_length to n_out = ceil(n · (16000/sr)) (librosa: ratio = float(target)/orig first,
 *      then times n — not the same double as n·16000/sr): trim, or append zeros.
 *
 * The demo's normalisation (torch on a float32 tensor):
 *   mean = sum/n in float32 (torch sums then divides by (float)n; the sum is accumulated here in
 *   double and rounded once), std = float32(sqrt(Σ(x−mean)²/(n−1))) accumulated in double around
 *   the float32 mean (torch's std_var_all_cpu does exactly that), then (x − mean)/(std + 1e-5f)
 *   elementwise in float32.
 *
 * Built with DPT_NO_SNDFILE (make NO_SNDFILE=1) there is no libsndfile and no libsoxr:
 * dpt_audio_load and any resampling return DPT_ERR_UNSUPPORTED; 16 kHz input (mono, or channels
 * averaged as above) and everything after it work unchanged. */
#include "audio.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifndef DPT_NO_SNDFILE
#include <sndfile.h>
#include <soxr.h>
#endif

#define READ_BLOCK 8192        /* frames per libsndfile read */
/* Accepted native sample rates, Hz. Not lower than 1 kHz: resampling multiplies a file's samples
 * by 16000/rate, and a 1.5 KB WAV declaring 1 Hz became 2.9 M samples in soxr buffers of ~300 MB
 * under ASan (fuzz audio finding, tests/fuzz/regress/audio/rate-1hz.wav). */
#define MIN_RATE 1000.0
#define MAX_RATE 768000.0
#define MAX_CHANNELS 65536     /* python-soxr's channel limit; also bounds the read buffer */
#define MAX_RETRIES 3          /* re-decodes after a short read (see dpt_audio_load) */

/* ---- downmix ---------------------------------------------------------------------------- */

/* numpy's pairwise float32 summation (np.add.reduce along a contiguous axis): below 8 values a
 * plain left-to-right sum from 0; up to 128, eight interleaved partial sums combined as a tree and
 * the remainder added in order; beyond, the two halves split at a multiple of 8. */
static float pairwise_sum(const float *a, size_t n) {
    if (n < 8) {
        float s = 0.0f;
        for (size_t i = 0; i < n; i++) s += a[i];
        return s;
    }
    if (n <= 128) {
        float r[8];
        for (int j = 0; j < 8; j++) r[j] = a[j];
        size_t i;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + (size_t)j];
        float s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) s += a[i];
        return s;
    }
    size_t h = n / 2;
    h -= h % 8;
    return pairwise_sum(a, h) + pairwise_sum(a + h, n - h);
}

/* interleaved (frames, ch) → mono (frames): librosa's to_mono. */
static void downmix(const float *x, size_t frames, int ch, float *mono) {
    if (ch == 1) {
        memcpy(mono, x, frames * sizeof(float));
        return;
    }
    const float div = (float)ch;
    for (size_t i = 0; i < frames; i++) mono[i] = (0.0f + pairwise_sum(x + i * (size_t)ch, (size_t)ch)) / div;
}

/* Index of the first non-finite value of x[0..n), or n. */
static size_t first_nonfinite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return i;
    return n;
}

/* ---- mono sources ------------------------------------------------------------------------- */

/* A source of native-rate mono samples: read() fills up to max samples and returns the count,
 * 0 at the end, or -1 with err filled. */
typedef struct mono_src {
    long (*read)(struct mono_src *s, float *dst, size_t max, dpt_error *err);
} mono_src;

#ifndef DPT_NO_SNDFILE
typedef struct file_src {
    mono_src base;
    const char *path;
    SNDFILE *sf;
    int channels;
    float *buf;              /* READ_BLOCK × channels */
    long long remaining;     /* frames still to deliver (soundfile reads exactly info.frames) */
    long long done;
} file_src;

static long file_read(mono_src *s, float *dst, size_t max, dpt_error *err) {
    file_src *f = (file_src *)s;
    size_t want = max < READ_BLOCK ? max : READ_BLOCK;
    if ((long long)want > f->remaining) want = (size_t)f->remaining;
    if (want == 0) return 0;
    sf_count_t r = sf_readf_float(f->sf, f->buf, (sf_count_t)want);
    int e = sf_error(f->sf);
    if (e != SF_ERR_NO_ERROR) {
        dpt_fail(err, DPT_ERR_AUDIO, "%s: decoding failed after %lld frames: %s", f->path,
                 f->done + (r > 0 ? (long long)r : 0), sf_error_number(e));
        return -1;
    }
    if (r <= 0) return 0;
    size_t nv = (size_t)r * (size_t)f->channels;
    size_t bad = first_nonfinite(f->buf, nv);
    if (bad < nv) {
        dpt_fail(err, DPT_ERR_AUDIO, "%s: sample at frame %lld is not finite (NaN or Inf)",
                 f->path, f->done + (long long)(bad / (size_t)f->channels));
        return -1;
    }
    downmix(f->buf, (size_t)r, f->channels, dst);
    f->remaining -= r;
    f->done += r;
    return (long)r;
}

#endif /* DPT_NO_SNDFILE */

typedef struct mem_src {
    mono_src base;
    const float *x;          /* interleaved (n_frames, channels) */
    size_t n_frames, pos;
    int channels;
} mem_src;

static long mem_read(mono_src *s, float *dst, size_t max, dpt_error *err) {
    mem_src *m = (mem_src *)s;
    size_t want = m->n_frames - m->pos;
    if (want > max) want = max;
    if (want > READ_BLOCK) want = READ_BLOCK;
    if (want == 0) return 0;
    const float *x = m->x + m->pos * (size_t)m->channels;
    size_t nv = want * (size_t)m->channels;
    size_t bad = first_nonfinite(x, nv);
    if (bad < nv) {
        dpt_fail(err, DPT_ERR_INVALID_ARG,
                 "dpt_audio_to_16k: sample at frame %zu is not finite (NaN or Inf)",
                 m->pos + bad / (size_t)m->channels);
        return -1;
    }
    downmix(x, want, m->channels, dst);
    m->pos += want;
    return (long)want;
}

/* ---- mono → 16 kHz ------------------------------------------------------------------------ */

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

#ifndef DPT_NO_SNDFILE
/* n_in mono samples at `rate` (≠ 16 kHz) from src → librosa's 16 kHz signal (see to_16k). */
static dpt_status resample(mono_src *src, size_t n_in, double rate, const char *what, float **out,
                           size_t *n_out, size_t *n_got, dpt_error *err) {
    const double out_rate = (double)DPT_AUDIO_RATE;
    /* librosa.resample: ratio = float(target_sr) / orig_sr; n_samples = ceil(n * ratio) */
    const size_t n_target = (size_t)ceil((double)n_in * (out_rate / rate));
    /* python-soxr cysoxr_divide_proc: olen = ceil(ilen * out_rate / in_rate),
     * chunk_len = int(48000 * in_rate / out_rate) */
    const size_t olen = (size_t)ceil((double)n_in * out_rate / rate);
    size_t chunk_len = (size_t)(48000.0 * rate / out_rate);
    if (chunk_len == 0) chunk_len = 1;

    float *y = calloc(max_sz(max_sz(olen, n_target), 1), sizeof(float));
    float *chunk = malloc(chunk_len * sizeof(float));
    if (!y || !chunk) {
        free(y);
        free(chunk);
        return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory resampling %zu samples", what, n_in);
    }
    soxr_error_t e = NULL;
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    soxr_t s = soxr_create(rate, out_rate, 1, &e, &io, &q, NULL);
    if (!s || e) {
        free(y);
        free(chunk);
        if (s) soxr_delete(s);
        return dpt_fail(err, DPT_ERR_AUDIO, "%s: cannot resample from %g Hz: %s", what, rate,
                        e ? e : "soxr_create failed");
    }

    dpt_status st = DPT_OK;
    size_t out_pos = 0, fill = 0, got = 0, odone = 0;
    while (got < n_in) {
        size_t want = chunk_len - fill;
        if (want > n_in - got) want = n_in - got;
        long r = src->read(src, chunk + fill, want, err);
        if (r < 0) {
            st = err ? err->status : DPT_ERR_AUDIO;
            goto done;
        }
        if (r == 0) break;
        fill += (size_t)r;
        got += (size_t)r;
        if (fill == chunk_len) {
            odone = 0;
            e = soxr_process(s, chunk, fill, NULL, y + out_pos, olen - out_pos, &odone);
            if (e) goto soxr_failed;
            out_pos += odone;
            fill = 0;
        }
    }
    *n_got = got;
    if (got < n_in) goto done; /* short read: caller retries with the true length */
    if (fill) {
        odone = 0;
        e = soxr_process(s, chunk, fill, NULL, y + out_pos, olen - out_pos, &odone);
        if (e) goto soxr_failed;
        out_pos += odone;
    }
    if (out_pos < olen) { /* flush */
        odone = 0;
        e = soxr_process(s, NULL, 0, NULL, y + out_pos, olen - out_pos, &odone);
        if (e) goto soxr_failed;
        out_pos += odone;
    }
    /* fix_length: samples beyond out_pos are already 0; beyond n_target are dropped */
    *out = y;
    *n_out = n_target;
    y = NULL;
    goto done;

soxr_failed:
    st = dpt_fail(err, DPT_ERR_AUDIO, "%s: resampling failed: %s", what, e);
done:
    soxr_delete(s);
    free(chunk);
    free(y);
    return st;
}
#else
static dpt_status resample(mono_src *src, size_t n_in, double rate, const char *what, float **out,
                           size_t *n_out, size_t *n_got, dpt_error *err) {
    (void)src;
    (void)n_in;
    (void)out;
    (void)n_out;
    (void)n_got;
    return dpt_fail(err, DPT_ERR_UNSUPPORTED,
                    "%s: resampling %g Hz to 16 kHz needs libsoxr; built without it (NO_SNDFILE=1): "
                    "pass 16 kHz samples", what, rate);
}
#endif /* DPT_NO_SNDFILE */

/* Pull n_in native-rate mono samples from src and return librosa's 16 kHz signal in *out
 * (*n_out samples, malloc'ed). *n_got is the number of samples src delivered; when it is below
 * n_in (a short read) and the signal had to be resampled, *out is NULL and the caller must retry
 * with n_in = *n_got, because python-soxr sizes its buffers from the true length. */
static dpt_status to_16k(mono_src *src, size_t n_in, double rate, const char *what, float **out,
                         size_t *n_out, size_t *n_got, dpt_error *err) {
    *out = NULL;
    *n_out = 0;
    *n_got = 0;
    if (rate == (double)DPT_AUDIO_RATE) {
        /* librosa skips resampling entirely */
        float *y = malloc(max_sz(n_in, 1) * sizeof(float));
        if (!y) return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory (%zu samples)", what, n_in);
        size_t got = 0;
        while (got < n_in) {
            long r = src->read(src, y + got, n_in - got, err);
            if (r < 0) {
                free(y);
                return err ? err->status : DPT_ERR_AUDIO;
            }
            if (r == 0) break;
            got += (size_t)r;
        }
        if (got < n_in) { /* the header announced more than the file held: give the rest back */
            float *shrunk = realloc(y, max_sz(got, 1) * sizeof(float));
            if (shrunk) y = shrunk;
        }
        *out = y;
        *n_out = got;
        *n_got = got;
        return DPT_OK;
    }
    return resample(src, n_in, rate, what, out, n_out, n_got, err);
}

/* ---- public: files and buffers ----------------------------------------------------------- */

static dpt_status check_duration(double frames, double rate, const char *what, dpt_error *err) {
    double seconds = frames / rate;
    if (seconds > DPT_MAX_AUDIO_SECONDS)
        return dpt_fail(err, DPT_ERR_UNSUPPORTED,
                        "%s: %.1f s of audio is over the limit of %.0f s (DPT_MAX_AUDIO_SECONDS)",
                        what, seconds, DPT_MAX_AUDIO_SECONDS);
    return DPT_OK;
}

#ifndef DPT_NO_SNDFILE
static dpt_status open_sf(const char *path, SNDFILE **sf, SF_INFO *info, dpt_error *err) {
    memset(info, 0, sizeof *info);
    *sf = sf_open(path, SFM_READ, info);
    if (!*sf) {
        /* The file exists and is readable (checked before); for data it cannot identify,
         * libsndfile sometimes reports "does not exist or is not a regular file". */
        const char *why = sf_strerror(NULL);
        if (sf_error(NULL) == SF_ERR_UNRECOGNISED_FORMAT || strstr(why, "regular file"))
            why = "format not recognised";
        return dpt_fail(err, DPT_ERR_AUDIO, "%s: not a readable audio file (libsndfile: %s)", path,
                        why);
    }
    return DPT_OK;
}

/* Frames of a stream whose length libsndfile does not know (info.frames == SF_COUNT_MAX, e.g.
 * an Ogg file cut short): decode it once, counting, within the length limit. */
static dpt_status count_frames(file_src *src, double rate, long long *count, dpt_error *err) {
    float *scratch = malloc(READ_BLOCK * sizeof(float));
    if (!scratch) return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", src->path);
    const double limit = DPT_MAX_AUDIO_SECONDS * rate;
    dpt_status st = DPT_OK;
    src->remaining = LLONG_MAX;
    src->done = 0;
    for (;;) {
        long r = file_read(&src->base, scratch, READ_BLOCK, err);
        if (r < 0) {
            st = err ? err->status : DPT_ERR_AUDIO;
            break;
        }
        if (r == 0) break;
        if ((double)src->done > limit) {
            st = check_duration((double)src->done, rate, src->path, err);
            break;
        }
    }
    free(scratch);
    *count = src->done;
    return st;
}

dpt_status dpt_audio_load(const char *path, float **samples, size_t *n_samples, dpt_error *err) {
    if (samples) *samples = NULL;
    if (n_samples) *n_samples = 0;
    if (!path || !samples || !n_samples)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_audio_load: NULL argument");

    struct stat stt;
    if (stat(path, &stt) != 0)
        return dpt_fail(err, DPT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(stt.st_mode))
        return dpt_fail(err, DPT_ERR_IO, "%s: is a directory, not an audio file", path);
    FILE *probe = fopen(path, "rb");
    if (!probe) return dpt_fail(err, DPT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    fclose(probe);
    if (stt.st_size == 0)
        return dpt_fail(err, DPT_ERR_AUDIO, "%s: empty file (zero-length audio)", path);

    SF_INFO info;
    SNDFILE *sf = NULL;
    dpt_status st = open_sf(path, &sf, &info, err);
    if (st != DPT_OK) return st;
    if (info.channels < 1 || info.channels > MAX_CHANNELS) {
        sf_close(sf);
        return dpt_fail(err, DPT_ERR_UNSUPPORTED, "%s: unsupported channel count %d", path,
                        info.channels);
    }
    if (info.samplerate < MIN_RATE || info.samplerate > MAX_RATE) {
        sf_close(sf);
        return dpt_fail(err, DPT_ERR_UNSUPPORTED, "%s: unsupported sample rate %d Hz (%g ... %g Hz)", path,
                        info.samplerate, MIN_RATE, MAX_RATE);
    }
    file_src src = {{file_read}, path, sf, info.channels, NULL, info.frames, 0};
    src.buf = malloc((size_t)READ_BLOCK * (size_t)info.channels * sizeof(float));
    if (!src.buf) {
        sf_close(sf);
        return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path);
    }
    long long frames = info.frames;
    if (frames == SF_COUNT_MAX) { /* length unknown to libsndfile: count, then decode again */
        st = count_frames(&src, (double)info.samplerate, &frames, err);
        sf_close(src.sf);
        src.sf = NULL;
        if (st == DPT_OK && frames > 0) st = open_sf(path, &src.sf, &info, err);
        if (st != DPT_OK) {
            if (src.sf) sf_close(src.sf);
            free(src.buf);
            return st;
        }
        src.remaining = frames;
        src.done = 0;
    }
    if (frames <= 0) {
        if (src.sf) sf_close(src.sf);
        free(src.buf);
        return dpt_fail(err, DPT_ERR_AUDIO, "%s: no audio samples (zero-length audio)", path);
    }
    st = check_duration((double)frames, (double)info.samplerate, path, err);
    if (st != DPT_OK) {
        sf_close(src.sf);
        free(src.buf);
        return st;
    }
    size_t expected = (size_t)frames;
    float *y = NULL;
    size_t n = 0, got = 0;
    for (int attempt = 0;; attempt++) {
        st = to_16k(&src.base, expected, (double)info.samplerate, path, &y, &n, &got, err);
        if (st != DPT_OK || y) break;
        /* A short read (the file holds fewer frames than its header says): soundfile returns
         * what it got, and python-soxr sizes its buffers from that, so decode again knowing
         * the true length. */
        if (got == 0 || attempt == MAX_RETRIES) {
            st = dpt_fail(err, DPT_ERR_AUDIO, "%s: no audio samples could be decoded", path);
            break;
        }
        dpt_log(1, "%s: header announces %zu frames but only %zu could be decoded", path,
                expected, got);
        expected = got;
        sf_close(src.sf);
        src.sf = NULL;
        st = open_sf(path, &src.sf, &info, err);
        if (st != DPT_OK) break;
        src.remaining = (long long)expected;
        src.done = 0;
    }
    if (src.sf) sf_close(src.sf);
    free(src.buf);
    if (st != DPT_OK) return st;
    if (n == 0) {
        free(y);
        return dpt_fail(err, DPT_ERR_AUDIO, "%s: no audio samples could be decoded", path);
    }
    *samples = y;
    *n_samples = n;
    return DPT_OK;
}

#else
dpt_status dpt_audio_load(const char *path, float **samples, size_t *n_samples, dpt_error *err) {
    if (samples) *samples = NULL;
    if (n_samples) *n_samples = 0;
    if (!path || !samples || !n_samples)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_audio_load: NULL argument");
    return dpt_fail(err, DPT_ERR_UNSUPPORTED,
                    "%s: built without libsndfile (NO_SNDFILE=1); pass 16 kHz mono samples", path);
}
#endif /* DPT_NO_SNDFILE */

dpt_status dpt_audio_to_16k(const float *interleaved, size_t n_frames, int channels,
                            double sample_rate, float **samples, size_t *n_samples,
                            dpt_error *err) {
    const char *what = "dpt_audio_to_16k";
    if (samples) *samples = NULL;
    if (n_samples) *n_samples = 0;
    if (!samples || !n_samples || (!interleaved && n_frames))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "%s: NULL argument", what);
    if (channels < 1 || channels > MAX_CHANNELS)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "%s: channel count %d out of range [1, %d]",
                        what, channels, MAX_CHANNELS);
    if (!(sample_rate >= MIN_RATE && sample_rate <= MAX_RATE))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "%s: sample rate %g Hz out of range [%g, %g]",
                        what, sample_rate, MIN_RATE, MAX_RATE);
    if (n_frames == 0)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "%s: zero-length audio (no samples)", what);
    dpt_status st = check_duration((double)n_frames, sample_rate, what, err);
    if (st != DPT_OK) return st;
    size_t nv;
    if (!dpt_mul_ok(n_frames, (size_t)channels, &nv))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "%s: size overflow", what);

    mem_src src = {{mem_read}, interleaved, n_frames, 0, channels};
    size_t got = 0;
    return to_16k(&src.base, n_frames, sample_rate, what, samples, n_samples, &got, err);
}

/* ---- normalisation and window padding ---------------------------------------------------- */

/* The demo's statistics: torch.mean = float32 sum (accumulated in double, rounded once) divided
 * by (float)n in float32; torch.std (unbiased) = double accumulation around the float32 mean,
 * rounded to float32. n >= 2. */
static void clip_stats(const float *x, size_t n, float *mean_out, float *std_out) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += x[i];
    const float mean = (float)sum / (float)n;
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)x[i] - (double)mean;
        ss += d * d;
    }
    *mean_out = mean;
    *std_out = (float)sqrt(ss / (double)(n - 1));
}

dpt_status dpt_audio_stats(const float *x, size_t n, float *mean, float *std, dpt_error *err) {
    if (!x || !mean || !std) return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_audio_stats: NULL argument");
    if (n < 2)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "audio: %zu samples; the std needs at least 2", n);
    size_t bad = first_nonfinite(x, n);
    if (bad < n)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "audio: sample %zu is not finite (NaN or Inf)", bad);
    clip_stats(x, n, mean, std);
    return DPT_OK;
}


/* Python's round() of a double: nearest, ties to even. */
static double round_half_even(double x) {
    double f = floor(x), d = x - f;
    if (d > 0.5) return f + 1.0;
    if (d < 0.5) return f;
    return fmod(f, 2.0) == 0.0 ? f : f + 1.0;
}

dpt_status dpt_clip_layout_compute(size_t n, int fps, int n_motions, dpt_clip_layout *lay,
                                   dpt_error *err) {
    if (!lay) return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_clip_layout_compute: NULL argument");
    memset(lay, 0, sizeof *lay);
    if (fps <= 0 || n_motions <= 0)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "audio layout: fps %d and n_motions %d must be > 0",
                        fps, n_motions);
    /* demo.py: audio_unit = 16000. / fps; n_audio_samples = round(audio_unit * n_motions) */
    const double unit = (double)DPT_AUDIO_RATE / (double)fps;
    const double win = round_half_even(unit * (double)n_motions);
    /* clip_len = int(len(audio) / 16000 * fps): division first, truncation */
    const double clip = trunc((double)n / (double)DPT_AUDIO_RATE * (double)fps);
    if (!(clip < (double)(INT_MAX / 2)) || !(win < 1e15))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "audio layout: clip of %zu samples is too long", n);
    const int clip_len = (int)clip;
    const int n_sub = clip_len <= n_motions ? 1 : (int)ceil((double)clip_len / (double)n_motions);
    const long long l_tot = (long long)n_motions * n_sub;
    const long long pad = (long long)win * n_sub - (long long)n;
    if (l_tot > INT_MAX || pad > LONG_MAX || pad < LONG_MIN)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "audio layout: clip of %zu samples is too long", n);
    /* n_padding_frames = math.ceil(n_pad / audio_unit) */
    const double pad_frames = ceil((double)pad / unit);
    lay->n_input = n;
    lay->clip_len = clip_len;
    lay->n_windows = n_sub;
    lay->n_pad = (long)pad;
    lay->n_pad_frames = (int)pad_frames;
    lay->n_frames_total = (int)l_tot;
    lay->n_out_frames = (int)l_tot - (lay->n_pad_frames > 0 ? lay->n_pad_frames : 0);
    return DPT_OK;
}

dpt_status dpt_audio_prepare(const float *x, size_t n, int fps, int n_motions, int pad_replicate,
                             float **padded, size_t *n_padded, dpt_clip_layout *layout,
                             dpt_error *err) {
    if (padded) *padded = NULL;
    if (n_padded) *n_padded = 0;
    if (layout) memset(layout, 0, sizeof *layout);
    if (!padded || !n_padded || !layout || (!x && n))
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_audio_prepare: NULL argument");
    if (n == 0) return dpt_fail(err, DPT_ERR_INVALID_ARG, "audio: zero-length clip (no samples)");
    dpt_status st = check_duration((double)n, (double)DPT_AUDIO_RATE, "audio", err);
    if (st != DPT_OK) return st;
    dpt_clip_layout lay;
    st = dpt_clip_layout_compute(n, fps, n_motions, &lay, err);
    if (st != DPT_OK) return st;
    if (lay.n_out_frames < 1 || n < 2)
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "audio: clip too short: %zu samples (%.4f s) give no output frame at %d fps "
                        "(one frame is %.1f samples)",
                        n, (double)n / DPT_AUDIO_RATE, fps, (double)DPT_AUDIO_RATE / fps);
    size_t bad = first_nonfinite(x, n);
    if (bad < n)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "audio: sample %zu is not finite (NaN or Inf)",
                        bad);

    float mean, std;
    clip_stats(x, n, &mean, &std);
    const float denom = std + 1e-5f;

    const size_t n_pad = lay.n_pad > 0 ? (size_t)lay.n_pad : 0;
    float *y = malloc((n + n_pad) * sizeof(float));
    if (!y) return dpt_fail(err, DPT_ERR_NOMEM, "audio: out of memory (%zu samples)", n + n_pad);
    for (size_t i = 0; i < n; i++) y[i] = (x[i] - mean) / denom;
    /* F.pad(audio, (0, n_pad), value=0 or audio[-1]) — the last *normalised* sample */
    const float v = pad_replicate ? y[n - 1] : 0.0f;
    for (size_t i = 0; i < n_pad; i++) y[n + i] = v;

    *padded = y;
    *n_padded = n + n_pad;
    *layout = lay;
    return DPT_OK;
}
