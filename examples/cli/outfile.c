/* Outputs written under a temporary name beside their destination and renamed when complete, so
 * that a failing or interrupted run never leaves a half-written file and never clobbers a good
 * one. Files: ".NAME.tmp-XXXXXX.EXT" (the extension kept: ffmpeg picks its muxer by it);
 * directories of frames: ".DIR.tmp-XXXXXX", whose files are moved into DIR at the end. An existing
 * destination that is not a regular file (/dev/stdout, /dev/full, a FIFO) is written in place. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static mode_t current_umask(void) {
    mode_t m = umask(0);
    umask(m);
    return m;
}

/* "dir/.base.tmp-XXXXXX" + suffix, into a malloc'ed template; *suffix_len = strlen(suffix). */
static char *temp_template(const char *path, const char *suffix) {
    const char *slash = strrchr(path, '/');
    size_t dir = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = path + dir;
    size_t n = strlen(path) + strlen(suffix) + 32;
    char *t = malloc(n);
    if (t) snprintf(t, n, "%.*s.%s.tmp-XXXXXX%s", (int)dir, path, base, suffix);
    return t;
}

/* The extension of path's last component ("" if none), as pathlib's suffix. */
static const char *suffix_of(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    return dot && dot != base && dot[1] ? dot : "";
}

int cli_outfile_begin(cli_outfile *o, const char *path, cli_err *e) {
    memset(o, 0, sizeof *o);
    if (!*path || cli_ends_with(path, "/")) return cli_fail(e, "%s: the output needs a file name, not a directory", path);
    struct stat st;
    int exists = stat(path, &st) == 0;
    if (exists && S_ISDIR(st.st_mode)) return cli_fail(e, "%s: is a directory", path);
    if (exists && !S_ISREG(st.st_mode)) {
        /* not a file that a rename could replace (and a rename would replace the device node) */
        o->path = strdup(path);
        o->tmp = strdup(path);
        o->direct = 1;
        if (!o->path || !o->tmp) {
            cli_outfile_discard(o);
            return cli_fail(e, "out of memory");
        }
        return 0;
    }
    if (cli_make_parents(path, e)) return 1;
    o->path = strdup(path);
    const char *sfx = suffix_of(path);
    o->tmp = temp_template(path, sfx);
    if (!o->path || !o->tmp) {
        cli_outfile_discard(o);
        return cli_fail(e, "out of memory");
    }
    int fd = mkstemps(o->tmp, (int)strlen(sfx));
    if (fd < 0) {
        int rc = cli_fail(e, "%s: cannot create: %s", path, strerror(errno));
        free(o->tmp);
        o->tmp = NULL;
        cli_outfile_discard(o);
        return rc;
    }
    fchmod(fd, 0666 & ~current_umask());   /* mkstemps makes 0600; outputs get the usual mode */
    close(fd);
    return 0;
}

int cli_outfile_commit(cli_outfile *o, cli_err *e) {
    if (!o->direct && rename(o->tmp, o->path) != 0) {
        int rc = cli_fail(e, "%s: cannot rename the finished file into place: %s", o->path, strerror(errno));
        cli_outfile_discard(o);
        return rc;
    }
    free(o->tmp);
    o->tmp = NULL;
    cli_outfile_discard(o);
    return 0;
}

void cli_outfile_discard(cli_outfile *o) {
    if (o->tmp && !o->direct) unlink(o->tmp);
    free(o->tmp);
    free(o->path);
    o->tmp = o->path = NULL;
    o->direct = 0;
}

/* msg with every occurrence of from replaced by to, into e. */
static int fail_renamed(cli_err *e, const char *msg, const char *from, const char *to) {
    char buf[sizeof e->msg];
    size_t k = 0, fl = from ? strlen(from) : 0;
    for (const char *c = msg; *c && k + 1 < sizeof buf;) {
        if (fl && !strncmp(c, from, fl)) {
            k += (size_t)snprintf(buf + k, sizeof buf - k, "%s", to);
            if (k >= sizeof buf) k = sizeof buf - 1;
            c += fl;
        } else {
            buf[k++] = *c++;
        }
    }
    buf[k] = '\0';
    return cli_fail(e, "%s", buf);
}

int cli_outfile_fail(const cli_outfile *o, cli_err *e, const char *msg) {
    return fail_renamed(e, msg, o->tmp, o->path);
}

int cli_outdir_fail(const cli_outdir *d, cli_err *e, const char *msg) {
    return fail_renamed(e, msg, d->tmp, d->path);
}

/* ------------------------------------------------------------------------------------------ */

int cli_outdir_begin(cli_outdir *d, const char *dir, cli_err *e) {
    memset(d, 0, sizeof *d);
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;   /* "frames/" → "frames" */
    d->path = strndup(dir, n);
    if (!d->path) return cli_fail(e, "out of memory");
    struct stat st;
    if (stat(d->path, &st) == 0 && !S_ISDIR(st.st_mode)) {
        int rc = cli_fail(e, "%s: exists and is not a directory", d->path);
        cli_outdir_discard(d);
        return rc;
    }
    if (cli_make_parents(d->path, e)) {
        cli_outdir_discard(d);
        return 1;
    }
    d->tmp = temp_template(d->path, "");
    if (!d->tmp) {
        cli_outdir_discard(d);
        return cli_fail(e, "out of memory");
    }
    if (!mkdtemp(d->tmp)) {
        int rc = cli_fail(e, "%s: cannot create: %s", d->path, strerror(errno));
        free(d->tmp);
        d->tmp = NULL;
        cli_outdir_discard(d);
        return rc;
    }
    chmod(d->tmp, 0777 & ~current_umask());
    return 0;
}

char *cli_outdir_file(const cli_outdir *d, const char *name) {
    size_t n = strlen(d->tmp) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", d->tmp, name);
    return p;
}

int cli_outdir_commit(cli_outdir *d, cli_err *e) {
    if (rename(d->tmp, d->path) == 0) {   /* DIR did not exist (or was empty): all at once */
        free(d->tmp);
        d->tmp = NULL;
        cli_outdir_discard(d);
        return 0;
    }
    /* DIR exists with files: move ours in (same file system, one rename each) */
    DIR *dh = opendir(d->tmp);
    if (!dh) {
        int rc = cli_fail(e, "%s: %s", d->path, strerror(errno));
        cli_outdir_discard(d);
        return rc;
    }
    int rc = 0;
    struct dirent *de;
    while (!rc && (de = readdir(dh))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        size_t n = strlen(d->path) + strlen(de->d_name) + 2;
        char *src = cli_outdir_file(d, de->d_name), *dst = malloc(n);
        if (!src || !dst) rc = cli_fail(e, "out of memory");
        else {
            snprintf(dst, n, "%s/%s", d->path, de->d_name);
            if (rename(src, dst) != 0) rc = cli_fail(e, "%s: cannot move %s into place: %s", d->path, de->d_name, strerror(errno));
        }
        free(src);
        free(dst);
    }
    closedir(dh);
    cli_outdir_discard(d);
    return rc;
}

void cli_outdir_discard(cli_outdir *d) {
    if (d->tmp) {
        DIR *dh = opendir(d->tmp);
        if (dh) {
            struct dirent *de;
            while ((de = readdir(dh))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
                char *p = cli_outdir_file(d, de->d_name);
                if (p) unlink(p);
                free(p);
            }
            closedir(dh);
        }
        rmdir(d->tmp);
    }
    free(d->tmp);
    free(d->path);
    d->tmp = d->path = NULL;
}
