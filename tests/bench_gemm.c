/* GEMM benchmark: the own SGEMM (dpt_k_sgemm) against the build's BLAS (cblas_sgemm, when built
 * with one) at the models' shapes, at 1 and 2 threads (or --threads a,b,…), one run.
 *   bench_gemm [--threads 1,2] [--time SECONDS] [--rounds N] [--json FILE] [--quick]
 *              [--only SUBSTRING]   (shapes whose name contains SUBSTRING)
 * Each figure is the best of N rounds; within a round the own GEMM and BLAS alternate, each timed
 * over repeated calls for ~SECONDS, so both see the same machine load. Prints one table. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"

#ifdef DPT_HAVE_CBLAS
#include <cblas.h>
#endif

typedef struct shape {
    const char *what;
    int trans_b, m, n, k;
} shape;

/* denoiser: 3 guidance entries × 111 tokens; HuBERT-base: T = 500 (10 s) … 3000 tokens */
static const shape SHAPES[] = {
    {"denoiser qkv/out 512", 1, 333, 512, 512},
    {"denoiser qkv 3x512", 1, 333, 1536, 512},
    {"denoiser ffn up", 1, 333, 2048, 512},
    {"denoiser ffn down", 1, 333, 512, 2048},
    {"hubert proj T=500", 1, 500, 768, 768},
    {"hubert ffn up T=500", 1, 500, 3072, 768},
    {"hubert ffn down T=500", 1, 500, 768, 3072},
    {"hubert proj T=3000", 1, 3000, 768, 768},
    {"hubert ffn up T=3000", 1, 3000, 3072, 768},
    {"hubert ffn down T=3000", 1, 3000, 768, 3072},
    {"attention P.V (nn)", 0, 500, 64, 500},
};
#define N_SHAPES (int)(sizeof SHAPES / sizeof SHAPES[0])

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static void run(int blas, const shape *s, const float *a, const float *b, float *c) {
    int ldb = s->trans_b ? s->k : s->n;
#ifdef DPT_HAVE_CBLAS
    if (blas) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, s->trans_b ? CblasTrans : CblasNoTrans, s->m,
                    s->n, s->k, 1.0f, a, s->k, b, ldb, 0.0f, c, s->n);
        return;
    }
#else
    (void)blas;
#endif
    dpt_k_sgemm(s->trans_b, s->m, s->n, s->k, 1.0f, a, s->k, b, ldb, 0.0f, c, s->n);
}

/* seconds per call, over calls for about `budget` seconds */
static double time_calls(int blas, const shape *s, const float *a, const float *b, float *c,
                         double budget) {
    run(blas, s, a, b, c); /* warm: packing buffers, threads */
    int calls = 0;
    double t0 = now(), t;
    do {
        run(blas, s, a, b, c);
        calls++;
        t = now() - t0;
    } while (t < budget);
    return t / calls;
}

int main(int argc, char **argv) {
    int threads[8] = {1, 2}, n_threads = 2, rounds = 3, quick = 0;
    double budget = 0.15;
    const char *json = NULL, *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            n_threads = 0;
            for (char *t = strtok(argv[++i], ","); t && n_threads < 8; t = strtok(NULL, ","))
                threads[n_threads++] = atoi(t);
        } else if (!strcmp(argv[i], "--time") && i + 1 < argc) {
            budget = atof(argv[++i]);
        } else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
            rounds = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
            json = argv[++i];
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            only = argv[++i];
        } else if (!strcmp(argv[i], "--quick")) {
            quick = 1;
        } else {
            fprintf(stderr,
                    "usage: %s [--threads 1,2] [--time S] [--rounds N] [--json FILE] [--quick] "
                    "[--only SUBSTRING]\n",
                    argv[0]);
            return 2;
        }
    }
    if (quick) {
        budget = 0.03;
        rounds = 1;
    }
    const int have_blas = dpt_k_have_blas();
    FILE *jf = json ? fopen(json, "w") : NULL;
    if (json && !jf) {
        perror(json);
        return 1;
    }
    printf("own SGEMM: micro-kernel %s; BLAS: %s\n", dpt_k_arch_name(dpt_k_arch_active()),
           have_blas ? "OpenBLAS (cblas_sgemm)" : "none in this build");
    printf("%-24s %5s %5s %5s %3s %10s %10s %7s\n", "shape", "M", "N", "K", "thr", "own GF/s",
           "BLAS GF/s", "ratio");
    if (jf) fprintf(jf, "{\"arch\": \"%s\", \"results\": [", dpt_k_arch_name(dpt_k_arch_active()));
    int first = 1;
    for (int ti = 0; ti < n_threads; ti++) {
        dpt_k_set_threads(threads[ti]);
        double log_ratio = 0.0;
        int n_ratio = 0;
        for (int si = 0; si < N_SHAPES; si++) {
            const shape *s = &SHAPES[si];
            if (only && !strstr(s->what, only)) continue;
            size_t na = (size_t)s->m * s->k, nb = (size_t)s->n * s->k, nc = (size_t)s->m * s->n;
            float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b),
                  *c = malloc(nc * sizeof *c);
            if (!a || !b || !c) {
                fprintf(stderr, "out of memory\n");
                return 1;
            }
            srand(1);
            for (size_t i = 0; i < na; i++) a[i] = (float)rand() / RAND_MAX - 0.5f;
            for (size_t i = 0; i < nb; i++) b[i] = (float)rand() / RAND_MAX - 0.5f;
            double best_own = INFINITY, best_blas = INFINITY;
            for (int r = 0; r < rounds; r++) {
                double t = time_calls(0, s, a, b, c, budget);
                if (t < best_own) best_own = t;
                if (have_blas) {
                    t = time_calls(1, s, a, b, c, budget);
                    if (t < best_blas) best_blas = t;
                }
            }
            double flop = 2.0 * s->m * s->n * (double)s->k;
            double g_own = flop / best_own * 1e-9, g_blas = have_blas ? flop / best_blas * 1e-9 : 0;
            if (have_blas) {
                printf("%-24s %5d %5d %5d %3d %10.1f %10.1f %6.0f%%\n", s->what, s->m, s->n, s->k,
                       threads[ti], g_own, g_blas, 100.0 * g_own / g_blas);
                log_ratio += log(g_own / g_blas);
                n_ratio++;
            } else {
                printf("%-24s %5d %5d %5d %3d %10.1f %10s %7s\n", s->what, s->m, s->n, s->k,
                       threads[ti], g_own, "-", "-");
            }
            if (jf)
                fprintf(jf,
                        "%s{\"shape\": \"%s\", \"m\": %d, \"n\": %d, \"k\": %d, \"threads\": %d, "
                        "\"own_gflops\": %.2f, \"blas_gflops\": %.2f}",
                        first ? "" : ", ", s->what, s->m, s->n, s->k, threads[ti], g_own, g_blas);
            first = 0;
            free(a);
            free(b);
            free(c);
        }
        if (n_ratio)
            printf("%-24s %29d %29.0f%%\n", "geometric mean", threads[ti],
                   100.0 * exp(log_ratio / n_ratio));
    }
    if (jf) {
        fprintf(jf, "]}\n");
        fclose(jf);
    }
    return 0;
}
