/* Output files of dpt-generate: npz (as upstream's --save_coef), npy, csv, json; each written
 * under a temporary name and renamed when complete (outfile.c). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const FORMAT_NAMES[] = {"npz", "npy", "csv", "json"};

int cli_format_parse(const char *s) {
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, FORMAT_NAMES[i])) return i;
    return -1;
}

const char *cli_format_name(cli_format f) { return FORMAT_NAMES[f]; }

/* Start of the extension of path's last component ("." included), or NULL — as pathlib's
 * suffix: a name's leading dot does not start an extension. */
static const char *extension(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base || dot[1] == '\0') return NULL;
    return dot;
}

int cli_format_from_path(const char *path) {
    const char *ext = extension(path);
    return ext ? cli_format_parse(ext + 1) : -1;
}

char *cli_output_name(const char *out, int rep, int n_reps, const char *tag, const char *ext) {
    const char *dot = extension(out);
    size_t stem = dot ? (size_t)(dot - out) : strlen(out);
    size_t n = stem + (tag ? strlen(tag) : 0) + strlen(ext) + 32;
    char *name = malloc(n);
    if (!name) return NULL;
    int k = snprintf(name, n, "%.*s", (int)stem, out);
    if (n_reps > 1) k += snprintf(name + k, n - (size_t)k, "_%03d", rep);
    if (tag) k += snprintf(name + k, n - (size_t)k, "_%s", tag);
    snprintf(name + k, n - (size_t)k, "%s", ext);
    return name;
}

static int close_checked(FILE *f, const char *path, cli_err *e) {
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return cli_fail(e, "%s: write failed: %s", path, strerror(errno ? errno : EIO));
    return 0;
}

static void json_rows(FILE *f, const float *v, int rows, int cols) {
    fputc('[', f);
    for (int r = 0; r < rows; r++) {
        fputs(r ? ",\n  [" : "\n  [", f);
        for (int c = 0; c < cols; c++) {
            float x = v[(size_t)r * cols + c];
            if (c) fputs(", ", f);
            if (isfinite(x)) fprintf(f, "%.9g", x);
            else fputs("null", f);   /* JSON has no NaN/Inf */
        }
        fputc(']', f);
    }
    fputs(rows ? "\n ]" : "]", f);
}

int cli_write_result(const dpt_result *res, int rep, const char *out, cli_format fmt, int fps,
                     cli_err *e) {
    const int F = res->n_frames, N = res->n_repetitions;
    const float *exp = res->exp + (size_t)rep * F * 50;
    const float *pose = res->pose + (size_t)rep * F * 6;
    const float *shape = res->shape;
    const char *keys[3] = {"exp", "pose", "shape"};
    dpt_array arrs[3] = {{2, {F, 50, 0, 0}, (float *)exp},
                         {2, {F, 6, 0, 0}, (float *)pose},
                         {2, {F, 100, 0, 0}, (float *)shape}};
    dpt_error err = {0};
    int rc = 0;
    if (fmt == CLI_NPY) {   /* three files: all written, then all renamed */
        cli_outfile of[3] = {{0}};
        for (int k = 0; k < 3 && !rc; k++) {
            char *name = cli_output_name(out, rep, N, keys[k], ".npy");
            if (!name) rc = cli_fail(e, "out of memory");
            else rc = cli_outfile_begin(&of[k], name, e);
            if (!rc && dpt_npy_write(of[k].tmp, arrs[k].data, 2, arrs[k].shape, &err) != DPT_OK)
                rc = cli_outfile_fail(&of[k], e, err.message);
            free(name);
        }
        for (int k = 0; k < 3 && !rc; k++) rc = cli_outfile_commit(&of[k], e);
        for (int k = 0; k < 3; k++) cli_outfile_discard(&of[k]);
        return rc;
    }
    static const char *const EXT[] = {".npz", ".npy", ".csv", ".json"};
    char *name = cli_output_name(out, rep, N, NULL, EXT[fmt]);
    if (!name) return cli_fail(e, "out of memory");
    cli_outfile of;
    rc = cli_outfile_begin(&of, name, e);
    free(name);
    if (rc) return 1;
    if (fmt == CLI_NPZ) {
        if (dpt_npz_write(of.tmp, 3, keys, arrs, 1, &err) != DPT_OK) rc = cli_outfile_fail(&of, e, err.message);
        if (!rc) rc = cli_outfile_commit(&of, e);
        cli_outfile_discard(&of);
        return rc;
    }
    FILE *f = fopen(of.tmp, "w");
    if (!f) {
        rc = cli_fail(e, "%s: cannot create: %s", of.path, strerror(errno));
        cli_outfile_discard(&of);
        return rc;
    }
    errno = 0;
    if (fmt == CLI_CSV) {
        fputs("frame,time", f);
        for (int c = 0; c < 50; c++) fprintf(f, ",exp_%d", c);
        for (int c = 0; c < 6; c++) fprintf(f, ",pose_%d", c);
        for (int c = 0; c < 100; c++) fprintf(f, ",shape_%d", c);
        fputc('\n', f);
        for (int r = 0; r < F; r++) {
            fprintf(f, "%d,%.9g", r, fps > 0 ? (double)r / fps : 0.0);
            for (int c = 0; c < 50; c++) fprintf(f, ",%.9g", exp[(size_t)r * 50 + c]);
            for (int c = 0; c < 6; c++) fprintf(f, ",%.9g", pose[(size_t)r * 6 + c]);
            for (int c = 0; c < 100; c++) fprintf(f, ",%.9g", shape[(size_t)r * 100 + c]);
            fputc('\n', f);
        }
    } else {
        fprintf(f, "{\"fps\": %d, \"n_frames\": %d,\n \"exp\": ", fps, F);
        json_rows(f, exp, F, 50);
        fputs(",\n \"pose\": ", f);
        json_rows(f, pose, F, 6);
        fputs(",\n \"shape\": ", f);
        json_rows(f, shape, F, 100);
        fputs("}\n", f);
    }
    rc = close_checked(f, of.path, e);
    if (!rc) rc = cli_outfile_commit(&of, e);
    cli_outfile_discard(&of);
    return rc;
}

int cli_write_npy(const char *path, const float *data, int ndim, const int64_t *shape, cli_err *e) {
    cli_outfile of;
    if (cli_outfile_begin(&of, path, e)) return 1;
    dpt_error err = {0};
    int rc = 0;
    if (dpt_npy_write(of.tmp, data, ndim, shape, &err) != DPT_OK) rc = cli_outfile_fail(&of, e, err.message);
    if (!rc) rc = cli_outfile_commit(&of, e);
    cli_outfile_discard(&of);
    return rc;
}
