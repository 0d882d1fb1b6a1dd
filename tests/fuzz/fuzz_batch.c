/* Fuzz target: the batch jobs file parser of dpt-generate (examples/cli/batch.c). */
#define _GNU_SOURCE
#include "fuzz.h"
#include "../../examples/cli/cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cli_prog = "fuzz_batch";
    cli_quiet = 1;
    char path[64];
    int fd = fuzz_memfile(data, size, path);
    if (fd < 0) return 0;
    cli_jobs jobs;
    cli_err e;
    if (cli_jobs_read(path, &jobs, &e) == 0) {
        if (jobs.n < 0 || jobs.n_bad < 0) abort();
        for (int i = 0; i < jobs.n; i++) {
            const cli_job *j = &jobs.jobs[i];
            if (!j->audio || !j->shape || !j->output || j->line < 1) abort();   /* style NULL = '-' */
            volatile size_t len = strlen(j->audio) + strlen(j->shape) + (j->style ? strlen(j->style) : 0) +
                                  strlen(j->output) + (j->plot ? strlen(j->plot) : 0);
            (void)len;
        }
        cli_jobs_free(&jobs);
    }
    close(fd);
    return 0;
}
