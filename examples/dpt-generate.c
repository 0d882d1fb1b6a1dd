/* dpt-generate: speech → FLAME coefficients (exp, pose, shape) with a DiffPoseTalk model — what
 * upstream's demo.py does with --save_coef, plus other output formats, a plot, batches; with
 * --flame, what demo.py does by default: the rendered head as an mp4 with the speech. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

enum {
    O_MODEL = 1, O_AUDIO, O_SHAPE, O_STYLE, O_STYLE_START, O_OUT, O_FORMAT, O_PLOT, O_FEATS, O_FEATS_IN,
    O_BATCH, O_BATCH_STATS, O_FLAME, O_FRAMES, O_SIZE, O_SUPERSAMPLE, O_BLACK, O_TEX,
    O_N, O_SA, O_SS, O_CFG_MODE, O_CFG_COND, O_DTR, O_DTMIN, O_DTMAX, O_NO_HEAD, O_SEED, O_NOISE,
    O_NO_CTX,
    O_STEPS, O_ETA, O_FLEX, O_THREADS, O_PRECISION, O_QUIET, O_TIMINGS, O_SAVE_COEF, O_VERSION, O_HELP, O_SECTION
};

static const cli_option OPTIONS[] = {
    {O_SECTION, NULL, NULL, "Inputs and outputs:"},
    {O_MODEL, "-m|--model", "MODEL.dpt", "model file (tools/export.py); required"},
    {O_AUDIO, "-a|--audio", "AUDIO", "speech: WAV, FLAC, OGG, MP3, ... (mono-mixed, resampled to 16 kHz), "
                                       "or a .npy of 16 kHz samples (n,) or (n, channels) float32 (the only "
                                       "input of a NO_SNDFILE=1 build)"},
    {O_SHAPE, "-c|--coef|--shape", "SHAPE", "FLAME shape: .npy (100,) or (frames, 100) (first frame used), "
                                            "or .npz with key 'shape'"},
    {O_STYLE, "-s|--style", "STYLE", "style: .npy (d_style,) from dpt-style, or a motion .npz with exp/pose "
                                     "(style extracted on the fly); default: none (null style)"},
    {O_STYLE_START, "--style-start", "N", "first frame of the motion clip given as -s .npz (default 0)"},
    {O_OUT, "-o|--output", "OUT", "output name; its extension is replaced as upstream does (OUT.npz), and "
                                  "with -n K > 1 the files are OUT_000.npz, OUT_001.npz, ..."},
    {O_FORMAT, "--format", "FMT", "npz | npy | csv | json (default: from OUT's extension, else npz); "
                                  "npz: exp (F,50), pose (F,6), shape (F,100) float32, compressed as "
                                  "np.savez_compressed; npy: OUT_exp.npy, OUT_pose.npy, OUT_shape.npy; "
                                  "csv: frame,time,exp_0..,pose_0..,shape_0..; json: {fps, n_frames, exp, "
                                  "pose, shape}"},
    {O_PLOT, "--plot", "OUT.svg", "also draw waveform, jaw opening, expression energy and head rotation "
                                  "over time into an SVG (default: no plot)"},
    {O_FEATS, "--save-audio-features", "FEATS.npy", "write the whole padded clip's audio features "
                                                    "(frames, feature_dim) float32; without -o, only that"},
    {O_FEATS_IN, "--audio-features", "FEATS.npy", "use audio features saved by --save-audio-features for "
                                                  "this audio instead of running the encoder (-a still "
                                                  "gives the clip length)"},
    {O_BATCH, "--batch", "JOBS.tsv", "run many jobs with one model load: tab-separated lines 'audio shape "
                                     "style output [plot.svg]' (style '-' = none; '#' comments); failures "
                                     "are reported and skipped; exit 1 if any failed"},
    {O_BATCH_STATS, "--batch-stats", "FILE.tsv", "with --batch: after each job a line 'job line ok rss_kib "
                                                 "hwm_kib fds' (resident and peak memory, open descriptors; "
                                                 "written as the batch runs, for soak tests)"},
    {O_SECTION, NULL, NULL, "Video (upstream demo.py's default output):"},
    {O_FLAME, "--flame", "FLAME.dpt", "render the FLAME head (tools/export.py --flame) to OUT.mp4 (OUT_000.mp4, ... "
                                      "with -n > 1): H.264 crf 17 yuv420p with the speech as AAC, through the system "
                                      "ffmpeg; the coefficients too with --save-coef or a coefficient extension of OUT "
                                      "(.npz .npy .csv .json) or --format"},
    {O_FRAMES, "--frames", "DIR", "with --flame: PNG frames DIR/000000.png, ... (DIR_000/, ... with -n > 1) instead "
                                  "of the video"},
    {O_SIZE, "--size", "WxH", "frame size (default 640x640)"},
    {O_SUPERSAMPLE, "--supersample", "K", "K x K samples per pixel, box-filtered (default 1 = none)"},
    {O_BLACK, "--black-bg", NULL, "black background (default white)"},
    {O_TEX, "--tex", "IMAGE", "texture (PNG or JPEG) on the FLAME file's uv coordinates"},
    {O_SECTION, NULL, NULL, "Sampling (defaults as upstream's demo.py):"},
    {O_N, "-n|--n-repetitions", "K", "independent samples, generated batched (default 1)"},
    {O_SA, "-sa|--scale-audio", "X", "classifier-free guidance scale of the audio (default 1.15)"},
    {O_SS, "-ss|--scale-style", "X", "classifier-free guidance scale of the style (default 3.0)"},
    {O_CFG_MODE, "--cfg-mode", "MODE", "incremental | independent (default: the model's own)"},
    {O_CFG_COND, "--cfg-cond", "LIST", "guiding conditions, comma-separated from audio,style ('' = none; "
                                       "default: the model's guiding_conditions)"},
    {O_DTR, "-dtr|--dynamic-threshold-ratio", "R", "dynamic thresholding quantile in (0, 1] (default 0 = off)"},
    {O_DTMIN, "--dt-min|-dtmin|--dynamic-threshold-min", "X", "lower clamp of the threshold (default 1.0)"},
    {O_DTMAX, "--dt-max|-dtmax|--dynamic-threshold-max", "X", "upper clamp of the threshold (default 4.0)"},
    {O_NO_HEAD, "--no-head", NULL, "zero the global head rotation in the output and the rendered head "
                                   "(default: keep it)"},
    {O_NO_CTX, "--no-context-audio-feat", NULL, "encode each window's audio alone, as upstream's demo "
                                               "--no_context_audio_feat (default: the whole clip at once; "
                                               "--save-audio-features then saves the windows' features)"},
    {O_SEED, "--seed", "S", "seed of the built-in random generator (default 0)"},
    {O_NOISE, "--noise-from", "DRAWS.npy", "replay standard-normal draws from a float32 array (flattened, "
                                           "in upstream's order) instead of the generator"},
    {O_STEPS, "--steps", "N", "diffusion steps: 0 = the model's full schedule (default 0); fewer = strided "
                              "DDIM-style sampling"},
    {O_ETA, "--eta", "X", "DDIM eta in [0, 1] for --steps below the model's count (default 0 = deterministic)"},
    {O_FLEX, "--flexibility", "F", "sigma mix between flexible and inflexible variance (default 0, as the "
                                   "demo)"},
    {O_SECTION, NULL, NULL, "Running:"},
    {O_PRECISION, "--precision", "P", "matrix arithmetic: f32 (default), bf16 (weights and activations "
                                      "rounded to bfloat16, float32 sums: about 2x faster with AVX512-BF16 "
                                      "or BFMMLA), int8 (8-bit weights and activations, integer sums: faster "
                                      "still with AVX512-VNNI, I8MM or SDOT) or f16 (weights rounded to half, float32 sums: "
                                      "half the weight memory on aarch64)"},
    {O_THREADS, "--threads", "N", "threads (default 0 = all cores)"},
    {O_QUIET, "-q|--quiet", NULL, "no progress bar and no warnings (the bar shows only on a terminal)"},
    {O_TIMINGS, "--timings", NULL, "print where the time went on stderr: model load, audio decoding, "
                                   "audio encoder, sampling (per forward), outputs"},
    {O_SAVE_COEF, "--save-coef", NULL, "with --flame: write the coefficients (OUT.npz) beside the video; without "
                                       "--flame coefficients are always written"},
    {O_VERSION, "-V|--version", NULL, "print the library version"},
    {O_HELP, "-h|--help", NULL, "this help"},
    {0, NULL, NULL, NULL},
};

#define USAGE                                                                                         \
    "dpt-generate -m MODEL.dpt -a AUDIO -c SHAPE [-s STYLE] -o OUT.npz [options]\n"                  \
    "       dpt-generate -m MODEL.dpt -a AUDIO -c SHAPE [-s STYLE] --flame FLAME.dpt -o OUT.mp4 [options]\n" \
    "       dpt-generate -m MODEL.dpt --batch JOBS.tsv [options]"
#define INTRO                                                                                         \
    "Speech → FLAME coefficients per frame (expression 50, pose 6, shape 100) with a DiffPoseTalk\n" \
    "model, as upstream's demo.py --save_coef; with --flame, the rendered head as an mp4 with the\n" \
    "speech, as demo.py by default. Errors are one line on stderr; exit status 0 on success, 1 on\n"  \
    "failure, 2 on bad usage."

typedef struct settings {
    dpt_gen_params p;
    const char *model_path, *noise_path, *feats_path, *feats_in_path;
    dpt_load_params load;
    int style_start;
    int format;          /* -1: from the output name */
    int quiet;
    int timings;         /* --timings */
    double t_load;       /* seconds dpt_model_load took */
    const char *flame_path, *frames_dir;
    int save_coef;
    cli_render_opts ro;
    dpt_flame *flame;
    dpt_model *model;
    dpt_model_info info;
    dpt_array draws;
    cli_progress pg;
} settings;

/* The file a generation failure is about: options and inputs checked against the model name the
 * model; a noise failure names the draws; anything else the audio. */
static const char *culprit(const settings *s, const cli_job *job, dpt_status st) {
    if (st == DPT_ERR_NOISE && s->noise_path) return s->noise_path;
    if (st == DPT_ERR_INVALID_ARG || st == DPT_ERR_UNSUPPORTED || st == DPT_ERR_FORMAT) return s->model_path;
    return job->audio;
}

static const char *base_name(const char *path) {
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

/* Repetition r of a result rendered with --flame: OUT.mp4 (OUT_NNN.mp4 with -n > 1, as upstream's
 * demo.py names them), or PNG frames into --frames DIR (DIR_NNN). */
static int render_rep(settings *s, const cli_job *job, const dpt_result *res, int r, const float *samples,
                      size_t n_samples, const char *label, cli_err *e) {
    const int N = res->n_repetitions, F = res->n_frames;
    char *video = NULL, *frames = NULL;
    if (s->frames_dir) {
        size_t n = strlen(s->frames_dir);
        while (n > 1 && s->frames_dir[n - 1] == '/') n--;
        frames = malloc(n + 16);
        if (frames) snprintf(frames, n + 16, N > 1 ? "%.*s_%03d" : "%.*s", (int)n, s->frames_dir, r);
    } else {
        video = cli_output_name(job->output, r, N, NULL, ".mp4");
    }
    if (!video && !frames) return cli_fail(e, "out of memory");
    cli_flame_clip clip;
    memset(&clip, 0, sizeof clip);
    clip.flame = s->flame;
    clip.n_frames = F;
    clip.shape = res->shape;         /* one shape for every frame: computed once */
    clip.shape_per_frame = 0;
    clip.exp = res->exp + (size_t)r * F * 50;
    clip.pose = res->pose + (size_t)r * F * 6;
    clip.params = dpt_flame_params_default();
    clip.params.no_head = s->p.zero_head_pose;
    clip.params.n_threads = s->p.n_threads;
    cli_mesh_outputs o = {0};
    o.video = video;
    o.frames_dir = frames;
    o.fps = s->info.fps;
    /* the speech: the file itself (ffmpeg re-encodes it, as upstream), or a .npy's samples */
    if (cli_is_npy(job->audio)) {
        o.samples = samples;
        o.n_samples = n_samples;
    } else {
        o.audio_path = job->audio;
    }
    char lab[200];
    if (N > 1) snprintf(lab, sizeof lab, "%s%srepetition %d/%d", label, *label ? " " : "", r + 1, N);
    else snprintf(lab, sizeof lab, "%s", label);
    cli_progress_begin(&s->pg, lab, "rendering");
    int rc = cli_flame_write(&clip, &s->ro, &o, &s->pg, e);
    free(video);
    free(frames);
    return rc;
}

/* One job: inputs → generation → output files (+ plot). */
static int run_job(void *user, const cli_job *job, int index, int n_jobs, cli_err *e) {
    settings *s = user;
    const dpt_model_info *info = &s->info;
    float shape[100], *style = NULL, *samples = NULL, *feats = NULL;
    dpt_array feats_in = {0};
    size_t n_samples = 0;
    dpt_result *res = NULL;
    dpt_error err = {0};
    int rc = 1;

    const int generate = job->output || s->frames_dir;   /* else only --save-audio-features */
    if (job->output && (!*job->output || cli_ends_with(job->output, "/"))) {
        cli_fail(e, "%s: the output needs a file name, not a directory", job->output);
        goto out;
    }
    if (generate && cli_load_shape(job->shape, shape, e)) goto out;
    if (generate && job->style) {
        style = malloc(sizeof(float) * (size_t)(info->d_style > 0 ? info->d_style : 1));
        if (!style) {
            cli_fail(e, "out of memory");
            goto out;
        }
        if (cli_load_style(s->model, job->style, s->style_start, style, e)) goto out;
    }
    char label[160] = "";
    if (n_jobs > 1) snprintf(label, sizeof label, "job %d/%d %s", index + 1, n_jobs, base_name(job->audio));
    cli_progress_begin(&s->pg, label, "loading audio");
    double t_audio = cli_now(), t_encode = 0.0, t_sample = 0.0, t_out = 0.0;
    if (cli_load_audio(job->audio, &samples, &n_samples, e)) goto out;
    t_audio = cli_now() - t_audio;
    int n_frames = 0;
    /* --timings: the encoder run apart so that its time is known (same features, same bits) */
    const int encode_apart = s->feats_path || (s->timings && !s->feats_in_path && generate);
    if (s->feats_in_path) { /* a cache from --save-audio-features */
        if (cli_load_features(s->feats_in_path, info->feature_dim, &feats_in, e)) goto out;
        n_frames = (int)feats_in.shape[0];
    } else if (encode_apart) {
        cli_progress_begin(&s->pg, label, "encoding audio");
        t_encode = cli_now();
        if ((s->p.no_context_audio_feat
                 ? dpt_model_encode_audio_windows(s->model, samples, n_samples, s->p.n_threads, &feats, &n_frames, &err)
                 : dpt_model_encode_audio(s->model, samples, n_samples, s->p.n_threads, &feats, &n_frames, &err)) != DPT_OK) {
            cli_fail(e, "%s: %s", job->audio, err.message);
            goto out;
        }
        t_encode = cli_now() - t_encode;
    }
    if (s->feats_path) {
        int64_t shp[2] = {n_frames, info->feature_dim};
        if (cli_write_npy(s->feats_path, feats ? feats : feats_in.data, 2, shp, e)) goto out;
        if (!generate) {
            rc = 0;
            goto out;
        }
    }

    dpt_gen_params p = s->p;
    cli_replay rp = {0};
    if (s->noise_path) {
        cli_replay_init(&rp, &s->draws);
        p.noise_fn = cli_replay_fn;
        p.noise_user = &rp;
    }
    p.progress_fn = cli_progress_fn;
    p.progress_user = &s->pg;
    dpt_status st;
    const float *have = feats ? feats : feats_in.data; /* encoded once, never twice */
    t_sample = cli_now();
    if (have) {
        st = dpt_model_generate_from_features(s->model, have, n_frames, n_samples, shape, style, &p, &res, &err);
        if (st == DPT_ERR_INVALID_ARG && s->feats_in_path && strstr(err.message, "frames")) {
            cli_fail(e, "%s: %d frames of audio features do not fit %s (%s)", s->feats_in_path, n_frames,
                     job->audio, err.message);
            goto out;
        }
    } else {
        cli_progress_begin(&s->pg, label, "encoding audio");
        st = dpt_model_generate(s->model, samples, n_samples, shape, style, &p, &res, &err);
    }
    t_sample = cli_now() - t_sample;
    cli_progress_end(&s->pg);
    if (st != DPT_OK) {
        if (st == DPT_ERR_CANCELLED) cli_fail(e, "%s: interrupted", job->audio);
        else cli_fail(e, "%s: %s", culprit(s, job, st), err.message);
        goto out;
    }
    if (s->noise_path && rp.pos != rp.n)
        cli_warn("%s: %zu of %zu draws left unused", s->noise_path, rp.n - rp.pos, rp.n);

    t_out = cli_now();
    int fmt = s->format >= 0 ? s->format : job->output ? cli_format_from_path(job->output) : -1;
    /* coefficients: always without --flame; with it on request (--save-coef, --format, OUT.npz) */
    int coefs = job->output && (!s->flame || s->save_coef || fmt >= 0);
    if (fmt < 0) fmt = CLI_NPZ;
    for (int r = 0; r < res->n_repetitions && coefs; r++)
        if (cli_write_result(res, r, job->output, (cli_format)fmt, info->fps, e)) goto out;
    for (int r = 0; r < res->n_repetitions && s->flame; r++)
        if (render_rep(s, job, res, r, samples, n_samples, label, e)) goto out;
    if (job->plot) {
        char title[512];
        snprintf(title, sizeof title, "%s — %s", base_name(job->audio), base_name(s->model_path));
        if (cli_write_plot(job->plot, title, samples, n_samples, res, info->fps, e)) goto out;
    }
    t_out = cli_now() - t_out;
    if (s->timings) {
        /* forwards: windows × steps (every window runs the whole schedule, batched over entries) */
        const int steps = s->p.steps ? s->p.steps : info->n_diff_steps;
        const long forwards = (long)(n_frames / info->n_motions) * steps;
        fprintf(stderr,
                "timings: model load %.3f s, audio decoding %.3f s, audio encoder %.3f s, sampling %.3f s "
                "(%ld forwards, %.1f ms each), outputs %.3f s\n",
                index == 0 ? s->t_load : 0.0, t_audio, t_encode, t_sample, forwards,
                forwards ? 1e3 * t_sample / (double)forwards : 0.0, t_out);
    }
    rc = 0;
out:
    cli_progress_end(&s->pg);
    dpt_result_free(res);
    dpt_free(feats);
    dpt_array_free(&feats_in);
    dpt_free(samples);
    free(style);
    return rc;
}

int main(int argc, char **argv) {
    cli_prog = "dpt-generate";
    settings s;
    memset(&s, 0, sizeof s);
    s.p = dpt_gen_params_default();
    s.load = dpt_load_params_default();
    s.format = -1;
    cli_render_opts_default(&s.ro);
    cli_job one = {0};
    const char *batch = NULL, *batch_stats = NULL;

    cli_parser ps;
    cli_parser_init(&ps, argc, argv, OPTIONS);
    const char *v;
    int id;
    long iv;
    while ((id = cli_next(&ps, &v)) != CLI_END) {
        const char *o = ps.name;
        switch (id) {
        case CLI_BAD: return 2;
        case CLI_POSITIONAL: cli_error("unexpected argument '%s' (see --help)", v); return 2;
        case O_HELP: cli_print_help(stdout, USAGE, INTRO, OPTIONS); return 0;
        case O_VERSION: printf("dpt-generate (libdpt %s)\n", DPT_VERSION_STRING); return 0;
        case O_MODEL: s.model_path = v; break;
        case O_AUDIO: one.audio = v; break;
        case O_SHAPE: one.shape = v; break;
        case O_STYLE: one.style = v; break;
        case O_OUT: one.output = v; break;
        case O_PLOT: one.plot = v; break;
        case O_FEATS: s.feats_path = v; break;
        case O_FEATS_IN: s.feats_in_path = v; break;
        case O_BATCH: batch = v; break;
        case O_BATCH_STATS: batch_stats = v; break;
        case O_NOISE: s.noise_path = v; break;
        case O_STYLE_START:
            if (cli_parse_int(o, v, 0, 100000000, &iv)) return 2;
            s.style_start = (int)iv;
            break;
        case O_FORMAT:
            s.format = cli_format_parse(v);
            if (s.format < 0) {
                cli_error("--format: '%s' is not one of npz, npy, csv, json", v);
                return 2;
            }
            break;
        case O_N:
            if (cli_parse_int(o, v, 1, 4096, &iv)) return 2;
            s.p.n_repetitions = (int)iv;
            break;
        case O_SA: if (cli_parse_float(o, v, &s.p.scale_audio)) return 2; break;
        case O_SS: if (cli_parse_float(o, v, &s.p.scale_style)) return 2; break;
        case O_DTR: if (cli_parse_float(o, v, &s.p.dt_ratio)) return 2; break;
        case O_DTMIN: if (cli_parse_float(o, v, &s.p.dt_min)) return 2; break;
        case O_DTMAX: if (cli_parse_float(o, v, &s.p.dt_max)) return 2; break;
        case O_ETA: if (cli_parse_float(o, v, &s.p.eta)) return 2; break;
        case O_FLEX: if (cli_parse_float(o, v, &s.p.flexibility)) return 2; break;
        case O_CFG_MODE:
            if (!strcmp(v, "incremental")) s.p.cfg_mode = DPT_CFG_INCREMENTAL;
            else if (!strcmp(v, "independent")) s.p.cfg_mode = DPT_CFG_INDEPENDENT;
            else {
                cli_error("--cfg-mode: '%s' is not incremental or independent", v);
                return 2;
            }
            break;
        case O_CFG_COND: if (cli_parse_cfg_cond(v, &s.p.cfg_conds)) return 2; break;
        case O_NO_HEAD: s.p.zero_head_pose = 1; break;
        case O_NO_CTX: s.p.no_context_audio_feat = 1; break;
        case O_SEED: if (cli_parse_u64(o, v, &s.p.seed)) return 2; break;
        case O_STEPS:
            if (cli_parse_int(o, v, 0, 1000000, &iv)) return 2;
            s.p.steps = (int)iv;
            break;
        case O_PRECISION: if (cli_parse_precision(v, &s.load.precision)) return 2; break;
        case O_THREADS:
            if (cli_parse_int(o, v, 0, DPT_MAX_THREADS, &iv)) return 2;
            s.p.n_threads = (int)iv;
            break;
        case O_QUIET: s.quiet = 1; break;
        case O_TIMINGS: s.timings = 1; break;
        case O_SAVE_COEF: s.save_coef = 1; break;
        case O_FLAME: s.flame_path = v; break;
        case O_FRAMES: s.frames_dir = v; break;
        case O_SIZE: if (cli_parse_size(o, v, &s.ro.width, &s.ro.height)) return 2; break;
        case O_SUPERSAMPLE:
            if (cli_parse_int(o, v, 1, 8, &iv)) return 2;
            s.ro.supersample = (int)iv;
            break;
        case O_BLACK: s.ro.black_bg = 1; break;
        case O_TEX: s.ro.tex_path = v; break;
        default: break;
        }
    }

    /* the library's model-free checks, before anything is loaded */
    if (cli_check_gen_params(&s.p)) return 2;

    s.ro.n_threads = s.p.n_threads;
    if (!s.flame_path && (s.frames_dir || s.ro.tex_path || s.ro.black_bg || s.ro.supersample != 1)) {
        cli_error("%s renders the head: give --flame FLAME.dpt too",
                  s.frames_dir ? "--frames" : s.ro.tex_path ? "--tex" : s.ro.black_bg ? "--black-bg" : "--supersample");
        return 2;
    }
    if (s.flame_path && !s.frames_dir && (s.ro.width % 2 || s.ro.height % 2)) {
        cli_error("--size %dx%d: H.264 yuv420p video needs an even width and height", s.ro.width, s.ro.height);
        return 2;
    }
    if (batch_stats && !batch) {
        cli_error("--batch-stats needs --batch");
        return 2;
    }
    if (batch && s.frames_dir) {
        cli_error("--frames cannot be combined with --batch (each job writes its video next to its output)");
        return 2;
    }

    /* what was asked for */
    if (!s.model_path) {
        cli_error("-m MODEL.dpt is required (see --help)");
        return 2;
    }
    if (batch) {
        const char *extra = one.audio ? "-a" : one.shape ? "-c" : one.style ? "-s" : one.output ? "-o"
                          : one.plot ? "--plot" : s.feats_path ? "--save-audio-features"
                          : s.feats_in_path ? "--audio-features" : NULL;
        if (extra) {
            cli_error("%s cannot be combined with --batch (each line of %s gives audio, shape, style, "
                      "output and plot)", extra, batch);
            return 2;
        }
    } else {
        if (!one.audio) {
            cli_error("-a AUDIO is required (see --help)");
            return 2;
        }
        if (!one.output && !s.feats_path && !s.frames_dir) {
            cli_error(s.flame_path ? "-o OUT.mp4 (or --frames DIR) is required"
                                   : "-o OUT is required (or --save-audio-features FEATS.npy alone)");
            return 2;
        }
        if (s.flame_path && s.save_coef && !one.output) {
            cli_error("--save-coef needs -o OUT (the coefficients' name)");
            return 2;
        }
        if ((one.output || s.frames_dir) && !one.shape) {
            cli_error("-c SHAPE is required with -o (a FLAME shape .npy or .npz)");
            return 2;
        }
        if (!one.output && !s.frames_dir && (one.plot || one.style))
            cli_warn("%s is ignored without -o", one.plot ? "--plot" : "-s");
    }
    cli_quiet = s.quiet;
    cli_install_log();

    int rc = 1;
    dpt_error err = {0};
    cli_jobs jobs = {0};
    cli_err e = {{0}};
    if (batch && cli_jobs_read(batch, &jobs, &e)) {   /* before the model: a missing list fails fast */
        cli_error("%s", e.msg);
        return 1;
    }
    if (s.noise_path) {
        if (dpt_npy_read(s.noise_path, &s.draws, &err) != DPT_OK) {
            cli_error("%s", err.message);
            goto out;
        }
    }
    double t0 = cli_now();
    if (dpt_model_load(s.model_path, &s.load, &s.model, &err) != DPT_OK) {
        cli_error("%s", err.message);
        goto out;
    }
    s.t_load = cli_now() - t0;
    dpt_model_get_info(s.model, &s.info);
    if (s.flame_path && dpt_flame_load(s.flame_path, &s.flame, &err) != DPT_OK) {
        cli_error("%s", err.message);
        goto out;
    }
    if (s.flame && s.ro.tex_path) {   /* checked before the generation, not after it */
        dpt_flame_info fi;
        dpt_flame_get_info(s.flame, &fi);
        dpt_image tex = {0};
        if (!fi.has_uv) {
            cli_error("%s: the FLAME file %s has no uv coordinates for a texture (export it with --uv "
                      "uv_coords.npz)", s.ro.tex_path, s.flame_path);
            goto out;
        }
        if (dpt_image_read(s.ro.tex_path, &tex, &err) != DPT_OK) {
            cli_error("%s", err.message);
            goto out;
        }
        dpt_image_free(&tex);
    }
    cli_progress_init(&s.pg, s.quiet);

    if (batch) {
        FILE *stats = NULL;
        /* a log written as the batch runs (read while it runs), not an atomic output */
        if (batch_stats && !(stats = fopen(batch_stats, "w"))) {
            cli_error("%s: cannot create: %s", batch_stats, strerror(errno));
            goto out;
        }
        int failed = cli_jobs_run(batch, &jobs, run_job, &s, stats);
        int stats_bad = stats && (ferror(stats) | fclose(stats));
        if (stats_bad) cli_error("%s: write error", batch_stats);
        int total = jobs.n + jobs.n_bad;
        if (failed) cli_error("%s: %d of %d job(s) failed", batch, failed, total);
        rc = failed || stats_bad ? 1 : 0;
    } else {
        rc = run_job(&s, &one, 0, 1, &e);
        if (rc) cli_error("%s", e.msg);
    }
out:
    cli_jobs_free(&jobs);
    dpt_array_free(&s.draws);
    dpt_model_free(s.model);
    dpt_flame_free(s.flame);
    return rc;
}
