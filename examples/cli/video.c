/* mp4 video through the system ffmpeg: raw frames written to a pipe on ffmpeg's fd 3, the
 * speech given as a file (or as 16 kHz float samples on a second pipe, fd 4), encoded as upstream's
 * utils/media.py does: H.264 (libx264, crf 17, yuv420p) and the audio as AAC, cut to the
 * shorter stream (-shortest, as upstream's -fflags +shortest) and to the frames' duration (-t:
 * the audio then ends with the last frame; upstream's +shortest flag alone cuts it at an AAC
 * packet boundary up to one packet before the video's end). ffmpeg writes a temporary name
 * beside the output (outfile.c), renamed only when it exits cleanly.
 *
 * The frames go in as yuv420p, converted by the callers' threads (cli_rgb_to_yuv420, BT.601
 * limited range as ffmpeg's own rgb24 → yuv420p): half the bytes through the pipe, and ffmpeg's
 * single-threaded colour conversion, a third of its time at 640×640, is gone.
 *
 * All pipes are served by one poll loop (frames in, samples in, ffmpeg's stderr out), so neither
 * side can block the other whatever ffmpeg reads first. SIGPIPE is ignored while the encoder is
 * open: a dead ffmpeg shows up as EPIPE and its own first stderr line is reported. */
#define _GNU_SOURCE   /* F_SETPIPE_SZ */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

extern char **environ;

/* A descriptor at 10 or above, close-on-exec, so that the child's dup2 targets 3 and 4 can
 * never collide with it. */
static int high_fd(int fd) {
    int h = fcntl(fd, F_DUPFD_CLOEXEC, 10);
    close(fd);
    return h;
}

static int make_pipe(int *rd, int *wr) {
    int p[2];
    if (pipe(p) != 0) return -1;
    *rd = high_fd(p[0]);
    *wr = high_fd(p[1]);
    if (*rd < 0 || *wr < 0) {
        if (*rd >= 0) close(*rd);
        if (*wr >= 0) close(*wr);
        return -1;
    }
    return 0;
}

static void close_fd(int *fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

/* Keep the first part of ffmpeg's stderr for the failure message. */
static void drain_stderr(cli_video *v) {
    char buf[4096];
    for (;;) {
        ssize_t n = read(v->err_fd, buf, sizeof buf);
        if (n > 0) {
            size_t room = sizeof v->ff_msg - 1 - v->ff_len;
            size_t k = (size_t)n < room ? (size_t)n : room;
            memcpy(v->ff_msg + v->ff_len, buf, k);
            v->ff_len += k;
            v->ff_msg[v->ff_len] = '\0';
            continue;
        }
        if (n == 0) close_fd(&v->err_fd);
        return;   /* EAGAIN: nothing more for now */
    }
}

/* The first non-empty line of ffmpeg's stderr, or a description of how it ended. */
static void ffmpeg_reason(const cli_video *v, int status, char *out, size_t n) {
    const char *s = v->ff_msg;
    while (*s == '\n' || *s == '\r' || *s == ' ') s++;
    size_t len = strcspn(s, "\r\n");
    if (len) snprintf(out, n, "%.*s", (int)len, s);
    else if (WIFSIGNALED(status)) snprintf(out, n, "killed by signal %d", WTERMSIG(status));
    else snprintf(out, n, "exit status %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

int cli_video_open(cli_video *v, const cli_video_spec *spec, cli_err *e) {
    memset(v, 0, sizeof *v);
    v->video_fd = v->audio_fd = v->err_fd = -1;
    v->pid = -1;
    v->frame_bytes = (size_t)spec->width * (size_t)spec->height * 3 / 2;
    if (spec->width < 2 || spec->height < 2 || spec->width % 2 || spec->height % 2)
        return cli_fail(e, "%s: H.264 yuv420p video needs an even width and height, not %dx%d", spec->path,
                        spec->width, spec->height);
    if (cli_outfile_begin(&v->out, spec->path, e)) return 1;

    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &v->old_pipe);
    v->pipe_ignored = 1;

    int video_rd = -1, audio_rd = -1, err_wr = -1;
    if (make_pipe(&video_rd, &v->video_fd) || make_pipe(&v->err_fd, &err_wr) ||
        (spec->samples && make_pipe(&audio_rd, &v->audio_fd))) {
        cli_fail(e, "%s: cannot make a pipe: %s", spec->path, strerror(errno));
        goto fail;
    }
    v->samples = spec->samples;
    v->n_samples = spec->n_samples;
    fcntl(v->err_fd, F_SETFL, O_NONBLOCK);
    fcntl(v->video_fd, F_SETFL, O_NONBLOCK);
    if (v->audio_fd >= 0) fcntl(v->audio_fd, F_SETFL, O_NONBLOCK);
#ifdef F_SETPIPE_SZ
    fcntl(v->video_fd, F_SETPIPE_SZ, 1 << 20);   /* fewer wake-ups; best effort */
#endif

    char size[32], rate[16], duration[32];
    snprintf(size, sizeof size, "%dx%d", spec->width, spec->height);
    snprintf(rate, sizeof rate, "%d", spec->fps);
    const char *argv[64];
    int a = 0;
    argv[a++] = "ffmpeg";
    argv[a++] = "-hide_banner"; argv[a++] = "-loglevel"; argv[a++] = "error"; argv[a++] = "-nostdin";
    argv[a++] = "-y";
    argv[a++] = "-f"; argv[a++] = "rawvideo"; argv[a++] = "-pix_fmt"; argv[a++] = "yuv420p";
    argv[a++] = "-s"; argv[a++] = size; argv[a++] = "-framerate"; argv[a++] = rate;
    argv[a++] = "-i"; argv[a++] = "pipe:3";
    int audio = spec->samples || spec->audio_path;
    if (spec->samples) {
        argv[a++] = "-f"; argv[a++] = "f32le"; argv[a++] = "-ar"; argv[a++] = "16000";
        argv[a++] = "-ac"; argv[a++] = "1"; argv[a++] = "-i"; argv[a++] = "pipe:4";
    } else if (spec->audio_path) {
        argv[a++] = "-i"; argv[a++] = spec->audio_path;
    }
    argv[a++] = "-map"; argv[a++] = "0:v:0";
    if (audio) {
        argv[a++] = "-map"; argv[a++] = "1:a:0";
    }
    argv[a++] = "-c:v"; argv[a++] = "libx264"; argv[a++] = "-crf"; argv[a++] = "17";
    argv[a++] = "-pix_fmt"; argv[a++] = "yuv420p";
    if (audio) {
        argv[a++] = "-c:a"; argv[a++] = "aac"; argv[a++] = "-shortest";
        if (spec->duration > 0) {
            snprintf(duration, sizeof duration, "%.6f", spec->duration);
            argv[a++] = "-t"; argv[a++] = duration;
        }
    }
    argv[a++] = "-f"; argv[a++] = "mp4";
    argv[a++] = v->out.tmp;
    argv[a] = NULL;

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, err_wr, 2);
    posix_spawn_file_actions_adddup2(&fa, video_rd, 3);
    if (audio_rd >= 0) posix_spawn_file_actions_adddup2(&fa, audio_rd, 4);
    sigset_t def;   /* the child gets default SIGPIPE/SIGINT, not our ignored SIGPIPE */
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    sigaddset(&def, SIGINT);
    posix_spawnattr_setsigdefault(&at, &def);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int rc = posix_spawnp(&pid, "ffmpeg", &fa, &at, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close_fd(&video_rd);
    close_fd(&audio_rd);
    close_fd(&err_wr);
    if (rc != 0) {
        if (rc == ENOENT) cli_fail(e, "ffmpeg not found: install it (apt install ffmpeg)");
        else cli_fail(e, "%s: cannot start ffmpeg: %s", spec->path, strerror(rc));
        goto fail;
    }
    v->pid = pid;
    return 0;
fail:
    close_fd(&video_rd);
    close_fd(&audio_rd);
    close_fd(&err_wr);
    cli_video_abort(v);
    return 1;
}

/* Serve the pipes until `len` bytes of buf went to the video pipe (buf NULL: until the audio is
 * all written or refused). Returns 0, or -1 when ffmpeg stopped reading (errno EPIPE etc.). */
static int pump(cli_video *v, const uint8_t *buf, size_t len) {
    size_t done = 0;
    for (;;) {
        int want_video = buf && done < len;
        int want_audio = v->audio_fd >= 0;
        if (!want_video && (buf || !want_audio)) return 0;
        struct pollfd pf[3];
        int n = 0, iv = -1, ia = -1, ie = -1;
        if (want_video) pf[iv = n++] = (struct pollfd){v->video_fd, POLLOUT, 0};
        if (want_audio) pf[ia = n++] = (struct pollfd){v->audio_fd, POLLOUT, 0};
        if (v->err_fd >= 0) pf[ie = n++] = (struct pollfd){v->err_fd, POLLIN, 0};
        if (poll(pf, (nfds_t)n, -1) < 0) {
            if (errno == EINTR) {
                if (cli_interrupted()) return -1;
                continue;
            }
            return -1;
        }
        if (ie >= 0 && pf[ie].revents) drain_stderr(v);
        if (ia >= 0 && pf[ia].revents) {
            const char *src = (const char *)v->samples;
            size_t total = v->n_samples * sizeof(float);
            ssize_t w = write(v->audio_fd, src + v->audio_done, total - v->audio_done);
            if (w > 0) v->audio_done += (size_t)w;
            /* all written, or ffmpeg closed it (it may stop reading once -shortest is met) */
            if (v->audio_done == total || (w < 0 && errno != EAGAIN && errno != EINTR)) close_fd(&v->audio_fd);
        }
        if (iv >= 0 && pf[iv].revents) {
            ssize_t w = write(v->video_fd, buf + done, len - done);
            if (w > 0) done += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR) return -1;
        }
    }
}

/* Wait for ffmpeg while collecting its stderr; returns its wait status. */
static int reap(cli_video *v) {
    while (v->err_fd >= 0) {
        struct pollfd pf = {v->err_fd, POLLIN, 0};
        if (poll(&pf, 1, -1) < 0 && errno != EINTR) break;
        drain_stderr(v);
    }
    int status = 0;
    while (waitpid(v->pid, &status, 0) < 0 && errno == EINTR) {}
    v->pid = -1;
    return status;
}

static void restore_sigpipe(cli_video *v) {
    if (v->pipe_ignored) sigaction(SIGPIPE, &v->old_pipe, NULL);
    v->pipe_ignored = 0;
}

/* Luma of pixels x0 … width − 1 of one row, chroma of blocks c0 … width / 2 − 1 of a row pair. */
static void luma_row(const uint8_t *p, int x0, int width, uint8_t *o) {
    for (int x = x0; x < width; x++)
        o[x] = (uint8_t)(((66 * p[3 * x] + 129 * p[3 * x + 1] + 25 * p[3 * x + 2] + 128) >> 8) + 16);
}

static void chroma_row(const uint8_t *r0, const uint8_t *r1, int c0, int width, uint8_t *u, uint8_t *v) {
    for (int x = c0; x < width / 2; x++) {   /* each 2 × 2 block from its mean colour */
        const uint8_t *a = r0 + 6 * x, *b = r1 + 6 * x;
        int R = a[0] + a[3] + b[0] + b[3], G = a[1] + a[4] + b[1] + b[4], B = a[2] + a[5] + b[2] + b[5];
        u[x] = (uint8_t)(((-38 * R - 74 * G + 112 * B + 512) >> 10) + 128);
        v[x] = (uint8_t)(((112 * R - 94 * G - 18 * B + 512) >> 10) + 128);
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define YUV_SIMD 1
/* 16 pixels (48 bytes) → their R, G, B bytes: three byte shuffles per channel */
typedef struct rgb_shuffles { __m128i m[3][3]; } rgb_shuffles;

__attribute__((target("avx2"))) static rgb_shuffles make_shuffles(void) {
    rgb_shuffles s;
    for (int ch = 0; ch < 3; ch++)
        for (int src = 0; src < 3; src++) {
            uint8_t b[16];
            for (int i = 0; i < 16; i++) {
                int at = 3 * i + ch - 16 * src;
                b[i] = at >= 0 && at < 16 ? (uint8_t)at : 0x80;
            }
            s.m[ch][src] = _mm_loadu_si128((const __m128i *)b);
        }
    return s;
}

__attribute__((target("avx2"))) static inline void split_rgb(const rgb_shuffles *s, const uint8_t *p, __m128i *c) {
    __m128i a = _mm_loadu_si128((const __m128i *)p), b = _mm_loadu_si128((const __m128i *)(p + 16)),
            d = _mm_loadu_si128((const __m128i *)(p + 32));
    for (int ch = 0; ch < 3; ch++)
        c[ch] = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(a, s->m[ch][0]), _mm_shuffle_epi8(b, s->m[ch][1])),
                             _mm_shuffle_epi8(d, s->m[ch][2]));
}

/* The same integer formulas as luma_row / chroma_row, 16 pixels at a time: luma in unsigned
 * 16-bit lanes (66·255 + 129·255 + 25·255 + 128 < 2^16), chroma in 32-bit (madd of pairs). */
__attribute__((target("avx2"))) static void rgb_to_yuv420_avx2(const uint8_t *rgb, int width, int height,
                                                               uint8_t *Y, uint8_t *U, uint8_t *V) {
    const rgb_shuffles s = make_shuffles();
    const __m128i k66 = _mm_set1_epi16(66), k129 = _mm_set1_epi16(129), k25 = _mm_set1_epi16(25);
    const __m128i k128 = _mm_set1_epi16(128), k16 = _mm_set1_epi8(16);
    const __m128i ku_rg = _mm_setr_epi16(-38, -74, -38, -74, -38, -74, -38, -74);
    const __m128i kv_rg = _mm_setr_epi16(112, -94, 112, -94, 112, -94, 112, -94);
    const __m128i ku_b = _mm_setr_epi16(112, 512, 112, 512, 112, 512, 112, 512);
    const __m128i kv_b = _mm_setr_epi16(-18, 512, -18, 512, -18, 512, -18, 512);
    const __m128i one = _mm_set1_epi16(1), c128 = _mm_set1_epi32(128);
    const int w16 = width & ~15;
    for (int y = 0; y < height; y += 2) {
        const uint8_t *r0 = rgb + (size_t)y * width * 3, *r1 = r0 + (size_t)width * 3;
        uint8_t *y0 = Y + (size_t)y * width, *y1 = y0 + width;
        uint8_t *u = U + (size_t)(y / 2) * (width / 2), *v = V + (size_t)(y / 2) * (width / 2);
        for (int x = 0; x < w16; x += 16) {
            __m128i t[3], b[3], sum[3];
            split_rgb(&s, r0 + 3 * x, t);
            split_rgb(&s, r1 + 3 * x, b);
            for (int row = 0; row < 2; row++) {
                const __m128i *c = row ? b : t;
                __m128i out[2];
                for (int h = 0; h < 2; h++) {
                    __m128i R = _mm_cvtepu8_epi16(h ? _mm_srli_si128(c[0], 8) : c[0]);
                    __m128i G = _mm_cvtepu8_epi16(h ? _mm_srli_si128(c[1], 8) : c[1]);
                    __m128i B = _mm_cvtepu8_epi16(h ? _mm_srli_si128(c[2], 8) : c[2]);
                    __m128i l = _mm_add_epi16(_mm_add_epi16(_mm_mullo_epi16(R, k66), _mm_mullo_epi16(G, k129)),
                                              _mm_add_epi16(_mm_mullo_epi16(B, k25), k128));
                    out[h] = _mm_srli_epi16(l, 8);
                }
                _mm_storeu_si128((__m128i *)((row ? y1 : y0) + x), _mm_add_epi8(_mm_packus_epi16(out[0], out[1]), k16));
            }
            for (int ch = 0; ch < 3; ch++) {   /* the 2 × 2 sums of 8 blocks */
                __m128i lo = _mm_add_epi16(_mm_cvtepu8_epi16(t[ch]), _mm_cvtepu8_epi16(b[ch]));
                __m128i hi = _mm_add_epi16(_mm_cvtepu8_epi16(_mm_srli_si128(t[ch], 8)),
                                           _mm_cvtepu8_epi16(_mm_srli_si128(b[ch], 8)));
                sum[ch] = _mm_hadd_epi16(lo, hi);
            }
            __m128i rg_lo = _mm_unpacklo_epi16(sum[0], sum[1]), rg_hi = _mm_unpackhi_epi16(sum[0], sum[1]);
            __m128i b1_lo = _mm_unpacklo_epi16(sum[2], one), b1_hi = _mm_unpackhi_epi16(sum[2], one);
            __m128i u_lo = _mm_srai_epi32(_mm_add_epi32(_mm_madd_epi16(rg_lo, ku_rg), _mm_madd_epi16(b1_lo, ku_b)), 10);
            __m128i u_hi = _mm_srai_epi32(_mm_add_epi32(_mm_madd_epi16(rg_hi, ku_rg), _mm_madd_epi16(b1_hi, ku_b)), 10);
            __m128i v_lo = _mm_srai_epi32(_mm_add_epi32(_mm_madd_epi16(rg_lo, kv_rg), _mm_madd_epi16(b1_lo, kv_b)), 10);
            __m128i v_hi = _mm_srai_epi32(_mm_add_epi32(_mm_madd_epi16(rg_hi, kv_rg), _mm_madd_epi16(b1_hi, kv_b)), 10);
            __m128i uu = _mm_packs_epi32(_mm_add_epi32(u_lo, c128), _mm_add_epi32(u_hi, c128));
            __m128i vv = _mm_packs_epi32(_mm_add_epi32(v_lo, c128), _mm_add_epi32(v_hi, c128));
            _mm_storel_epi64((__m128i *)(u + x / 2), _mm_packus_epi16(uu, uu));
            _mm_storel_epi64((__m128i *)(v + x / 2), _mm_packus_epi16(vv, vv));
        }
        luma_row(r0, w16, width, y0);
        luma_row(r1, w16, width, y1);
        chroma_row(r0, r1, w16 / 2, width, u, v);
    }
}
#endif

#ifdef YUV_SIMD
static int yuv_avx2;
static pthread_once_t yuv_once = PTHREAD_ONCE_INIT;

static void yuv_init(void) {   /* DPT_ARCH=scalar as for the library's kernels */
    const char *env = getenv("DPT_ARCH");
    yuv_avx2 = __builtin_cpu_supports("avx2") && !(env && !strcmp(env, "scalar"));
}
#endif

void cli_rgb_to_yuv420(const uint8_t *rgb, int width, int height, uint8_t *yuv) {
    uint8_t *Y = yuv, *U = yuv + (size_t)width * height, *V = U + (size_t)width * height / 4;
#ifdef YUV_SIMD
    pthread_once(&yuv_once, yuv_init);
    if (yuv_avx2 && width % 2 == 0 && height % 2 == 0) {
        rgb_to_yuv420_avx2(rgb, width, height, Y, U, V);
        return;
    }
#endif
    for (int y = 0; y < height; y++) luma_row(rgb + (size_t)y * width * 3, 0, width, Y + (size_t)y * width);
    for (int y = 0; y < height / 2; y++) {
        const uint8_t *r0 = rgb + (size_t)(2 * y) * width * 3;
        chroma_row(r0, r0 + (size_t)width * 3, 0, width, U + (size_t)y * (width / 2), V + (size_t)y * (width / 2));
    }
}

int cli_video_write(cli_video *v, const uint8_t *yuv, cli_err *e) {
    if (v->ended) return 0;
    if (pump(v, yuv, v->frame_bytes) == 0) {
        v->n_frames++;
        return 0;
    }
    int interrupted = cli_interrupted();
    close_fd(&v->video_fd);
    close_fd(&v->audio_fd);
    int status = reap(v);
    if (!interrupted && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        v->ended = 1;   /* -shortest: the audio ended first and ffmpeg finished; the rest is cut */
        return 0;
    }
    char why[512];
    ffmpeg_reason(v, status, why, sizeof why);
    if (interrupted) cli_fail(e, "%s: interrupted", v->out.path);
    else cli_fail(e, "%s: ffmpeg failed: %s", v->out.path, why);
    cli_video_abort(v);
    return 1;
}

static uint64_t be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

/* 1 if the file is a whole mp4: top-level boxes that end exactly at the end of the file, one of
 * them the index ('moov'). ffmpeg exits 0 after some write errors (EFBIG, ENOSPC at the end),
 * leaving a cut file that must not be renamed into place. */
static int mp4_complete(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int ok = 0, moov = 0;
    if (fseeko(f, 0, SEEK_END) == 0) {
        const uint64_t end = (uint64_t)ftello(f);
        uint64_t pos = 0;
        while (pos + 8 <= end) {
            uint8_t h[16];
            if (fseeko(f, (off_t)pos, SEEK_SET) != 0 || fread(h, 1, 8, f) != 8) break;
            uint64_t size = be(h, 4);
            if (size == 1 && fread(h + 8, 1, 8, f) == 8) size = be(h + 8, 8);
            else if (size == 0) size = end - pos;   /* the last box, to the end of the file */
            if (size < 8 || size > end - pos) break;
            moov |= memcmp(h + 4, "moov", 4) == 0;
            pos += size;
        }
        ok = moov && pos == end;
    }
    fclose(f);
    return ok;
}

int cli_video_close(cli_video *v, cli_err *e) {
    int status = 0;
    if (!v->ended) {
        close_fd(&v->video_fd);   /* end of the video stream; the audio may still be flowing */
        pump(v, NULL, 0);
        close_fd(&v->audio_fd);
        status = reap(v);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char why[512];
        ffmpeg_reason(v, status, why, sizeof why);
        cli_fail(e, "%s: ffmpeg failed: %s", v->out.path, why);
        cli_video_abort(v);
        return 1;
    }
    if (!v->out.direct && !mp4_complete(v->out.tmp)) {
        char why[512];
        ffmpeg_reason(v, status, why, sizeof why);
        char msg[1024];
        snprintf(msg, sizeof msg, "%s: ffmpeg wrote an incomplete file (disk full?)%s%s", v->out.path,
                 v->ff_msg[0] ? ": " : "", v->ff_msg[0] ? why : "");
        cli_outfile_fail(&v->out, e, msg);   /* ffmpeg's line names the temporary */
        cli_video_abort(v);
        return 1;
    }
    restore_sigpipe(v);
    int rc = cli_outfile_commit(&v->out, e);
    cli_video_abort(v);
    return rc;
}

void cli_video_abort(cli_video *v) {
    close_fd(&v->video_fd);
    close_fd(&v->audio_fd);
    if (v->pid > 0) {
        kill(v->pid, SIGTERM);
        reap(v);
    }
    close_fd(&v->err_fd);
    cli_outfile_discard(&v->out);
    restore_sigpipe(v);
}
