/* Thread teams and parallel regions (kernels/kernels.h).
 *
 * A team is a set of worker threads owned by one caller (a dpt_state, or one call of the
 * library): the thread count travels with it, so two callers never share or override each
 * other's threads, and nothing process-wide (OpenBLAS's thread count included) is changed.
 * Workers are started on a team's first use and joined when it is freed; between tasks they
 * sleep on a condition variable. Barriers inside a region spin briefly, then yield. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include "kernels.h"
#include "parallel.h"

int dpt_k_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > DPT_K_MAX_THREADS ? DPT_K_MAX_THREADS : (int)n;
}

typedef struct worker_arg {
    struct dpt_k_team *team;
    int tid;
} worker_arg;

struct dpt_k_team {
    int size;                 /* threads of a task at most, the caller included */
    pid_t pid;                /* process that made it: a forked child runs tasks alone */
    pthread_mutex_t use;      /* held by the caller running a task on the team */
    pthread_mutex_t mu;       /* guards the fields below */
    pthread_cond_t go, done;
    int n_workers;            /* started workers, thread ids 1 … n_workers */
    int quit;
    unsigned long gen;        /* task generation, bumped per task */
    int nt, remaining;
    dpt_k_task_fn fn;
    void *ctx;
    unsigned long born[DPT_K_MAX_THREADS]; /* gen when worker tid was started */
    pthread_t th[DPT_K_MAX_THREADS];
    worker_arg args[DPT_K_MAX_THREADS];
};

dpt_k_team *dpt_k_team_new(int n_threads) {
    dpt_k_team *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    int n = n_threads > 0 ? n_threads : dpt_k_cores();
    t->size = n > DPT_K_MAX_THREADS ? DPT_K_MAX_THREADS : n;
    t->pid = getpid();
    pthread_mutex_init(&t->use, NULL);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->go, NULL);
    pthread_cond_init(&t->done, NULL);
    return t;
}

void dpt_k_team_free(dpt_k_team *t) {
    if (!t) return;
    if (t->pid == getpid()) {
        pthread_mutex_lock(&t->mu);
        t->quit = 1;
        pthread_cond_broadcast(&t->go);
        pthread_mutex_unlock(&t->mu);
        for (int i = 1; i <= t->n_workers; i++) pthread_join(t->th[i], NULL);
    }
    pthread_mutex_destroy(&t->use);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->go);
    pthread_cond_destroy(&t->done);
    free(t);
}

int dpt_k_team_size(const dpt_k_team *t) { return t ? t->size : 1; }

static void *worker_main(void *arg) {
    worker_arg *a = arg;
    dpt_k_team *t = a->team;
    const int tid = a->tid;
    pthread_mutex_lock(&t->mu);
    unsigned long seen = t->born[tid];
    for (;;) {
        while (t->gen == seen && !t->quit) pthread_cond_wait(&t->go, &t->mu);
        if (t->quit) break;
        seen = t->gen;
        if (tid >= t->nt) continue;
        dpt_k_task_fn fn = t->fn;
        void *ctx = t->ctx;
        int nt = t->nt;
        pthread_mutex_unlock(&t->mu);
        fn(ctx, tid, nt);
        pthread_mutex_lock(&t->mu);
        if (--t->remaining == 0) pthread_cond_signal(&t->done);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

void dpt_k_team_run(dpt_k_team *t, int nt, dpt_k_task_fn fn, void *ctx) {
    if (t && nt > t->size) nt = t->size;
    if (!t || nt <= 1 || t->pid != getpid()) {
        fn(ctx, 0, 1);
        return;
    }
    pthread_mutex_lock(&t->use);   /* a team shared by two callers serialises them */
    pthread_mutex_lock(&t->mu);
    while (t->n_workers < nt - 1) {
        int tid = t->n_workers + 1;
        t->born[tid] = t->gen; /* it takes part from the next task on */
        t->args[tid] = (worker_arg){t, tid};
        if (pthread_create(&t->th[tid], NULL, worker_main, &t->args[tid]) != 0) break;
        t->n_workers++;
    }
    if (nt > t->n_workers + 1) nt = t->n_workers + 1;
    if (nt <= 1) {
        pthread_mutex_unlock(&t->mu);
        pthread_mutex_unlock(&t->use);
        fn(ctx, 0, 1);
        return;
    }
    t->fn = fn;
    t->ctx = ctx;
    t->nt = nt;
    t->remaining = nt - 1;
    t->gen++;
    pthread_cond_broadcast(&t->go);
    pthread_mutex_unlock(&t->mu);
    fn(ctx, 0, nt);
    pthread_mutex_lock(&t->mu);
    while (t->remaining > 0) pthread_cond_wait(&t->done, &t->mu);
    pthread_mutex_unlock(&t->mu);
    pthread_mutex_unlock(&t->use);
}

/* ---- GEMM threads outside regions (tests and benchmarks) ---------------------------------- */

static _Thread_local dpt_k_team *tl_gemm_team;
static pthread_key_t g_gemm_key;
static pthread_once_t g_gemm_once = PTHREAD_ONCE_INIT;
static void gemm_team_exit(void *t) { dpt_k_team_free(t); }
static void gemm_key_make(void) { pthread_key_create(&g_gemm_key, gemm_team_exit); }

void dpt_k_set_threads(int n_threads) {
    pthread_once(&g_gemm_once, gemm_key_make);
    dpt_k_team_free(tl_gemm_team);
    int n = n_threads > 0 ? n_threads : dpt_k_cores();
    tl_gemm_team = n > 1 ? dpt_k_team_new(n) : NULL;
    pthread_setspecific(g_gemm_key, tl_gemm_team);
}

int dpt_k_get_threads(void) { return dpt_k_team_size(tl_gemm_team); }

/* ---- parallel regions ----------------------------------------------------------------------- */

static _Thread_local int tl_in_region;

int dpt_k_in_region(void) { return tl_in_region; }

dpt_k_team *dpt_k_gemm_team(void) { return tl_in_region ? NULL : tl_gemm_team; }

typedef struct region_shared {
    atomic_int count, phase;
    void (*fn)(void *ctx, dpt_k_region *r);
    void *ctx;
} region_shared;

struct dpt_k_region {
    region_shared *sh;
    int tid, nt;
};

int dpt_k_region_tid(const dpt_k_region *r) { return r->tid; }
int dpt_k_region_nt(const dpt_k_region *r) { return r->nt; }

void dpt_k_region_range(const dpt_k_region *r, int n, int *lo, int *hi) {
    *lo = (int)((long)n * r->tid / r->nt);
    *hi = (int)((long)n * (r->tid + 1) / r->nt);
}

/* Centralised barrier: the last thread to arrive resets the count and advances the phase; the
 * others spin on the phase, yielding the CPU after a short while (the machine may be shared). */
void dpt_k_region_sync(dpt_k_region *r) {
    if (r->nt <= 1) return;
    region_shared *sh = r->sh;
    int ph = atomic_load_explicit(&sh->phase, memory_order_acquire);
    if (atomic_fetch_add_explicit(&sh->count, 1, memory_order_acq_rel) == r->nt - 1) {
        atomic_store_explicit(&sh->count, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&sh->phase, 1, memory_order_release);
        return;
    }
    for (long spin = 0; atomic_load_explicit(&sh->phase, memory_order_acquire) == ph; spin++)
        if (spin > 2000) sched_yield();
}

static void region_task(void *ctx, int tid, int nt) {
    region_shared *sh = ctx;
    dpt_k_region r = {sh, tid, nt};
    int outer = tl_in_region;
    tl_in_region = 1;
    sh->fn(sh->ctx, &r);
    tl_in_region = outer;
}

void dpt_k_parallel(dpt_k_team *team, int n_threads, void (*fn)(void *ctx, dpt_k_region *r),
                    void *ctx) {
    region_shared sh;
    atomic_init(&sh.count, 0);
    atomic_init(&sh.phase, 0);
    sh.fn = fn;
    sh.ctx = ctx;
    /* a region inside a region runs on its caller alone */
    dpt_k_team_run(tl_in_region ? NULL : team, n_threads, region_task, &sh);
}
