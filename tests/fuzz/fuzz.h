/* Shared by the fuzz harnesses (tests/fuzz/fuzz_*.c). Each harness defines
 * LLVMFuzzerTestOneInput; it is linked either with libFuzzer (clang -fsanitize=fuzzer: `make fuzz`)
 * or with driver.c, a plain main that runs the files given on the command line (any compiler,
 * ASan: `make test-fuzz-regress` replays the corpora and the kept crashers). */
#ifndef DPT_FUZZ_H
#define DPT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void fuzz_quiet_log(int level, const char *message, void *user) {
    (void)level, (void)message, (void)user;
}

/* The input as a file the library can open by path: an anonymous in-memory file (memfd) named
 * /proc/self/fd/N, so that the loaders run their real open/stat/mmap/read paths without touching
 * the disk. Returns the fd (close it when done) or -1. */
static inline int fuzz_memfile(const uint8_t *data, size_t size, char path[64]) {
    int fd = memfd_create("fuzz-input", 0);
    if (fd < 0) return -1;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

/* Every file-input harness starts here: the library's log silenced (warnings on bad input are
 * expected, not findings) and the input made a file at `path`. Returns the fd (close it), or -1. */
static inline int fuzz_begin(const uint8_t *data, size_t size, char path[64]) {
    dpt_log_set_callback(fuzz_quiet_log, NULL);
    return fuzz_memfile(data, size, path);
}

/* A failing call must leave a one-line message: a status without one is a defect too. */
static inline void fuzz_check_error(dpt_status st, const dpt_error *err) {
    if (st == DPT_OK) return;
    if (err->status != st || err->message[0] == '\0' || strchr(err->message, '\n')) {
        fprintf(stderr, "fuzz: status %d with message '%s' (status %d)\n", (int)st, err->message,
                (int)err->status);
        abort();
    }
}

#endif
