/*
 * libdpt — pure-C inference for DiffPoseTalk (speech-driven stylistic 3D facial animation and
 * head pose via diffusion, ACM TOG 2024).
 *
 * Speech in; per-frame FLAME coefficients out: expression (50), pose (6 = global rotation
 * axis-angle 3 + jaw axis-angle 3) and shape (100), in the layout of upstream's `--save_coef`.
 *
 * Conventions
 *  - Every function that can fail returns a dpt_status (DPT_OK = 0) and, when the caller passes a
 *    non-NULL dpt_error, writes one human-readable line into it naming the file (if any), what was
 *    expected and what was found. The library never prints to stdout and never calls exit/abort;
 *    warnings go to the log callback (default: stderr, see dpt_set_log_callback).
 *  - Ownership: objects returned through `**out` belong to the caller and are released with the
 *    matching *_free function (which accepts NULL). Input arrays are borrowed, never kept.
 *  - Thread safety: a dpt_model is immutable after dpt_model_load and may be shared by any number
 *    of threads running dpt_model_generate / dpt_model_encode_audio / dpt_model_extract_style at once; each call
 *    allocates its own working state and runs on threads of its own (n_threads), so concurrent
 *    calls neither share nor override each other's thread counts. A dpt_state (below) keeps a
 *    caller's threads between calls. The library never changes process-wide settings (OpenBLAS's
 *    thread count included). dpt_set_log_callback is global and not thread-safe.
 *  - Arrays are row-major float32.
 *  - Names are dpt_<noun>_<verb> (dpt_model_generate, dpt_stream_push, dpt_renderer_draw); the
 *    0.2 names remain for one release as deprecated inline aliases at the end of this header.
 *  - Growable structs. Every params struct (dpt_load_params, dpt_gen_params, dpt_stream_params,
 *    dpt_flame_params, dpt_render_params) begins with `size_t struct_size`, the sizeof of the
 *    caller's header, which its *_params_default() initialiser sets (an inline function compiled
 *    into the caller). New fields are only ever appended, so the library knows from struct_size
 *    which fields a caller has: the ones it lacks take their defaults, and a caller newer than
 *    the library is refused (DPT_ERR_UNSUPPORTED) only if it set a field the library does not
 *    know (a non-zero byte past the library's struct). A struct_size below 0.3's size (a struct
 *    not made by *_params_default) is DPT_ERR_INVALID_ARG. Info structs (dpt_model_info,
 *    dpt_stream_info, dpt_flame_info) are filled through *_get_info inline wrappers that pass the
 *    caller's sizeof: the library writes no byte past it. A size field was chosen over setter
 *    functions because callers keep writing plain struct fields (and designated initialisers
 *    after *_params_default()), the Python binding reads the same structs, and one rule covers
 *    all five structs.
 */
#ifndef DPT_H
#define DPT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version of this header; dpt_version() gives the library's (they differ when a program is
 * linked against another release than it was compiled with). The Makefile reads these lines. */
#define DPT_VERSION_MAJOR 0
#define DPT_VERSION_MINOR 3
#define DPT_VERSION_PATCH 0
#define DPT_STR_(x) #x
#define DPT_STR(x) DPT_STR_(x)
#define DPT_VERSION_STRING \
    DPT_STR(DPT_VERSION_MAJOR) "." DPT_STR(DPT_VERSION_MINOR) "." DPT_STR(DPT_VERSION_PATCH)

/* Every declaration below is exported from libdpt.so; the library is built with
 * -fvisibility=hidden, so nothing else is. */
#pragma GCC visibility push(default)

/* "MAJOR.MINOR.PATCH" of the library linked in. */
const char *dpt_version(void);

/* Sizes of the coefficients (upstream's FLAME parameters) and the audio rate. */
#define DPT_N_EXP 50        /* expression coefficients per frame */
#define DPT_N_POSE 6        /* global rotation (axis-angle 3) + jaw (axis-angle 3) */
#define DPT_N_SHAPE 100     /* shape coefficients */
#define DPT_SAMPLE_RATE 16000  /* Hz of the samples dpt_model_generate takes */

typedef enum dpt_status {
    DPT_OK = 0,
    DPT_ERR_INVALID_ARG = 1,   /* bad parameter value, shape or NaN/Inf input */
    DPT_ERR_IO = 2,            /* file missing, unreadable or unwritable */
    DPT_ERR_FORMAT = 3,        /* file exists but its contents are corrupt or inconsistent */
    DPT_ERR_UNSUPPORTED = 4,   /* valid but not supported (option, dtype, model variant) */
    DPT_ERR_NOMEM = 5,         /* allocation failed */
    DPT_ERR_AUDIO = 6,         /* audio could not be decoded or resampled */
    DPT_ERR_NOISE = 7,         /* the caller's noise source ran out or failed */
    DPT_ERR_CANCELLED = 8      /* the progress callback asked to stop */
} dpt_status;

/* One line describing the last failure of a call. */
typedef struct dpt_error {
    dpt_status status;
    char message[512];
} dpt_error;

/* Short static description of a status code ("invalid argument", ...). */
const char *dpt_strerror(dpt_status status);

/* Log levels of the log callback. */
typedef enum dpt_log_level { DPT_LOG_INFO = 0, DPT_LOG_WARNING = 1 } dpt_log_level;

/* Log callback for warnings and information (level: dpt_log_level). NULL restores the
 * default, which writes warnings to stderr. */
typedef void (*dpt_log_fn)(int level, const char *message, void *user);
void dpt_log_set_callback(dpt_log_fn fn, void *user);

/* ------------------------------------------------------------------------------------------ */
/* Model                                                                                        */

typedef struct dpt_model dpt_model;

/* Arithmetic of the denoiser's matrix products (its weight matrices, 94% of a generation's work):
 *  DPT_PRECISION_F32  float32 (default): the reference results;
 *  DPT_PRECISION_BF16 weights rounded to bfloat16 once at load (half the memory of float32) and
 *                     activations rounded to bfloat16 per product, products summed in float32:
 *                     about twice as fast on CPUs with AVX512-BF16 (Zen 4, Sapphire Rapids),
 *                     emulated (same rounding, float32 speed) elsewhere; README gives the measured
 *                     deviation from float32. The audio encoder's linear layers and conv
 *                     layers 1… too; its first conv layer, positional conv, attention scores,
 *                     normalisations and the style encoder stay float32. */
/*  DPT_PRECISION_INT8 weight matrices quantised once at load to signed 8 bits per output channel
 *                     (a quarter of the memory of float32), activations to unsigned 8 bits per
 *                     token on every product, exact integer sums: about four times float32's
 *                     speed on CPUs with AVX512-VNNI (Zen 4, Ice Lake and later), I8MM or SDOT
 *                     (aarch64), a portable kernel with the same results elsewhere. The audio
 *                     encoder's linear and conv layers 1… and the denoiser's linear layers; README
 *                     lists the layers kept in float32 and the measured deviation. */
/*  DPT_PRECISION_F16  weights rounded to IEEE half once at load (exact for an f16 file), float32
 *                     activations and sums; on aarch64 half panels in memory, elsewhere float32. */
typedef enum dpt_precision {
    DPT_PRECISION_F32 = 0,
    DPT_PRECISION_BF16 = 1,
    DPT_PRECISION_INT8 = 2,
    DPT_PRECISION_F16 = 3
} dpt_precision;

typedef struct dpt_load_params {
    size_t struct_size; /* set by dpt_load_params_default() (see "Growable structs") */
    int use_mmap;   /* 1 (default): map the file and use float32 tensors in place */
    dpt_precision precision; /* DPT_PRECISION_F32 (default), _BF16, _INT8 or _F16 */
} dpt_load_params;

/* Defaults for the first struct_size bytes of *p (the rest untouched); sets p->struct_size. */
void dpt_load_params_init(dpt_load_params *p, size_t struct_size);
static inline dpt_load_params dpt_load_params_default(void) {
    dpt_load_params p;
    dpt_load_params_init(&p, sizeof p);
    return p;
}

/* Open and fully validate a .dpt file (see weights/FORMAT.md). Counts and sizes past the limits of
 * FORMAT.md "Limits" (65536 tensors, 4096 metadata entries, widths 8192, 10000 diffusion steps,
 * ...) are DPT_ERR_FORMAT, refused before anything is allocated from them. */
dpt_status dpt_model_load(const char *path, const dpt_load_params *params, dpt_model **out,
                          dpt_error *err);
void dpt_model_free(dpt_model *model);

/* Hyperparameters of a loaded model (read from the file's metadata). */
typedef struct dpt_model_info {
    const char *path;
    /* denoiser */
    int target_is_noise;        /* 0: predicts x0 ("sample"), 1: predicts epsilon ("noise") */
    int guide_audio, guide_style; /* guiding_conditions */
    int cfg_independent;        /* model's default CFG mode: 0 incremental, 1 independent */
    int n_diff_steps;
    const char *diff_schedule;  /* linear | quadratic | sigmoid | cosine */
    int no_head_pose;
    int motion_dim;             /* 54 with head pose, 51 without */
    int use_style, d_style;
    const char *audio_model;    /* hubert | wav2vec2 */
    int align_mask_width, use_learnable_pe, use_indicator;
    int feature_dim, n_heads, n_layers, mlp_ratio;
    int n_motions, n_prev_motions, fps;
    int pad_replicate;          /* pad_mode: 0 zero, 1 replicate */
    /* audio encoder */
    int audio_hidden_size, audio_layers, audio_heads, audio_intermediate_size;
    /* style encoder */
    int has_style_encoder, style_feature_dim, style_n_motions, style_motion_dim;
    /* storage */
    int n_tensors;
    int64_t n_params_audio, n_params_denoiser, n_params_style, n_params_total;
    int any_f16;                /* some tensors are stored as float16 */
    uint64_t file_size;
    dpt_precision precision;    /* the precision the model was loaded with */
    const char *precision_name; /* "f32", "bf16 (AVX512-BF16)", "bf16 (BFMMLA)", "bf16 (emulated)",
                                 * "int8 (AVX512-VNNI)", "int8 (I8MM)", "int8 (SDOT)",
                                 * "int8 (portable)", "f16 (NEON half panels)" or "f16 (emulated)" */
} dpt_model_info;

void dpt_model_get_info_sized(const dpt_model *model, dpt_model_info *info, size_t struct_size);
static inline void dpt_model_get_info(const dpt_model *model, dpt_model_info *info) {
    dpt_model_get_info_sized(model, info, sizeof *info);
}

/* Tensor directory: names, dtypes and shapes exactly as stored. */
typedef enum dpt_dtype { DPT_DTYPE_F32 = 0, DPT_DTYPE_F16 = 1 } dpt_dtype;

typedef struct dpt_tensor_info {
    const char *name;
    dpt_dtype dtype;    /* DPT_DTYPE_F32 or DPT_DTYPE_F16 */
    int ndim;
    int64_t shape[4];
    int64_t n_elements;
} dpt_tensor_info;

int dpt_model_tensor_count(const dpt_model *model);
dpt_status dpt_model_tensor_at(const dpt_model *model, int index, dpt_tensor_info *info);
/* Find a tensor by name; returns its index or -1. */
int dpt_model_tensor_find(const dpt_model *model, const char *name);
/* Copy a tensor's values as float32 (converting float16) into dst[0..n_elements). */
dpt_status dpt_model_tensor_read(const dpt_model *model, int index, float *dst, size_t capacity,
                                 dpt_error *err);

typedef enum dpt_meta_type { DPT_META_INT = 1, DPT_META_FLOAT = 2, DPT_META_STRING = 3 } dpt_meta_type;

/* Metadata directory. Values are valid while the model lives. */
typedef struct dpt_meta_info {
    const char *key;
    dpt_meta_type type;
    int64_t i;
    double f;
    const char *s;
} dpt_meta_info;

int dpt_model_meta_count(const dpt_model *model);
dpt_status dpt_model_meta_at(const dpt_model *model, int index, dpt_meta_info *info);

/* ------------------------------------------------------------------------------------------ */
/* Audio                                                                                        */

/* Load any file libsndfile reads (WAV, FLAC, OGG/Vorbis, MP3, ...), average the channels and
 * resample to 16 kHz with libsoxr at librosa's default quality ("soxr_hq"). *samples is
 * malloc'ed (free with dpt_free). Not normalised. The result equals upstream's
 * librosa.load(path, sr=16000, mono=True), including its length ceil(n·16000/rate).
 * Errors: DPT_ERR_IO (missing or unreadable file), DPT_ERR_AUDIO (not audio, corrupt, no
 * samples, NaN/Inf samples), DPT_ERR_UNSUPPORTED (longer than DPT_MAX_AUDIO_SECONDS, sample rate
 * outside 1 kHz … 768 kHz). A file holding fewer frames than its header announces is decoded as
 * far as it goes, with a warning.
 * In a library built with NO_SNDFILE=1 (no libsndfile/libsoxr) this always fails with
 * DPT_ERR_UNSUPPORTED: pass 16 kHz mono samples to dpt_model_generate instead. */
dpt_status dpt_audio_load(const char *path, float **samples, size_t *n_samples, dpt_error *err);

/* Same, for samples already in memory: interleaved `channels`-channel float samples at
 * `sample_rate` Hz → mono 16 kHz. Errors: DPT_ERR_INVALID_ARG (no samples, NaN/Inf, channels or
 * rate out of range), DPT_ERR_UNSUPPORTED (longer than DPT_MAX_AUDIO_SECONDS; with NO_SNDFILE=1,
 * any sample_rate other than 16000: only the channel averaging is available). */
dpt_status dpt_audio_to_16k(const float *interleaved, size_t n_frames, int channels,
                            double sample_rate, float **samples, size_t *n_samples,
                            dpt_error *err);

/* Longest clip accepted, in seconds of audio (documented limit; longer input is rejected). */
#define DPT_MAX_AUDIO_SECONDS 3600.0

void dpt_free(void *ptr);

/* ------------------------------------------------------------------------------------------ */
/* Generation                                                                                   */

/* Conditions for classifier-free guidance (bit mask). */
#define DPT_COND_AUDIO 1u
#define DPT_COND_STYLE 2u
#define DPT_COND_MODEL_DEFAULT 0xFFFFFFFFu   /* use the model's guiding_conditions */

typedef enum dpt_cfg_mode {
    DPT_CFG_MODEL_DEFAULT = -1,   /* the model's own */
    DPT_CFG_INCREMENTAL = 0,
    DPT_CFG_INDEPENDENT = 1
} dpt_cfg_mode;

/* A source of standard-normal draws: fill dst[0..n) and return 0, or non-zero when exhausted.
 * Consumed in upstream's order, each draw n = n_repetitions × n_motions × motion_dim values
 * (row-major): window 0: the initial motion x_T, then one z per step for t = T … 2; every later
 * window: one z per step for t = T … 2 (x_T is reused). Without a source the built-in generator
 * (xoshiro256** seeded by splitmix64(seed), Marsaglia polar normals; see lib/rng.h) produces the
 * same stream on every platform and thread count. */
typedef int (*dpt_noise_fn)(void *user, float *dst, size_t n);

/* Progress: called once per diffusion step. Return non-zero to cancel (DPT_ERR_CANCELLED). */
typedef int (*dpt_progress_fn)(void *user, int window, int n_windows, int step, int n_steps);

typedef struct dpt_gen_params {
    size_t struct_size;         /* set by dpt_gen_params_default() (see "Growable structs") */
    int n_repetitions;          /* independent samples generated in one batched call (default 1) */
    float scale_audio;          /* CFG scale for audio (default 1.15, as upstream's demo) */
    float scale_style;          /* CFG scale for style (default 3.0) */
    dpt_cfg_mode cfg_mode;      /* default: DPT_CFG_MODEL_DEFAULT, the model's own */
    unsigned cfg_conds;         /* DPT_COND_* mask; default: the model's guiding_conditions */
    float dt_ratio;             /* dynamic thresholding quantile; <= 0 disables (default 0) */
    float dt_min, dt_max;       /* clamp range of the threshold (defaults 1.0, 4.0) */
    uint64_t seed;              /* seed of the built-in generator (default 0) */
    dpt_noise_fn noise_fn;      /* optional: replaces the built-in generator */
    void *noise_user;
    dpt_progress_fn progress_fn;
    void *progress_user;
    int n_threads;              /* 0 = all cores */
    int steps;                  /* 0 or the model's n_diff_steps = the faithful full schedule (default);
                                   1..n_diff_steps−1 = strided DDIM over τ_k = ⌈k·T/steps⌉ (README) */
    float eta;                  /* DDIM η in [0, 1] for strided steps (0 = deterministic); the
                                   full schedule ignores it. Strided runs reject flexibility ≠ 0 */
    float flexibility;          /* σ_t = σ_flex·f + σ_inflex·(1−f) (default 0, as the demo) */
    int zero_head_pose;         /* 1: zero the global rotation in the output (demo's --no_head) */
    int no_context_audio_feat;  /* 1: each window's audio encoded alone (demo's
                                   --no_context_audio_feat; see dpt_model_encode_audio_windows) */
} dpt_gen_params;

void dpt_gen_params_init(dpt_gen_params *p, size_t struct_size);
static inline dpt_gen_params dpt_gen_params_default(void) {
    dpt_gen_params p;
    dpt_gen_params_init(&p, sizeof p);
    return p;
}
/* The checks that need no model: each field's range (n_repetitions 1..4096, finite scales,
 * cfg_mode, cfg_conds bits, dt_ratio <= 1 and 0 <= dt_min <= dt_max when thresholding, steps
 * >= 0, eta and flexibility in [0, 1], n_threads 0..DPT_MAX_THREADS), so that a program can
 * refuse options before loading anything. The message begins with the field's name and ": ".
 * The generation calls check everything again against the model (steps <= its schedule,
 * guidance it supports, style vector). */
dpt_status dpt_gen_params_check(const dpt_gen_params *params, dpt_error *err);

/* Most threads any call or state runs on (n_threads above it is DPT_ERR_INVALID_ARG). */
#define DPT_MAX_THREADS 256

/* Output of a generation: n_repetitions samples of n_frames frames each. */
typedef struct dpt_result {
    int n_repetitions;
    int n_frames;
    float *exp;     /* n_repetitions × n_frames × 50 */
    float *pose;    /* n_repetitions × n_frames × 6  */
    float *shape;   /* n_frames × 100 (the input shape repeated) */
} dpt_result;

void dpt_result_free(dpt_result *result);

/* Generate coefficients for 16 kHz mono samples (as returned by dpt_audio_load).
 * shape: 100 FLAME shape values (un-normalised). style: d_style values or NULL (null style). */
dpt_status dpt_model_generate(const dpt_model *model, const float *samples16k, size_t n_samples,
                        const float *shape, const float *style, const dpt_gen_params *params,
                        dpt_result **out, dpt_error *err);

/* Convenience: dpt_audio_load + dpt_model_generate. */
dpt_status dpt_model_generate_file(const dpt_model *model, const char *audio_path, const float *shape,
                             const float *style, const dpt_gen_params *params, dpt_result **out,
                             dpt_error *err);

/* The audio features of the whole padded clip (upstream's extract_audio_feature output):
 * *features is malloc'ed, n_frames × feature_dim. */
dpt_status dpt_model_encode_audio(const dpt_model *model, const float *samples16k, size_t n_samples,
                            int n_threads, float **features, int *n_frames, dpt_error *err);

/* The same features as upstream's demo with --no_context_audio_feat computes them: the clip
 * normalised and padded as for dpt_model_encode_audio, then window w's samples
 * [round(w·L·unit), round((w+1)·L·unit)) (unit = 16000/fps, L = n_motions) encoded alone, each
 * window seeing none of its neighbours' audio; n_frames × feature_dim, windows in order. A stream
 * in window mode computes exactly these. */
dpt_status dpt_model_encode_audio_windows(const dpt_model *model, const float *samples16k,
                                    size_t n_samples, int n_threads, float **features,
                                    int *n_frames, dpt_error *err);

/* Generation from audio features computed earlier by dpt_model_encode_audio (a cache: the encoder is
 * skipped). features: n_frames × feature_dim of the whole padded clip of n_samples16k samples;
 * the sample count fixes the windows and the trimmed output length, so it must be the count the
 * features were encoded from (a mismatching n_frames is DPT_ERR_INVALID_ARG). */
dpt_status dpt_model_generate_from_features(const dpt_model *model, const float *features, int n_frames,
                                      size_t n_samples16k, const float *shape, const float *style,
                                      const dpt_gen_params *params, dpt_result **out, dpt_error *err);

/* ------------------------------------------------------------------------------------------ */
/* States: a caller's threads kept between calls                                               */

/* A per-caller state on a shared model: its own team of n_threads threads (0 = all cores,
 * at most 256), started on first use and kept until dpt_state_free, so repeated calls do not
 * start threads again. Any number of states may share one model, each used by one thread at a
 * time; results are bit-identical whatever the thread count and however many states run at once.
 * The model must outlive its states. (The streaming API builds on states.) */
typedef struct dpt_state dpt_state;

dpt_status dpt_state_new(const dpt_model *model, int n_threads, dpt_state **out, dpt_error *err);
void dpt_state_free(dpt_state *state);
/* The state's thread count (n_threads resolved: ≥ 1). */
int dpt_state_threads(const dpt_state *state);

/* dpt_model_encode_audio, dpt_model_generate and dpt_model_generate_from_features on the state's threads
 * (params->n_threads is not used). */
dpt_status dpt_state_encode_audio(dpt_state *state, const float *samples16k, size_t n_samples,
                                  float **features, int *n_frames, dpt_error *err);
dpt_status dpt_state_generate(dpt_state *state, const float *samples16k, size_t n_samples,
                              const float *shape, const float *style, const dpt_gen_params *params,
                              dpt_result **out, dpt_error *err);
dpt_status dpt_state_generate_from_features(dpt_state *state, const float *features, int n_frames,
                                            size_t n_samples16k, const float *shape,
                                            const float *style, const dpt_gen_params *params,
                                            dpt_result **out, dpt_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Streams: push 16 kHz audio as it arrives, pull frames as they are ready (lib/stream.c)      */

/* Audio normalisation of a stream. Upstream normalises by the whole clip's mean and std, which a
 * stream cannot know in advance:
 *  DPT_NORM_FIXED   (x − mean)/(std + 1e-5) with the given values; with the clip's own values
 *                   (dpt_audio_stats) the stream reproduces offline --no-context-audio-feat bit
 *                   for bit;
 *  DPT_NORM_RUNNING each window normalised by the mean and std of every sample pushed up to its
 *                   end (the first window: its own statistics). */
typedef enum dpt_norm_kind { DPT_NORM_FIXED = 0, DPT_NORM_RUNNING = 1 } dpt_norm_kind;

#define DPT_STREAM_MAX_CONTEXT 1000

typedef struct dpt_stream_params {
    size_t struct_size; /* set by dpt_stream_params_default() (see "Growable structs") */
    int chunk_frames;   /* frames per chunk k, 1..n_motions; 0 = n_motions: window mode, offline
                           --no-context-audio-feat exactly. k < n_motions: low-latency mode, every
                           k heard frames one full window whose unheard tail is masked as padding
                           (indicator 0), k frames emitted */
    dpt_norm_kind norm; /* DPT_NORM_FIXED (default) or DPT_NORM_RUNNING */
    float norm_mean;    /* DPT_NORM_FIXED: default 0 */
    float norm_std;     /* DPT_NORM_FIXED: default 1, finite and >= 0 */
    int context_frames; /* frames of earlier audio the encoder sees before each chunk, 0..
                           DPT_STREAM_MAX_CONTEXT; -1 (default) = n_motions - k (0 in window mode) */
} dpt_stream_params;

void dpt_stream_params_init(dpt_stream_params *p, size_t struct_size);
static inline dpt_stream_params dpt_stream_params_default(void) {
    dpt_stream_params p;
    dpt_stream_params_init(&p, sizeof p);
    return p;
}
/* The checks that need no model (norm kind, norm_std finite and >= 0, norm_mean finite,
 * chunk_frames >= 0, context_frames -1..DPT_STREAM_MAX_CONTEXT); message begins with the field's
 * name and ": ". dpt_stream_open checks chunk_frames against the model's window too. */
dpt_status dpt_stream_params_check(const dpt_stream_params *params, dpt_error *err);

/* The mean and (unbiased) std upstream's demo normalises a clip by, as float32. */
dpt_status dpt_audio_stats(const float *samples16k, size_t n_samples, float *mean, float *std,
                           dpt_error *err);

typedef struct dpt_stream dpt_stream;

/* A stream on a state (borrowed, used by one thread at a time; the state's threads compute):
 * shape (100) and style (d_style or NULL) copied; gen: generation params (n_repetitions must be
 * 1; no_context_audio_feat is implied: each window's audio is encoded alone). Window mode: every
 * n_motions frames of audio (4 s) one window is generated, its last n_prev_motions frames carried
 * into the next exactly as offline; frames come out in windows. Low-latency mode (chunk k <
 * n_motions): when k more frames are heard, the window [s, s + n_motions) is generated from the
 * chunk's audio (after context_frames of earlier audio, padded to the window's end as offline
 * pads its last window, encoded alone) with the unheard tail masked; its first k frames come out
 * and the last n_prev_motions frames emitted (motion and audio features; the model's start
 * features before frame 0) condition the next chunk. Not equal to offline: an approximation whose
 * measured distance README gives. DPT_ERR_INVALID_ARG on chunk or context sizes out of range. */
dpt_status dpt_stream_open(dpt_state *state, const float *shape, const float *style,
                           const dpt_gen_params *gen, const dpt_stream_params *params,
                           dpt_stream **out, dpt_error *err);
void dpt_stream_free(dpt_stream *stream);

/* Append n 16 kHz mono samples (any count, 0 included). Only copies: never computes. NaN/Inf
 * samples (DPT_ERR_INVALID_ARG) and pushes after dpt_stream_flush without dpt_stream_reset
 * (DPT_ERR_INVALID_ARG) are refused whole; nothing is appended. */
dpt_status dpt_stream_push(dpt_stream *stream, const float *samples, size_t n, dpt_error *err);

/* End of speech: the remaining audio is padded as offline pads the last window. */
dpt_status dpt_stream_flush(dpt_stream *stream, dpt_error *err);

/* Copy up to max_frames ready frames (exp 50 and pose 6 values each) and remove them; *n_frames
 * receives how many. When no frame is ready and a window's audio is complete (or flushed), one
 * window is computed first: a pull never computes more than one window. */
dpt_status dpt_stream_pull(dpt_stream *stream, float *exp, float *pose, int max_frames,
                           int *n_frames, dpt_error *err);

/* Back to the start of an utterance (noise re-seeded from the params, buffers emptied). */
void dpt_stream_reset(dpt_stream *stream);

typedef struct dpt_stream_info {
    size_t samples_pushed;   /* since open / reset */
    long frames_pulled;      /* the next frame's index */
    int frames_ready;        /* computed, not pulled yet */
    int windows_due;         /* chunks whose audio is complete, not computed yet (a pull computes
                                one) */
    int flushed;             /* dpt_stream_flush called */
    int finished;            /* flushed and every frame pulled */
    int chunk_frames;        /* k in use */
    int context_frames;      /* left audio context in use */
} dpt_stream_info;

void dpt_stream_get_info_sized(const dpt_stream *stream, dpt_stream_info *info, size_t struct_size);
static inline void dpt_stream_get_info(const dpt_stream *stream, dpt_stream_info *info) {
    dpt_stream_get_info_sized(stream, info, sizeof *info);
}

/* Style vector (d_style values written to style_out) from a motion clip: exp (n_frames × 50) and
 * pose (n_frames × 6), frames [start, start + n_motions) (fewer, with a warning, if short). */
dpt_status dpt_model_extract_style(const dpt_model *model, const float *exp, const float *pose,
                             int n_frames, int start, float *style_out, dpt_error *err);
/* dpt_model_extract_style runs on the calling thread alone: the style encoder is a few small GEMMs. */

/* ------------------------------------------------------------------------------------------ */
/* NumPy files                                                                                  */

/* An array read from or written to .npy / .npz. Data is float32, C order. */
typedef struct dpt_array {
    int ndim;             /* 0…4 */
    int64_t shape[4];
    float *data;          /* malloc'ed by the readers; free with dpt_array_free */
} dpt_array;

void dpt_array_free(dpt_array *a);   /* frees data, leaves the struct zeroed */

/* Read a .npy (v1/v2/v3 header, little-endian float32 or float64, C order; float64 converted).
 * Errors: DPT_ERR_IO (missing/unreadable), DPT_ERR_FORMAT (not .npy, malformed header, truncated
 * data), DPT_ERR_UNSUPPORTED (other dtypes, big-endian, Fortran order, more than 4 dims). */
dpt_status dpt_npy_read(const char *path, dpt_array *out, dpt_error *err);
/* Read array `key` (without ".npy") from an .npz, stored or deflate-compressed (CRC checked).
 * A missing key is DPT_ERR_FORMAT, its message listing the arrays present; zip64 archives
 * (4 GB and more) are DPT_ERR_UNSUPPORTED.
 * Limits of both readers, checked before allocating: .npy headers up to 65536 bytes; an array is
 * allocated only once the file (or inflated entry) is seen to hold all of its data; an .npz entry
 * inflates to at most DPT_MAX_NPZ_ENTRY_BYTES (DPT_ERR_UNSUPPORTED) and to no more than deflate's 1032:1 ratio
 * allows for its compressed size nor than its header declares (decompression bombs:
 * DPT_ERR_FORMAT). */
dpt_status dpt_npz_read(const char *path, const char *key, dpt_array *out, dpt_error *err);
/* Largest .npz entry read (uncompressed bytes, checked from the zip directory before anything is
 * allocated or inflated; larger is DPT_ERR_UNSUPPORTED): 1 GiB, ~70 hours of coefficients. */
#define DPT_MAX_NPZ_ENTRY_BYTES (1ull << 30)
/* 1 if the .npz at path has an array named key, 0 if not, -1 on error (err filled). */
int dpt_npz_has(const char *path, const char *key, dpt_error *err);
/* Write float32 .npy. */
dpt_status dpt_npy_write(const char *path, const float *data, int ndim, const int64_t *shape,
                         dpt_error *err);
/* Write n arrays into one .npz (compress: 1 = deflate as np.savez_compressed, 0 = stored). */
dpt_status dpt_npz_write(const char *path, int n, const char *const *keys,
                         const dpt_array *arrays, int compress, dpt_error *err);

/* ------------------------------------------------------------------------------------------ */
/* FLAME (lib/flame.c)                                                                          */

typedef struct dpt_flame dpt_flame;   /* immutable after load; shareable between threads */

/* Open a FLAME file written by `tools/export.py --flame` (a .dpt container with metadata kind
 * "flame", weights/FORMAT.md "FLAME files"). Validates every tensor and the counts' consistency
 * (at most 2^24 vertices, faces and uv coordinates: FORMAT.md "Limits").
 * DPT_ERR_IO / DPT_ERR_FORMAT as models; a valid .dpt that is not a FLAME file (a model) is
 * DPT_ERR_UNSUPPORTED (and dpt_model_load returns DPT_ERR_UNSUPPORTED for a FLAME file). */
dpt_status dpt_flame_load(const char *path, dpt_flame **out, dpt_error *err);
void dpt_flame_free(dpt_flame *flame);

typedef struct dpt_flame_info {
    const char *path;
    int n_vertices;     /* 5023 in FLAME 2020 */
    int n_faces;        /* 9976 */
    int n_joints;       /* 5: global, neck, jaw, left eye, right eye */
    int n_shape;        /* 100 (betas kept from the file's shape directions) */
    int n_exp;          /* 50 */
    int has_uv;         /* uv coordinates present (export --uv) */
    int n_uv;           /* number of uv coordinates (vt rows) */
    const char *source; /* metadata "flame_source": e.g. "FLAME 2020 generic_model.pkl" or "stand-in (not FLAME)" */
} dpt_flame_info;

void dpt_flame_get_info_sized(const dpt_flame *flame, dpt_flame_info *info, size_t struct_size);
static inline void dpt_flame_get_info(const dpt_flame *flame, dpt_flame_info *info) {
    dpt_flame_get_info_sized(flame, info, sizeof *info);
}

/* n_faces × 3 vertex indices (valid while the flame lives). */
const int32_t *dpt_flame_faces(const dpt_flame *flame);
/* uv: vt (n_uv × 2, in [0,1], v up as in the file) and ft (n_faces × 3 indices into vt);
 * both NULL when the file has none. */
void dpt_flame_uv(const dpt_flame *flame, const float **vt, const int32_t **ft);

typedef struct dpt_flame_params {
    size_t struct_size; /* set by dpt_flame_params_default() (see "Growable structs") */
    int no_head;     /* 1: global rotation zeroed (upstream's ignore_global_rot / --no_head) */
    int n_threads;   /* 0 = all cores */
} dpt_flame_params;

void dpt_flame_params_init(dpt_flame_params *p, size_t struct_size);
static inline dpt_flame_params dpt_flame_params_default(void) {
    dpt_flame_params p;
    dpt_flame_params_init(&p, sizeof p);
    return p;
}

/* Vertices of n_frames frames, as upstream's FLAME.forward(shape, exp, pose) with pose2rot:
 * shape: 100 values per frame (shape_per_frame = 1: n_frames × 100) or one row for all frames
 * (shape_per_frame = 0: 100 values; the shape part is then computed once);
 * exp: n_frames × 50; pose: n_frames × 6 (global axis-angle 3, jaw axis-angle 3);
 * vertices: n_frames × n_vertices × 3, written by the call.
 * Errors: DPT_ERR_INVALID_ARG (n_frames < 1, NULL arrays, NaN/Inf input), DPT_ERR_NOMEM. */
dpt_status dpt_flame_vertices(const dpt_flame *flame, int n_frames, const float *shape,
                              int shape_per_frame, const float *exp, const float *pose,
                              const dpt_flame_params *params, float *vertices, dpt_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Rendering (lib/render.c) and images (lib/image.c)                                           */

/* An 8-bit RGB image, rows top to bottom, width × height × 3 bytes. */
typedef struct dpt_image {
    int width, height;
    uint8_t *rgb;      /* malloc'ed by the library's readers; free with dpt_image_free */
} dpt_image;

void dpt_image_free(dpt_image *img);  /* frees rgb, leaves the struct zeroed */

/* Read a PNG or JPEG file (libpng / libjpeg-turbo) as RGB (grey and alpha converted).
 * At most 8192 pixels per side (DPT_ERR_UNSUPPORTED beyond, from the header, before allocating).
 * A build with NO_IMAGE=1 returns DPT_ERR_UNSUPPORTED. */
dpt_status dpt_image_read(const char *path, dpt_image *out, dpt_error *err);
/* Write RGB as PNG (libpng; NO_IMAGE=1: DPT_ERR_UNSUPPORTED). Writes `path` directly: the
 * programs add the temporary-name-and-rename step. */
dpt_status dpt_image_write_png(const char *path, const dpt_image *img, dpt_error *err);

typedef struct dpt_render_params {
    size_t struct_size;    /* set by dpt_render_params_default() (see "Growable structs") */
    int width, height;     /* default 640 × 640 */
    int supersample;       /* 1 (default) = none; k = k×k samples per pixel, box-filtered */
    int black_bg;          /* 0: white background (default), 1: black (upstream --black_bg) */
    int n_threads;         /* 0 = all cores */
    const dpt_image *texture;  /* optional: RGB texture, used with the mesh's uv (borrowed,
                                  must outlive the renderer) */
} dpt_render_params;

void dpt_render_params_init(dpt_render_params *p, size_t struct_size);
static inline dpt_render_params dpt_render_params_default(void) {
    dpt_render_params p;
    dpt_render_params_init(&p, sizeof p);
    return p;
}

typedef struct dpt_renderer dpt_renderer;  /* per caller: one renderer per thread */

/* A renderer for one mesh topology: faces n_faces × 3 (indices < n_vertices); vt/ft optional
 * (required when params->texture is set). The camera, lights and material are upstream's
 * MeshRenderer (yfov 16°, camera at (0,0,1) looking down −z, ...). Copies what it needs.
 * Limits: width, height 1 … 8192, supersample 1 … 8, width·supersample and height·supersample
 * ≤ 16384. params NULL = defaults. The aspect ratio stays 1 as upstream's camera has it: a
 * non-square image stretches the same square view. Errors: DPT_ERR_INVALID_ARG (sizes, indices
 * out of range, texture without uv, NaN/Inf uv), DPT_ERR_NOMEM. */
dpt_status dpt_renderer_new(const dpt_render_params *params, int n_vertices,
                            const int32_t *faces, int n_faces, const float *vt, int n_vt,
                            const int32_t *ft, dpt_renderer **out, dpt_error *err);
void dpt_renderer_free(dpt_renderer *r);

/* Render one frame of vertices (n_vertices × 3, FLAME coordinates) into rgb (width × height × 3
 * bytes, rows top to bottom). Smooth vertex normals are computed from the vertices. Allocates
 * nothing. Errors: DPT_ERR_INVALID_ARG (NULL arguments, NaN/Inf coordinates: rgb untouched). */
dpt_status dpt_renderer_draw(dpt_renderer *r, const float *vertices, uint8_t *rgb, dpt_error *err);

#pragma GCC visibility pop

/* ------------------------------------------------------------------------------------------ */
/* Deprecated 0.2 names (removed in 0.4)                                                       */

#if defined(__GNUC__) || defined(__clang__)
#define DPT_DEPRECATED(use) __attribute__((deprecated("use " use)))
#else
#define DPT_DEPRECATED(use)
#endif

DPT_DEPRECATED("dpt_log_set_callback")
static inline void dpt_set_log_callback(dpt_log_fn fn, void *user) { dpt_log_set_callback(fn, user); }
DPT_DEPRECATED("dpt_load_params_default")
static inline dpt_load_params dpt_load_default_params(void) { return dpt_load_params_default(); }
DPT_DEPRECATED("dpt_gen_params_default")
static inline dpt_gen_params dpt_gen_default_params(void) { return dpt_gen_params_default(); }
DPT_DEPRECATED("dpt_stream_params_default")
static inline dpt_stream_params dpt_stream_default_params(void) { return dpt_stream_params_default(); }
DPT_DEPRECATED("dpt_flame_params_default")
static inline dpt_flame_params dpt_flame_default_params(void) { return dpt_flame_params_default(); }
DPT_DEPRECATED("dpt_render_params_default")
static inline dpt_render_params dpt_render_default_params(void) { return dpt_render_params_default(); }
DPT_DEPRECATED("dpt_model_generate")
static inline dpt_status dpt_generate(const dpt_model *model, const float *samples16k,
                                      size_t n_samples, const float *shape, const float *style,
                                      const dpt_gen_params *params, dpt_result **out,
                                      dpt_error *err) {
    return dpt_model_generate(model, samples16k, n_samples, shape, style, params, out, err);
}
DPT_DEPRECATED("dpt_model_generate_file")
static inline dpt_status dpt_generate_file(const dpt_model *model, const char *audio_path,
                                           const float *shape, const float *style,
                                           const dpt_gen_params *params, dpt_result **out,
                                           dpt_error *err) {
    return dpt_model_generate_file(model, audio_path, shape, style, params, out, err);
}
DPT_DEPRECATED("dpt_model_encode_audio")
static inline dpt_status dpt_encode_audio(const dpt_model *model, const float *samples16k,
                                          size_t n_samples, int n_threads, float **features,
                                          int *n_frames, dpt_error *err) {
    return dpt_model_encode_audio(model, samples16k, n_samples, n_threads, features, n_frames, err);
}
DPT_DEPRECATED("dpt_model_encode_audio_windows")
static inline dpt_status dpt_encode_audio_windows(const dpt_model *model, const float *samples16k,
                                                  size_t n_samples, int n_threads,
                                                  float **features, int *n_frames,
                                                  dpt_error *err) {
    return dpt_model_encode_audio_windows(model, samples16k, n_samples, n_threads, features,
                                          n_frames, err);
}
DPT_DEPRECATED("dpt_model_generate_from_features")
static inline dpt_status dpt_generate_from_features(const dpt_model *model, const float *features,
                                                    int n_frames, size_t n_samples16k,
                                                    const float *shape, const float *style,
                                                    const dpt_gen_params *params,
                                                    dpt_result **out, dpt_error *err) {
    return dpt_model_generate_from_features(model, features, n_frames, n_samples16k, shape, style,
                                            params, out, err);
}
DPT_DEPRECATED("dpt_model_extract_style")
static inline dpt_status dpt_extract_style(const dpt_model *model, const float *exp,
                                           const float *pose, int n_frames, int start,
                                           float *style_out, dpt_error *err) {
    return dpt_model_extract_style(model, exp, pose, n_frames, start, style_out, err);
}
DPT_DEPRECATED("dpt_renderer_draw")
static inline dpt_status dpt_render_frame(dpt_renderer *r, const float *vertices, uint8_t *rgb,
                                          dpt_error *err) {
    return dpt_renderer_draw(r, vertices, rgb, err);
}

#ifdef __cplusplus
}
#endif
#endif /* DPT_H */
