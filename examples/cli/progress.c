/* Progress bar on stderr (terminal only): windows × diffusion steps, elapsed time, ETA. */
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static volatile sig_atomic_t interrupted = 0;

static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
    signal(SIGINT, SIG_DFL);   /* a second Ctrl-C stops at once */
}

int cli_interrupted(void) { return interrupted != 0; }

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now(void) { return cli_now(); }

static int term_columns(void) {
    struct winsize w;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_col >= 20) return w.ws_col;
    return 80;
}

static void clock_str(double s, char *buf, size_t n) {
    if (!(s >= 0) || s > 359999) {
        snprintf(buf, n, "--:--");
        return;
    }
    int t = (int)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%02d:%02d", t / 60, t % 60);
}

void cli_progress_init(cli_progress *pg, int quiet) {
    memset(pg, 0, sizeof *pg);
    pg->enabled = !quiet && isatty(STDERR_FILENO);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

void cli_progress_begin(cli_progress *pg, const char *label, const char *status) {
    snprintf(pg->label, sizeof pg->label, "%s", label ? label : "");
    pg->t_start = now();
    pg->t_last_draw = 0;
    pg->t_first = 0;
    pg->done_first = -1;
    if (!pg->enabled) return;
    fprintf(stderr, "\r%s%s%s\033[K", pg->label, *pg->label ? ": " : "", status ? status : "");
    fflush(stderr);
    pg->drawn = 1;
}

/* Draw the bar for done of total with info after it; widest: the same info at its widest, so
 * that the bar keeps its width. */
static void draw(cli_progress *pg, double frac, const char *info, int wmax) {
    int cols = term_columns() - 1;
    int lab = (int)strlen(pg->label);
    int bar = cols - wmax - (lab ? lab + 2 : 0) - 2;
    if (bar > 40) bar = 40;
    fprintf(stderr, "\r%s%s", pg->label, lab ? ": " : "");
    if (bar >= 5) {
        int fill = (int)(frac * bar + 0.5);
        fputc('[', stderr);
        for (int i = 0; i < bar; i++) fputc(i < fill ? '#' : '-', stderr);
        fputc(']', stderr);
    }
    fprintf(stderr, "%s\033[K", info);
    fflush(stderr);
    pg->drawn = 1;
}

/* Elapsed and ETA strings; 0 when it is not time to redraw yet. */
static int timing(cli_progress *pg, long done, long total, char *e1, char *e2, size_t n) {
    double t = now();
    if (pg->done_first < 0) pg->t_first = t, pg->done_first = done;
    if (done < total && t - pg->t_last_draw < 0.1) return 0;
    pg->t_last_draw = t;
    clock_str(t - pg->t_start, e1, n);
    /* ETA from the rate since the first update (time spent before it left out) */
    long since = done - pg->done_first;
    clock_str(done >= total ? 0.0 : since > 0 ? (t - pg->t_first) / (double)since * (double)(total - done) : -1,
              e2, n);
    return 1;
}

int cli_progress_fn(void *user, int window, int n_windows, int step, int n_steps) {
    cli_progress *pg = user;
    if (interrupted) return 1;
    if (!pg || !pg->enabled) return 0;
    long total = (long)n_windows * n_steps, done = (long)window * n_steps + step;
    char e1[32], e2[32], info[160], widest[160];
    if (!timing(pg, done, total, e1, e2, sizeof e1)) return 0;
    double frac = total > 0 ? (double)done / (double)total : 1.0;
    snprintf(info, sizeof info, " %3d%%  window %d/%d step %d/%d  %s elapsed, ETA %s",
             (int)(100.0 * frac), window + 1, n_windows, step, n_steps, e1, e2);
    int wmax = snprintf(widest, sizeof widest, " 100%%  window %d/%d step %d/%d  %s elapsed, ETA %s", n_windows,
                        n_windows, n_steps, n_steps, e1, strlen(e1) > 5 ? e1 : "00:00");
    draw(pg, frac, info, wmax);
    return 0;
}

void cli_progress_count(cli_progress *pg, long done, long total, const char *unit) {
    if (!pg || !pg->enabled) return;
    char e1[32], e2[32], info[160], widest[160];
    if (!timing(pg, done, total, e1, e2, sizeof e1)) return;
    double frac = total > 0 ? (double)done / (double)total : 1.0;
    snprintf(info, sizeof info, " %3d%%  %s %ld/%ld  %s elapsed, ETA %s", (int)(100.0 * frac), unit, done, total,
             e1, e2);
    int wmax = snprintf(widest, sizeof widest, " 100%%  %s %ld/%ld  %s elapsed, ETA %s", unit, total, total, e1,
                        strlen(e1) > 5 ? e1 : "00:00");
    draw(pg, frac, info, wmax);
}

void cli_progress_end(cli_progress *pg) {
    if (!pg->enabled || !pg->drawn) return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    pg->drawn = 0;
}
