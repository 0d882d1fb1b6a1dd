/* Element-wise / reduction kernels: time per call of every supported variant (scalar, avx2, neon)
 * at the models' sizes, and the speedup over the scalar reference, in one run.
 *   bench_kernels [--time SECONDS] [--rounds N]
 * Each figure is the best of N rounds of repeated calls for ~SECONDS; variants alternate within a
 * round so they see the same machine load. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"

enum { K_GELU, K_LN, K_ADD_LN, K_SOFTMAX, K_ADD, K_N };

typedef struct kcase {
    const char *what;
    int kind, rows, cols;
} kcase;

static const kcase CASES[] = {
    {"gelu 333x2048 (denoiser FFN)", K_GELU, 333, 2048},
    {"gelu 500x3072 (HuBERT FFN)", K_GELU, 500, 3072},
    {"layernorm 333x512", K_LN, 333, 512},
    {"layernorm 500x768", K_LN, 500, 768},
    {"add+layernorm 333x512", K_ADD_LN, 333, 512},
    {"add+layernorm 500x768", K_ADD_LN, 500, 768},
    {"softmax 333x111 (rows)", K_SOFTMAX, 333, 111},
    {"softmax 500x500", K_SOFTMAX, 500, 500},
    {"add 333x512", K_ADD, 333, 512},
};
#define N_CASES (int)(sizeof CASES / sizeof CASES[0])

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

typedef struct bufs {
    float *x, *x0, *r, *g, *b;
    size_t n;
} bufs;

static void run(const kcase *c, bufs *B) {
    switch (c->kind) {
    case K_GELU:
        memcpy(B->x, B->x0, B->n * sizeof(float)); /* keep inputs in range */
        dpt_k_gelu(B->x, B->n);
        break;
    case K_LN: dpt_k_layernorm(B->x, c->rows, c->cols, B->g, B->b, 1e-5f); break;
    case K_ADD_LN: dpt_k_add_layernorm(B->x, B->r, c->rows, c->cols, B->g, B->b, 1e-5f); break;
    case K_SOFTMAX:
        memcpy(B->x, B->x0, B->n * sizeof(float));
        dpt_k_softmax(B->x, c->rows, c->cols);
        break;
    case K_ADD: dpt_k_add(B->x, B->r, B->n); break;
    }
}

/* seconds per call, minus the copy that GELU and softmax make first */
static double time_calls(const kcase *c, bufs *B, double budget) {
    run(c, B);
    int calls = 0;
    double t0 = now(), t;
    do {
        run(c, B);
        calls++;
        t = now() - t0;
    } while (t < budget);
    return t / calls;
}

int main(int argc, char **argv) {
    double budget = 0.1;
    int rounds = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--time") && i + 1 < argc)
            budget = atof(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--time S] [--rounds N]\n", argv[0]);
            return 2;
        }
    }
    int archs[DPT_K_N_ARCH], n_arch = 0;
    for (int a = 0; a < DPT_K_N_ARCH; a++)
        if (dpt_k_arch_supported((dpt_k_arch)a)) archs[n_arch++] = a;
    printf("%-30s", "kernel (µs per call)");
    for (int i = 0; i < n_arch; i++) printf(" %10s", dpt_k_arch_name((dpt_k_arch)archs[i]));
    for (int i = 1; i < n_arch; i++) printf(" %8s", "speedup");
    printf("\n");
    for (int ci = 0; ci < N_CASES; ci++) {
        const kcase *c = &CASES[ci];
        bufs B;
        B.n = (size_t)c->rows * c->cols;
        B.x = malloc(B.n * sizeof(float));
        B.x0 = malloc(B.n * sizeof(float));
        B.r = malloc(B.n * sizeof(float));
        B.g = malloc(c->cols * sizeof(float));
        B.b = malloc(c->cols * sizeof(float));
        if (!B.x || !B.x0 || !B.r || !B.g || !B.b) return 1;
        srand(1);
        for (size_t i = 0; i < B.n; i++) {
            B.x0[i] = 8.0f * ((float)rand() / RAND_MAX - 0.5f);
            B.r[i] = 1e-3f * ((float)rand() / RAND_MAX - 0.5f);
        }
        for (int i = 0; i < c->cols; i++) B.g[i] = 1.0f, B.b[i] = 0.0f;
        memcpy(B.x, B.x0, B.n * sizeof(float));
        double best[DPT_K_N_ARCH];
        for (int i = 0; i < n_arch; i++) best[i] = INFINITY;
        for (int r = 0; r < rounds; r++)
            for (int i = 0; i < n_arch; i++) {
                dpt_k_set_arch((dpt_k_arch)archs[i]);
                double t = time_calls(c, &B, budget);
                if (t < best[i]) best[i] = t;
            }
        printf("%-30s", c->what);
        for (int i = 0; i < n_arch; i++) printf(" %10.1f", best[i] * 1e6);
        for (int i = 1; i < n_arch; i++) printf(" %7.1fx", best[0] / best[i]);
        printf("\n");
        free(B.x);
        free(B.x0);
        free(B.r);
        free(B.g);
        free(B.b);
    }
    return 0;
}
