/* Regular-file helpers shared by the NumPy reader/writer and the zip container (npy.c, zip.c). */
#include "core.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

static int file_size(FILE *f, uint64_t *size) {
    struct stat s;
    if (fstat(fileno(f), &s) != 0 || !S_ISREG(s.st_mode) || s.st_size < 0) return 0;
    *size = (uint64_t)s.st_size;
    return 1;
}

FILE *dpt_file_open_read(const char *path, uint64_t *size, dpt_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        dpt_fail(err, DPT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (!file_size(f, size)) {
        fclose(f);
        dpt_fail(err, DPT_ERR_IO, "%s: not a regular file", path);
        return NULL;
    }
    return f;
}

int dpt_file_write_all(FILE *f, const void *p, size_t n) { return n == 0 || fwrite(p, 1, n, f) == n; }

/* A failed write removes its half-written output, but never a device (/dev/full) or FIFO. */
int dpt_file_is_regular(FILE *f) {
    struct stat s;
    return fstat(fileno(f), &s) == 0 && S_ISREG(s.st_mode);
}
