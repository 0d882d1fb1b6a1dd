/* Batch jobs: a TSV file of "audio<TAB>shape<TAB>style<TAB>output[<TAB>plot]" lines, run with one
 * model load; failures are reported one line each and do not stop the others. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cli_jobs_free(cli_jobs *jobs) {
    free(jobs->jobs);
    free(jobs->text);
    memset(jobs, 0, sizeof *jobs);
}

static char *read_text(const char *path, cli_err *e) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_fail(e, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = cap > ((size_t)1 << 30) ? NULL : realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf) {
        cli_fail(e, "%s: too large or out of memory", path);
        return NULL;
    }
    if (bad) {
        free(buf);
        cli_fail(e, "%s: read error", path);
        return NULL;
    }
    buf[n] = '\0';
    if (strlen(buf) != n) {
        free(buf);
        cli_fail(e, "%s: not a text file (contains NUL bytes)", path);
        return NULL;
    }
    return buf;
}

static char *trim(char *s) {
    while (*s == ' ') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\r')) s[--n] = '\0';
    return s;
}

int cli_jobs_read(const char *path, cli_jobs *jobs, cli_err *e) {
    memset(jobs, 0, sizeof *jobs);
    jobs->text = read_text(path, e);
    if (!jobs->text) return 1;
    int cap = 0;
    int line_no = 0;
    char *line = jobs->text;
    while (line && *line) {
        char *next = strchr(line, '\n');
        if (next) *next++ = '\0';
        line_no++;
        char *l = line;
        line = next;
        size_t len = strlen(l);
        if (len && l[len - 1] == '\r') l[--len] = '\0';
        char *p = l;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '\0' || *p == '#') continue;   /* blank line or comment */
        char *field[6] = {0};
        int nf = 0;
        for (char *s = l;; nf++) {
            char *tab = strchr(s, '\t');
            if (nf < 6) field[nf] = s;
            if (!tab) {
                nf++;
                break;
            }
            *tab = '\0';
            s = tab + 1;
        }
        int bad = nf < 4 || nf > 5;
        for (int k = 0; k < nf && k < 5 && !bad; k++) {
            field[k] = trim(field[k]);
            if (!*field[k] && k != 4) bad = 2;
        }
        if (bad) {
            fprintf(stderr, "%s: %s:%d: %s\n", cli_prog, path, line_no,
                    bad == 2 ? "empty field (use '-' for no style)"
                             : "expected 4 or 5 tab-separated fields: audio, shape, style (or '-'), "
                               "output[, plot.svg]");
            jobs->n_bad++;
            continue;
        }
        if (jobs->n == cap) {
            cap = cap ? cap * 2 : 16;
            cli_job *nj = realloc(jobs->jobs, sizeof(cli_job) * (size_t)cap);
            if (!nj) {
                cli_jobs_free(jobs);
                return cli_fail(e, "%s: out of memory", path);
            }
            jobs->jobs = nj;
        }
        cli_job *j = &jobs->jobs[jobs->n++];
        j->line = line_no;
        j->audio = field[0];
        j->shape = field[1];
        j->style = strcmp(field[2], "-") ? field[2] : NULL;
        j->output = field[3];
        j->plot = nf == 5 && *field[4] && strcmp(field[4], "-") ? field[4] : NULL;
    }
    return 0;
}

/* VmRSS and VmHWM of /proc/self/status in KiB (-1 if absent). */
static void proc_memory(long *rss, long *hwm) {
    *rss = *hwm = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "VmRSS:", 6)) *rss = strtol(line + 6, NULL, 10);
        else if (!strncmp(line, "VmHWM:", 6)) *hwm = strtol(line + 6, NULL, 10);
    }
    fclose(f);
}

/* Open descriptors, not counting the directory stream's own. */
static long proc_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    long n = 0;
    for (struct dirent *de; (de = readdir(d));)
        if (de->d_name[0] != '.') n++;
    closedir(d);
    return n - 1;
}

int cli_jobs_run(const char *path, const cli_jobs *jobs, cli_job_fn fn, void *user, FILE *stats) {
    int failed = jobs->n_bad;
    for (int i = 0; i < jobs->n; i++) {
        if (cli_interrupted()) {
            fprintf(stderr, "%s: %s: interrupted; %d job(s) not run\n", cli_prog, path, jobs->n - i);
            return failed + jobs->n - i;
        }
        cli_err e = {{0}};
        const int bad = fn(user, &jobs->jobs[i], i, jobs->n, &e) != 0;
        if (bad) {
            fprintf(stderr, "%s: %s:%d: %s\n", cli_prog, path, jobs->jobs[i].line,
                    e.msg[0] ? e.msg : "failed");
            failed++;
        }
        if (stats) {
            long rss, hwm;
            proc_memory(&rss, &hwm);
            long fds = proc_fds();
            fprintf(stats, "%d\t%d\t%d\t%ld\t%ld\t%ld\n", i + 1, jobs->jobs[i].line, !bad,
                    rss, hwm, fds < 0 ? -1 : fds - 1);
            fflush(stats);
        }
    }
    return failed;
}
