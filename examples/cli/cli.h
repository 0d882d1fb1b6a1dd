/* Shared code of the command-line programs (examples/dpt-*.c): option parsing, input files,
 * output writers, the progress bar, the SVG plot and the batch runner. Built on the public API
 * (dpt.h) only; every .c file of examples/cli/ is linked into every program. */
#ifndef DPT_CLI_H
#define DPT_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <sys/types.h>

#include "dpt.h"

/* ------------------------------------------------------------------------------------------ */
/* messages                                                                                     */

/* The program's name, prefixed to every message ("dpt-generate"). Set first thing in main. */
extern const char *cli_prog;

/* One failure, one line: "FILE: reason" (no program name, no newline). */
typedef struct cli_err {
    char msg[1536];
} cli_err;

#if defined(__GNUC__)
#define CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CLI_PRINTF(a, b)
#endif

/* Fill e (if not NULL) with a formatted one-line message. Returns 1 (the failure code). */
int cli_fail(cli_err *e, const char *fmt, ...) CLI_PRINTF(2, 3);
/* Print "prog: message" on stderr. Returns 1. */
int cli_error(const char *fmt, ...) CLI_PRINTF(1, 2);
/* Print "prog: warning: message" on stderr unless quiet. */
void cli_warn(const char *fmt, ...) CLI_PRINTF(1, 2);
extern int cli_quiet;
/* Route the library's log messages through cli_warn (so --quiet silences them). */
void cli_install_log(void);

/* ------------------------------------------------------------------------------------------ */
/* options                                                                                      */

/* One option of a program. names: '|'-separated spellings, the first is the main one
 * ("-sa|--scale-audio"); long names also match with '_' for '-' (upstream's argparse spelling)
 * and as "--name=value". metavar NULL: a flag without value. help: one line; defaults are part
 * of it ("(default 1.15)"). An id of 0 ends a table; a NULL names with an id is a section
 * heading printed from help. */
typedef struct cli_option {
    int id;
    const char *names;
    const char *metavar;
    const char *help;
} cli_option;

#define CLI_END 0            /* cli_next: no more arguments */
#define CLI_POSITIONAL (-2)  /* cli_next: a non-option argument (in *value) */
#define CLI_BAD (-1)         /* cli_next: an error was printed; exit with status 2 */

typedef struct cli_parser {
    int argc;
    char **argv;
    int i;
    const cli_option *opts;
    char name[64];           /* the spelling used of the last option returned */
} cli_parser;

void cli_parser_init(cli_parser *p, int argc, char **argv, const cli_option *opts);
/* Next option: its id (value set for options that take one), CLI_POSITIONAL, CLI_END, or CLI_BAD
 * after printing "prog: unknown option '--x' (see --help)" or "prog: option '-a' needs a value". */
int cli_next(cli_parser *p, const char **value);
/* usage: first line(s) after "usage: "; then every option with its metavar and help. */
void cli_print_help(FILE *f, const char *usage, const char *intro, const cli_option *opts);

/* Value parsers: 0 on success; on failure print "prog: OPT: 'v' is not ..." and return 1. */
int cli_parse_int(const char *opt, const char *v, long lo, long hi, long *out);
int cli_parse_u64(const char *opt, const char *v, uint64_t *out);
int cli_parse_float(const char *opt, const char *v, float *out);
/* --cfg-cond LIST: comma-separated audio,style ('' = none) → DPT_COND_* bits. */
int cli_parse_cfg_cond(const char *v, unsigned *out);
/* --precision f32|bf16 → DPT_PRECISION_*; prints the error and returns 1 on anything else. */
int cli_parse_precision(const char *v, dpt_precision *out);
/* The library's model-free checks of generation / stream parameters, run before anything is
 * loaded; on failure one line naming the option (not the struct field) and 1. */
int cli_check_gen_params(const dpt_gen_params *p);
int cli_check_stream_params(const dpt_stream_params *p);

/* ------------------------------------------------------------------------------------------ */
/* paths and input files                                                                        */

int cli_ends_with(const char *s, const char *suffix);
/* "(3, 100)" */
void cli_shape_str(const dpt_array *a, char *buf, size_t n);
/* 1 if the file starts with the .npy magic, 0 if not (or unreadable). */
int cli_is_npy(const char *path);
/* 1 if the file starts like a zip archive (.npz), 0 if not (or unreadable). */
int cli_is_npz(const char *path);
/* Create the parent directories of path (as upstream's mkdir(parents=True)). */
int cli_make_parents(const char *path, cli_err *e);

/* The FLAME shape of the speaker, as upstream's demo reads it: a .npy of (100,) or
 * (frames, 100) (first frame used), or an .npz with key 'shape'. Finite values only. */
int cli_load_shape(const char *path, float shape[100], cli_err *e);

/* The style vector (info->d_style values): a .npy (d_style,) or (1, d_style); an .npz with key
 * 'style'; or a motion clip .npz with 'exp' (frames, 50) and 'pose' (frames, 6), from whose frames
 * [start, start + n_motions) the style is extracted on the fly (dpt_model_extract_style). */
int cli_load_style(const dpt_model *model, const char *path, int start, float *style, cli_err *e);

/* Audio features saved by --save-audio-features: a .npy (frames, dim), finite. */
int cli_load_features(const char *path, int dim, dpt_array *out, cli_err *e);

/* Speech for -a: a .npy (recognised by its magic, whatever the name) holds 16 kHz samples,
 * (n,) mono or (n, channels) averaged, float32 or float64; anything else is an audio file for
 * dpt_audio_load (needs libsndfile; a NO_SNDFILE=1 build says so). *samples: free with dpt_free. */
int cli_load_audio(const char *path, float **samples, size_t *n_samples, cli_err *e);

/* --noise-from: standard-normal draws replayed from an array (flattened, upstream's order) in
 * place of the built-in generator: p->noise_fn = cli_replay_fn, p->noise_user = &replay. */
typedef struct cli_replay {
    const float *data;
    size_t n, pos;
} cli_replay;
void cli_replay_init(cli_replay *r, const dpt_array *draws);
int cli_replay_fn(void *user, float *dst, size_t n);

/* A motion clip's exp (frames, 50) and pose (frames, 6) from an .npz (same frame count). */
int cli_load_motion(const char *path, dpt_array *exp, dpt_array *pose, cli_err *e);

/* ------------------------------------------------------------------------------------------ */
/* atomic outputs (outfile.c)                                                                   */

/* An output file written under a temporary name in its destination directory
 * (".NAME.tmp-XXXXXX.EXT", extension kept) and renamed over NAME only when complete: a failing
 * run leaves no half-written file and never clobbers an existing good one. */
typedef struct cli_outfile {
    char *path;   /* the final name */
    char *tmp;    /* the temporary, to be written by the caller */
    int direct;   /* path is a device, FIFO or socket (/dev/stdout, /dev/full): tmp = path, written
                     in place, never renamed over nor removed */
} cli_outfile;

/* Create the parent directories and the (empty) temporary. 0, or 1 with e. */
int cli_outfile_begin(cli_outfile *o, const char *path, cli_err *e);
/* Rename the temporary over path (the temporary is removed if that fails). 0, or 1 with e. */
int cli_outfile_commit(cli_outfile *o, cli_err *e);
/* Remove the temporary (if still there) and free; safe on a zeroed or committed struct. */
void cli_outfile_discard(cli_outfile *o);
/* cli_fail with msg, the temporary's name replaced by the final one (library messages name the
 * file they were given). Returns 1. */
int cli_outfile_fail(const cli_outfile *o, cli_err *e, const char *msg);

/* A directory of outputs (PNG frames, OBJ files): written into ".DIR.tmp-XXXXXX" beside DIR; the
 * commit renames it to DIR when DIR is missing or empty, else moves its files into DIR. */
typedef struct cli_outdir {
    char *path, *tmp;
} cli_outdir;

int cli_outdir_begin(cli_outdir *d, const char *dir, cli_err *e);
/* "TMPDIR/name" (malloc'ed; NULL when out of memory). */
char *cli_outdir_file(const cli_outdir *d, const char *name);
int cli_outdir_commit(cli_outdir *d, cli_err *e);
/* cli_fail with msg, the temporary directory's name replaced by DIR's. Returns 1. */
int cli_outdir_fail(const cli_outdir *d, cli_err *e, const char *msg);
void cli_outdir_discard(cli_outdir *d);

/* ------------------------------------------------------------------------------------------ */
/* video through the system ffmpeg (video.c)                                                    */

typedef struct cli_video_spec {
    const char *path;          /* the .mp4 to write (atomically) */
    int width, height, fps;    /* even sizes (H.264 yuv420p) */
    const char *audio_path;    /* speech muxed as AAC: a file ffmpeg reads, or NULL */
    const float *samples;      /* or 16 kHz mono samples piped to ffmpeg (a .npy input); NULL */
    size_t n_samples;
    double duration;           /* seconds of the frames (> 0: the audio is cut there, -t) */
} cli_video_spec;

typedef struct cli_video {
    pid_t pid;
    int video_fd, audio_fd, err_fd;
    size_t frame_bytes;
    const float *samples;
    size_t n_samples, audio_done;
    long n_frames;             /* frames taken by ffmpeg */
    int ended;                 /* ffmpeg finished early (-shortest: the audio was shorter) */
    char ff_msg[1024];         /* the start of ffmpeg's stderr */
    size_t ff_len;
    cli_outfile out;
    struct sigaction old_pipe;
    int pipe_ignored;
} cli_video;

/* Start ffmpeg (libx264 crf 17 yuv420p, AAC audio, -shortest) writing a temporary beside
 * spec->path. "ffmpeg not found: install it (apt install ffmpeg)" when it is not on PATH. */
int cli_video_open(cli_video *v, const cli_video_spec *spec, cli_err *e);
/* RGB (width × height × 3, rows top to bottom; even sizes) → yuv420p planes Y, U, V
 * (width × height × 3 / 2 bytes), BT.601 limited range as ffmpeg's default conversion. */
void cli_rgb_to_yuv420(const uint8_t *rgb, int width, int height, uint8_t *yuv);
/* One frame, yuv420p (cli_rgb_to_yuv420). On failure (ffmpeg died: its
 * first stderr line is the message) the encoder is aborted. When the audio is shorter than the
 * frames, ffmpeg ends the video with it (-shortest): later frames are dropped (v->ended). */
int cli_video_write(cli_video *v, const uint8_t *yuv, cli_err *e);
/* Finish: end of stream, wait for ffmpeg, rename into place on success. */
int cli_video_close(cli_video *v, cli_err *e);
/* Stop ffmpeg, remove the temporary (safe after close or a failed write). */
void cli_video_abort(cli_video *v);

/* ------------------------------------------------------------------------------------------ */
/* outputs                                                                                      */

typedef enum cli_format { CLI_NPZ = 0, CLI_NPY, CLI_CSV, CLI_JSON } cli_format;

/* "npz" → CLI_NPZ ...; -1 if unknown. */
int cli_format_parse(const char *s);
const char *cli_format_name(cli_format f);
/* Format implied by an output name's extension (.npz .npy .csv .json), or -1. */
int cli_format_from_path(const char *path);

/* Output file of repetition rep of n_reps, as upstream names them: OUT with its extension
 * replaced by ext (".npz"), and OUT_000.npz, OUT_001.npz, ... when n_reps > 1. tag (NULL or
 * "exp") adds "_exp" before the extension (the per-array .npy files). malloc'ed. */
char *cli_output_name(const char *out, int rep, int n_reps, const char *tag, const char *ext);

/* Write repetition rep of res in the given format at the upstream-style name for out:
 *   npz   exp (F, 50), pose (F, 6), shape (F, 100) float32, deflate-compressed (np.savez_compressed)
 *   npy   three files OUT_exp.npy, OUT_pose.npy, OUT_shape.npy
 *   csv   one row per frame: frame, time, exp_0..exp_49, pose_0..pose_5, shape_0..shape_99
 *   json  {"fps", "n_frames", "exp": [[...]], "pose": [[...]], "shape": [[...]]}
 * Numbers are printed with 9 significant digits (float32 round trip). */
int cli_write_result(const dpt_result *res, int rep, const char *out, cli_format fmt, int fps,
                     cli_err *e);
/* A float32 .npy written atomically (parents created). 0, or 1 with e. */
int cli_write_npy(const char *path, const float *data, int ndim, const int64_t *shape, cli_err *e);

/* ------------------------------------------------------------------------------------------ */
/* progress                                                                                     */

/* A progress bar on stderr (only when it is a terminal and not quiet): windows × steps, elapsed
 * time and ETA. Ctrl-C cancels the generation (the callback returns non-zero). */
typedef struct cli_progress {
    int enabled;
    double t_start, t_last_draw;
    double t_first;     /* time of the first step, and the steps done then (the ETA's rate) */
    long done_first;
    int drawn;
    char label[160];
} cli_progress;

void cli_progress_init(cli_progress *pg, int quiet);
/* Start a new bar labelled label (e.g. "job 2/5"); shows "label: status" until the first step. */
void cli_progress_begin(cli_progress *pg, const char *label, const char *status);
/* Seconds of the monotonic clock (timings). */
double cli_now(void);
/* A dpt_progress_fn; user is the cli_progress. */
int cli_progress_fn(void *user, int window, int n_windows, int step, int n_steps);
/* A plain count bar: "[####----]  42%  frame 105/250  00:01 elapsed, ETA 00:02". */
void cli_progress_count(cli_progress *pg, long done, long total, const char *unit);
/* Clear the bar's line. */
void cli_progress_end(cli_progress *pg);
/* 1 once Ctrl-C was pressed (after cli_progress_init). */
int cli_interrupted(void);

/* ------------------------------------------------------------------------------------------ */
/* mesh outputs: vertices, OBJ, PNG frames, video (meshout.c)                                   */

typedef struct cli_render_opts {
    int width, height;       /* --size WxH (default 640x640) */
    int supersample;         /* --supersample K (default 1) */
    int black_bg;            /* --black-bg */
    const char *tex_path;    /* --tex IMAGE (PNG/JPEG; needs uv in the FLAME file) */
    int n_threads;           /* --threads (0 = all cores): frames rendered in parallel */
} cli_render_opts;

void cli_render_opts_default(cli_render_opts *o);
/* "640x480" → 640, 480 (16 ... 8192); prints the error and returns 1 otherwise. */
int cli_parse_size(const char *opt, const char *v, int *w, int *h);

/* A mesh topology (borrowed): faces n_faces × 3; uv (vt n_vt × 2, ft n_faces × 3) or NULL. */
typedef struct cli_mesh {
    int n_vertices, n_faces, n_vt;
    const int32_t *faces, *ft;
    const float *vt;
} cli_mesh;

/* Vertices of frames first .. first + n − 1 into vertices (n × n_vertices × 3). 0, or 1 with e. */
typedef int (*cli_vertices_fn)(void *user, int first, int n, float *vertices, cli_err *e);

typedef struct cli_mesh_outputs {
    const char *vertices_npy;  /* (frames, V, 3) float32 */
    const char *obj_dir;       /* DIR/000000.obj, ... (vt and f v/vt with uv) */
    const char *frames_dir;    /* DIR/000000.png, ... */
    const char *video;         /* .mp4 */
    const char *audio_path;    /* speech for the video (a file ffmpeg reads) or NULL */
    const float *samples;      /* or 16 kHz samples piped to ffmpeg; NULL */
    size_t n_samples;
    int fps;
} cli_mesh_outputs;

/* Compute, render and write n_frames frames to every output asked for (chunks of frames,
 * rendering on ro->n_threads threads while a writer thread feeds the outputs). Every output is
 * written under a temporary name and renamed at the end; on failure none is left. */
int cli_mesh_write(const cli_mesh *mesh, int n_frames, cli_vertices_fn vertices_fn, void *user,
                   const cli_render_opts *ro, const cli_mesh_outputs *out, cli_progress *pg, cli_err *e);

/* A FLAME clip (borrowed arrays): exp n_frames × 50, pose n_frames × 6, shape n_frames × 100
 * (shape_per_frame) or 100 values for every frame. */
typedef struct cli_flame_clip {
    const dpt_flame *flame;
    int n_frames;
    const float *shape;
    int shape_per_frame;
    const float *exp, *pose;
    dpt_flame_params params;   /* no_head, n_threads */
} cli_flame_clip;

/* The clip's FLAME meshes (dpt_flame_vertices) to the outputs, as cli_mesh_write (flameout.c). */
int cli_flame_write(const cli_flame_clip *clip, const cli_render_opts *ro, const cli_mesh_outputs *out,
                    cli_progress *pg, cli_err *e);

/* ------------------------------------------------------------------------------------------ */
/* plot                                                                                         */

/* A self-contained SVG of the clip over time, one panel per trace: the waveform (g#waveform),
 * jaw opening = pose[:, 3] (g#jaw), expression energy = ‖exp‖₂ per frame (g#expression-energy)
 * and head rotation pose[:, 0..2] (g#head-rotation with paths .head-rot-x, .head-rot-y,
 * .head-rot-z); every repetition is drawn; a time axis in seconds. samples: 16 kHz mono. */
int cli_write_plot(const char *path, const char *title, const float *samples, size_t n_samples,
                   const dpt_result *res, int fps, cli_err *e);

/* ------------------------------------------------------------------------------------------ */
/* batch                                                                                        */

/* One line of a jobs file: audio, shape, style ("-" = none), output, optional plot. */
typedef struct cli_job {
    int line;
    const char *audio, *shape, *style, *output, *plot;
} cli_job;

typedef struct cli_jobs {
    cli_job *jobs;
    int n;
    int n_bad;     /* malformed lines (each reported on stderr while reading) */
    char *text;    /* the file's contents (the fields point into it) */
} cli_jobs;

/* Read a TSV jobs file: tab-separated "audio shape style output [plot]"; '#' comments and blank
 * lines skipped. A malformed line is reported ("prog: JOBS.tsv:7: reason") and counted in n_bad.
 * Returns non-zero (with e) only when the file cannot be read at all. */
int cli_jobs_read(const char *path, cli_jobs *jobs, cli_err *e);
void cli_jobs_free(cli_jobs *jobs);

/* Run fn on every job, continuing past failures; each failure is one line on stderr
 * ("prog: JOBS.tsv:LINE: message"). Returns the number of failed jobs (plus malformed lines). */
typedef int (*cli_job_fn)(void *user, const cli_job *job, int index, int n_jobs, cli_err *e);
/* stats (or NULL): after each job one line "job<TAB>line<TAB>ok<TAB>rss_kib<TAB>hwm_kib<TAB>fds",
 * flushed (the process's resident and peak memory, its open descriptors less stats' own; -1
 * where /proc/self is not readable): the soak bench's figures (tools/soak.py). */
int cli_jobs_run(const char *path, const cli_jobs *jobs, cli_job_fn fn, void *user, FILE *stats);

#endif
