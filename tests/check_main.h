/* Shared by the Check suites (tests/test_*.c): running a suite, and a temporary directory per
 * suite process for the files its checks write. */
#ifndef DPT_CHECK_MAIN_H
#define DPT_CHECK_MAIN_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Run every check of s (each in its own process under CK_FORK=yes). Check prints the
 * "N%: Checks: …, Failures: …, Errors: …" line that tools/run_c_tests.sh and tools/test_aarch64.sh
 * parse; checks a suite leaves out (under DPT_UNDER_QEMU, say) are printed by the suite itself as
 * "SKIPPED: suite: check (reason)" when it builds s. The exit status of main: 0 if every check
 * passed, else 1. */
static inline int dpt_check_run(Suite *s) {
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}

static inline char *dpt_check_tmp_dir_buf(void) {
    static char dir[256];
    return dir;
}

/* /tmp/dpt_test_<suite>_<pid>, made once. Call it in main before dpt_check_run, so that the
 * parent knows it and removes it afterwards (the checks run in forked children). */
static inline const char *dpt_check_tmp_dir(const char *suite) {
    char *dir = dpt_check_tmp_dir_buf();
    if (!dir[0]) {
        snprintf(dir, 256, "/tmp/dpt_test_%s_%d", suite, (int)getpid());
        mkdir(dir, 0700);
    }
    return dir;
}

/* dir/name, in one of 8 rotating buffers (a check may hold a few paths at once). */
static inline const char *dpt_check_tmp_path(const char *name) {
    static char slots[8][400];
    static int k;
    k = (k + 1) % 8;
    snprintf(slots[k], sizeof slots[k], "%s/%s", dpt_check_tmp_dir_buf(), name);
    return slots[k];
}

/* A fresh file name in the directory: <prefix><n><ext>, n counting up in this process. */
static inline const char *dpt_check_tmp_file(const char *prefix, const char *ext) {
    static int n;
    char name[128];
    snprintf(name, sizeof name, "%s%d%s", prefix, n++, ext);
    return dpt_check_tmp_path(name);
}

/* Remove the directory and everything in it (best effort). */
static inline void dpt_check_tmp_dir_remove(void) {
    char *dir = dpt_check_tmp_dir_buf();
    if (!dir[0]) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

#endif
