/* dpt-stream: live use. Raw 16 kHz PCM on stdin (or an audio file with -a) → one JSON object per
 * frame per line on stdout, flushed after every window, so it can sit in a shell pipe behind a
 * TTS engine. Built on the library's stream API (dpt_stream_*). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

enum {
    O_MODEL = 1, O_SHAPE, O_STYLE, O_AUDIO, O_FORMAT, O_REALTIME, O_CHUNK, O_STEPS, O_THREADS, O_PRECISION,
    O_SEED, O_NORM, O_CFG_COND, O_CONTEXT, O_NOISE, O_QUIET, O_VERSION, O_HELP
};

static const cli_option OPTIONS[] = {
    {O_MODEL, "-m|--model", "MODEL.dpt", "model (tools/export.py); required"},
    {O_SHAPE, "-c|--coef|--shape", "SHAPE.npy", "FLAME shape: (100,) or (frames, 100) .npy, or an .npz "
                                                "with 'shape'; required"},
    {O_STYLE, "-s|--style", "STYLE", "style vector .npy (dpt-style) or a motion clip .npz (default: none)"},
    {O_AUDIO, "-a|--audio", "FILE", "read this audio file (any format, resampled to 16 kHz) instead of stdin"},
    {O_FORMAT, "--format", "F", "stdin samples: s16le (default) or f32le, mono 16 kHz"},
    {O_REALTIME, "--realtime", NULL, "with -a: push the file at real-time pace (as a live source would)"},
    {O_CHUNK, "--chunk-frames", "N", "frames per chunk, 1..n_motions: 0 = n_motions, window mode (default; "
                                     "equal to dpt-generate --no-context-audio-feat); fewer = low latency: "
                                     "every N heard frames one window with the unheard tail masked"},
    {O_CONTEXT, "--context-frames", "N", "frames of earlier audio the encoder sees before each chunk (default: "
                                         "n_motions - chunk, 0 in window mode)"},
    {O_STEPS, "--steps", "N", "diffusion steps (0 = the model's full schedule, default)"},
    {O_PRECISION, "--precision", "P", "matrix arithmetic: f32 (default), bf16 (weights and activations "
                                      "rounded to bfloat16, float32 sums: about 2x faster with AVX512-BF16 "
                                      "or BFMMLA), int8 (8-bit weights and activations, integer sums: faster "
                                      "still with AVX512-VNNI, I8MM or SDOT) or f16 (weights rounded to half, float32 sums: "
                                      "half the weight memory on aarch64)"},
    {O_THREADS, "--threads", "N", "threads (0 = all cores, default)"},
    {O_SEED, "--seed", "S", "seed of the built-in random generator (default 0)"},
    {O_NOISE, "--noise-from", "DRAWS.npy", "replay standard-normal draws from a float32 array (flattened, in "
                                           "the order the windows use them) instead of the generator"},
    {O_NORM, "--norm", "MODE", "audio normalisation: fixed:MEAN,STD, running, or clip (-a only: the "
                               "file's own statistics, so that the frames equal dpt-generate "
                               "--no-context-audio-feat); default: clip with -a, running on stdin"},
    {O_CFG_COND, "--cfg-cond", "LIST", "guiding conditions from audio,style (default: the model's)"},
    {O_QUIET, "-q|--quiet", NULL, "no warnings, no latency summary"},
    {O_VERSION, "-V|--version", NULL, "print the library version"},
    {O_HELP, "-h|--help", NULL, "this help"},
    {0, NULL, NULL, NULL},
};

static volatile sig_atomic_t stop_requested;
static void on_sigint(int sig) {
    (void)sig;
    stop_requested = 1;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct run {
    dpt_stream *st;
    int fps;
    double unit;             /* samples per frame */
    size_t pushed;
    double *arrival;         /* per frame: when the audio reaching its end had been pushed */
    long n_arrival, cap_arrival;
    long emitted;
    double lat_sum, lat_max, compute;
    long chunks;             /* pulls that computed a chunk (each returns all of its frames) */
    double chunk_max;
    const char *noise_path;  /* --noise-from: named when the draws run out */
    float exp[50 * 256], pose[6 * 256];
} run;

static int note_arrivals(run *r, double t) {
    long covered = (long)((double)r->pushed / r->unit);
    if (covered > r->cap_arrival) {
        long cap = r->cap_arrival ? r->cap_arrival : 1024;
        while (cap < covered) cap *= 2;
        double *a = realloc(r->arrival, sizeof(double) * (size_t)cap);
        if (!a) return cli_error("out of memory");
        r->arrival = a;
        r->cap_arrival = cap;
    }
    for (long i = r->n_arrival; i < covered; i++) r->arrival[i] = t;
    if (covered > r->n_arrival) r->n_arrival = covered;
    return 0;
}

/* Pull and print every frame that is ready (computing at most one window per pull). */
static int drain(run *r) {
    dpt_error err = {0};
    for (;;) {
        int k = 0;
        double t0 = now();
        dpt_status st = dpt_stream_pull(r->st, r->exp, r->pose, 256, &k, &err);
        if (st == DPT_ERR_NOISE && r->noise_path) return cli_error("%s: %s", r->noise_path, err.message);
        if (st != DPT_OK) return cli_error("%s", err.message);
        double t1 = now();
        r->compute += t1 - t0;
        if (k == 0) return 0;
        r->chunks++;
        if (t1 - t0 > r->chunk_max) r->chunk_max = t1 - t0;
        for (int i = 0; i < k; i++, r->emitted++) {
            double arr = r->emitted < r->n_arrival ? r->arrival[r->emitted] : t1;
            double lat = t1 - arr;
            r->lat_sum += lat;
            if (lat > r->lat_max) r->lat_max = lat;
            printf("{\"frame\": %ld, \"time\": %.4f, \"exp\": [", r->emitted, (double)r->emitted / r->fps);
            for (int c = 0; c < 50; c++) printf(c ? ", %.9g" : "%.9g", (double)r->exp[i * 50 + c]);
            printf("], \"pose\": [");
            for (int c = 0; c < 6; c++) printf(c ? ", %.9g" : "%.9g", (double)r->pose[i * 6 + c]);
            printf("]}\n");
        }
        if (fflush(stdout) != 0 || ferror(stdout)) return cli_error("stdout: %s", strerror(errno));
    }
}

static int push(run *r, const float *x, size_t n) {
    dpt_error err = {0};
    if (dpt_stream_push(r->st, x, n, &err) != DPT_OK) return cli_error("%s", err.message);
    r->pushed += n;
    return note_arrivals(r, now());
}

int main(int argc, char **argv) {
    cli_prog = "dpt-stream";
    const char *model_path = NULL, *shape_path = NULL, *style_path = NULL, *audio_path = NULL;
    const char *norm_arg = NULL, *noise_path = NULL;
    int f32 = 0, realtime = 0;
    long iv;
    dpt_gen_params gp = dpt_gen_params_default();
    dpt_stream_params sp = dpt_stream_params_default();
    dpt_load_params load = dpt_load_params_default();
    cli_parser ps;
    cli_parser_init(&ps, argc, argv, OPTIONS);
    const char *v;
    int id;
    while ((id = cli_next(&ps, &v)) != CLI_END) {
        const char *o = ps.name;
        switch (id) {
        case CLI_BAD: return 2;
        case CLI_POSITIONAL: cli_error("unexpected argument '%s' (see --help)", v); return 2;
        case O_HELP:
            cli_print_help(stdout, "dpt-stream -m MODEL.dpt -c SHAPE.npy [-s STYLE] [-a FILE | < PCM]",
                           "Speech in as it arrives, frames out as they are ready: one JSON line per frame\n"
                           "{\"frame\": i, \"time\": s, \"exp\": [50], \"pose\": [6]} on stdout, flushed after\n"
                           "every window; a latency summary on stderr at the end. EOF or Ctrl-C ends the\n"
                           "utterance and the last frames are written. Exit status 0, 1 on failure, 2 on\n"
                           "bad usage.",
                           OPTIONS);
            return 0;
        case O_VERSION: printf("dpt-stream (libdpt %s)\n", DPT_VERSION_STRING); return 0;
        case O_MODEL: model_path = v; break;
        case O_SHAPE: shape_path = v; break;
        case O_STYLE: style_path = v; break;
        case O_AUDIO: audio_path = v; break;
        case O_FORMAT:
            if (!strcmp(v, "s16le")) f32 = 0;
            else if (!strcmp(v, "f32le")) f32 = 1;
            else return cli_error("--format: '%s' is not s16le or f32le", v), 2;
            break;
        case O_REALTIME: realtime = 1; break;
        case O_CHUNK:
            if (cli_parse_int(o, v, 0, 100000, &iv)) return 2;
            sp.chunk_frames = (int)iv;
            break;
        case O_CONTEXT:
            if (cli_parse_int(o, v, 0, DPT_STREAM_MAX_CONTEXT, &iv)) return 2;
            sp.context_frames = (int)iv;
            break;
        case O_NOISE: noise_path = v; break;
        case O_STEPS:
            if (cli_parse_int(o, v, 0, 1000000, &iv)) return 2;
            gp.steps = (int)iv;
            break;
        case O_PRECISION: if (cli_parse_precision(v, &load.precision)) return 2; break;
        case O_THREADS:
            if (cli_parse_int(o, v, 0, DPT_MAX_THREADS, &iv)) return 2;
            gp.n_threads = (int)iv;
            break;
        case O_SEED: if (cli_parse_u64(o, v, &gp.seed)) return 2; break;
        case O_NORM: norm_arg = v; break;
        case O_CFG_COND: if (cli_parse_cfg_cond(v, &gp.cfg_conds)) return 2; break;
        case O_QUIET: cli_quiet = 1; break;
        default: break;
        }
    }
    if (!model_path || !shape_path) {
        cli_error("%s is required (see --help)", !model_path ? "-m MODEL.dpt" : "-c SHAPE.npy");
        return 2;
    }
    int norm_clip = 0;
    if (!norm_arg) norm_arg = audio_path ? "clip" : "running";
    if (!strcmp(norm_arg, "running")) sp.norm = DPT_NORM_RUNNING;
    else if (!strcmp(norm_arg, "clip")) {
        if (!audio_path) return cli_error("--norm clip needs -a FILE (a stream on stdin has no whole clip)"), 2;
        norm_clip = 1;
    } else if (!strncmp(norm_arg, "fixed:", 6)) {
        char *end = NULL;
        sp.norm = DPT_NORM_FIXED;
        sp.norm_mean = strtof(norm_arg + 6, &end);
        if (!end || *end != ',' || (sp.norm_std = strtof(end + 1, &end), *end != '\0'))
            return cli_error("--norm: '%s' is not fixed:MEAN,STD", norm_arg), 2;
    } else {
        return cli_error("--norm: '%s' is not fixed:MEAN,STD, running or clip", norm_arg), 2;
    }
    if (realtime && !audio_path) return cli_error("--realtime paces a file: give -a FILE"), 2;
    if (cli_check_gen_params(&gp) || cli_check_stream_params(&sp)) return 2;
    cli_install_log();

    int rc = 1;
    dpt_error err = {0};
    cli_err e = {{0}};
    dpt_model *model = NULL;
    dpt_state *state = NULL;
    float shape[100], *style = NULL, *samples = NULL;
    size_t n_samples = 0;
    dpt_array draws = {0};
    cli_replay rp = {0};
    run r;
    memset(&r, 0, sizeof r);
    if (noise_path) {
        if (dpt_npy_read(noise_path, &draws, &err) != DPT_OK) {
            cli_error("%s", err.message);
            goto out;
        }
        cli_replay_init(&rp, &draws);
        r.noise_path = noise_path;
        gp.noise_fn = cli_replay_fn;
        gp.noise_user = &rp;
    }
    if (dpt_model_load(model_path, &load, &model, &err) != DPT_OK) {
        cli_error("%s", err.message);
        goto out;
    }
    dpt_model_info info;
    dpt_model_get_info(model, &info);
    if (cli_load_shape(shape_path, shape, &e)) {
        cli_error("%s", e.msg);
        goto out;
    }
    if (style_path) {
        style = malloc(sizeof(float) * (size_t)info.style_feature_dim + 1);
        if (!style || cli_load_style(model, style_path, 0, style, &e)) {
            cli_error("%s", style ? e.msg : "out of memory");
            goto out;
        }
    }
    if (audio_path) {
        if (cli_load_audio(audio_path, &samples, &n_samples, &e)) {
            cli_error("%s", e.msg);
            goto out;
        }
        if (norm_clip) {
            sp.norm = DPT_NORM_FIXED;
            if (dpt_audio_stats(samples, n_samples, &sp.norm_mean, &sp.norm_std, &err) != DPT_OK) {
                cli_error("%s: %s", audio_path, err.message);
                goto out;
            }
        }
    }
    if (dpt_state_new(model, gp.n_threads, &state, &err) != DPT_OK ||
        dpt_stream_open(state, shape, style, &gp, &sp, &r.st, &err) != DPT_OK) {
        cli_error("%s: %s", model_path, err.message);
        goto out;
    }
    r.fps = info.fps;
    r.unit = 16000.0 / info.fps;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;   /* no SA_RESTART: a blocking read returns on Ctrl-C */
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    const size_t block = 1600; /* 0.1 s per read / push */
    double t_start = now();
    if (audio_path) {
        for (size_t pos = 0; pos < n_samples && !stop_requested; pos += block) {
            size_t n = n_samples - pos < block ? n_samples - pos : block;
            if (realtime) { /* wait until this block would have been spoken */
                double due = t_start + (double)(pos + n) / 16000.0, d = due - now();
                if (d > 0) {
                    struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
                    nanosleep(&ts, NULL);
                }
            }
            if (push(&r, samples + pos, n) || drain(&r)) goto out;
        }
    } else {
        const size_t bps = f32 ? 4 : 2;
        unsigned char raw[1600 * 4 + 4];
        float x[1600];
        size_t have = 0;
        for (;;) {
            ssize_t got = read(STDIN_FILENO, raw + have, block * bps - have);
            if (got < 0 && errno == EINTR) {
                if (stop_requested) break;
                continue;
            }
            if (got < 0) {
                cli_error("stdin: %s", strerror(errno));
                goto out;
            }
            if (got == 0) break;
            have += (size_t)got;
            size_t n = have / bps;
            for (size_t i = 0; i < n; i++) {
                const unsigned char *b = raw + i * bps;
                if (f32) {
                    uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
                    memcpy(&x[i], &u, 4);
                } else {
                    x[i] = (float)(int16_t)(uint16_t)(b[0] | b[1] << 8) / 32768.0f;
                }
            }
            memmove(raw, raw + n * bps, have - n * bps);
            have -= n * bps;
            if (push(&r, x, n) || drain(&r)) goto out;
            if (stop_requested) break;
        }
        if (have) cli_warn("stdin: the last %zu byte(s) are not a whole sample; dropped", have);
    }
    if (dpt_stream_flush(r.st, &err) != DPT_OK) {
        cli_error("%s", err.message);
        goto out;
    }
    if (drain(&r)) goto out;
    if (noise_path && rp.pos != rp.n) cli_warn("%s: %zu of %zu draws left unused", noise_path, rp.n - rp.pos, rp.n);
    if (!cli_quiet) {
        double audio_s = (double)r.pushed / 16000.0;
        fprintf(stderr,
                "dpt-stream: %ld frames from %.2f s of audio; compute %.2f s (real-time factor %.2f; "
                "%ld chunks, per chunk mean %.3f s, max %.3f s); latency from audio to frame: mean "
                "%.2f s, max %.2f s%s\n",
                r.emitted, audio_s, r.compute, audio_s > 0 ? r.compute / audio_s : 0.0, r.chunks,
                r.chunks ? r.compute / (double)r.chunks : 0.0, r.chunk_max,
                r.emitted ? r.lat_sum / (double)r.emitted : 0.0, r.lat_max,
                stop_requested ? " (interrupted)" : "");
    }
    rc = 0;
out:
    dpt_stream_free(r.st);
    dpt_state_free(state);
    free(r.arrival);
    free(style);
    free(samples);
    dpt_array_free(&draws);
    dpt_model_free(model);
    return rc;
}
