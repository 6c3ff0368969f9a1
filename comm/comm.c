/* comm.c - start-up and shutdown, rank groups, the watchdog, errors,
 * agreement and the small collectives. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "comm/internal.h"

/* ------------------------------------------------------------- helpers */

double comm_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int comm_fail(Comm *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof c->error, fmt, ap);
    va_end(ap);
    return -1;
}

int comm_fail_mpi(Comm *c, int rc, const char *fmt, ...)
{
    char what[512], text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "MPI error code %d", rc);
    snprintf(c->error, sizeof c->error, "rank %d: %s failed: %s", c->rank, what, text);
    return -1;
}

MPI_Comm comm_of(const Comm *c, CommScope s) { return s == COMM_SCOPE_WORLD ? c->impl->world : c->impl->group; }

int comm_scope_rank(const Comm *c, CommScope s) { return s == COMM_SCOPE_WORLD ? c->rank : c->group_rank; }

int comm_scope_size(const Comm *c, CommScope s) { return s == COMM_SCOPE_WORLD ? c->size : c->group_size; }

void comm_step_text(const Comm *c, char *buf, size_t len)
{
    if (c->step >= 0)
        snprintf(buf, len, "step %ld", c->step);
    else
        snprintf(buf, len, "before the first step");
}

void comm_poll_pause(long spins)
{
    if (spins > 64)
        sched_yield();
}

/* ------------------------------------------------------------ watchdog */

/* One line to stderr with a single write, safe from any thread. */
static void wd_report(int world_rank, double waited, double limit, const char *label)
{
    char line[WD_LABEL_MAX + 256];
    int len = snprintf(line, sizeof line,
                       "occkd: watchdog: rank %d waited %.1f s (limit %.1f s) in %s; aborting the job\n",
                       world_rank, waited, limit, label);
    if (len > 0) {
        size_t n = (size_t)len < sizeof line ? (size_t)len : sizeof line - 1;
        ssize_t w = write(STDERR_FILENO, line, n);
        (void)w;
    }
}

static void *wd_main(void *arg)
{
    Watchdog *wd = arg;
    pthread_mutex_lock(&wd->mu);
    while (!wd->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&wd->cv, &wd->mu, &until);
        if (wd->stop || !wd->armed || wd->limit <= 0)
            continue;
        /* A polled wait fires by itself at the limit; the thread only steps in
         * when the main thread is stuck inside MPI well past it. */
        double limit = wd->polled ? wd->limit + (wd->limit > 2.0 ? wd->limit : 2.0) : wd->limit;
        double waited = comm_now() - wd->t0;
        if (waited > limit) {
            wd_report(wd->world_rank, waited, wd->limit, wd->label);
            /* MPI may only be called from the main thread (MPI_THREAD_FUNNELED);
             * a non-zero exit without MPI_Finalize makes mpirun end the job. */
            _exit(COMM_WATCHDOG_EXIT);
        }
    }
    pthread_mutex_unlock(&wd->mu);
    return NULL;
}

static int wd_start(Comm *c, double limit)
{
    Watchdog *wd = &c->impl->wd;
    pthread_mutex_init(&wd->mu, NULL);
    pthread_cond_init(&wd->cv, NULL);
    wd->limit = limit;
    wd->world_rank = c->rank;
    int rc = pthread_create(&wd->thread, NULL, wd_main, wd);
    if (rc != 0)
        return comm_fail(c, "rank %d: cannot start the watchdog thread: %s", c->rank, strerror(rc));
    wd->started = 1;
    return 0;
}

static void wd_stop(Comm *c)
{
    Watchdog *wd = &c->impl->wd;
    if (!wd->started)
        return;
    pthread_mutex_lock(&wd->mu);
    wd->stop = 1;
    pthread_cond_signal(&wd->cv);
    pthread_mutex_unlock(&wd->mu);
    pthread_join(wd->thread, NULL);
    pthread_cond_destroy(&wd->cv);
    pthread_mutex_destroy(&wd->mu);
    wd->started = 0;
}

/* Under the lock: a new label and, when arm is set, the start of a wait. */
static void wd_update(Watchdog *wd, int arm, int polled, const char *fmt, va_list ap)
{
    pthread_mutex_lock(&wd->mu);
    vsnprintf(wd->label, sizeof wd->label, fmt, ap);
    if (arm) {
        wd->polled = polled;
        wd->t0 = comm_now();
        wd->armed = 1;
    }
    pthread_mutex_unlock(&wd->mu);
}

void wd_arm(Comm *c, int polled, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    wd_update(&c->impl->wd, 1, polled, fmt, ap);
    va_end(ap);
}

void wd_relabel(Comm *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    wd_update(&c->impl->wd, 0, 0, fmt, ap);
    va_end(ap);
}

void wd_disarm(Comm *c)
{
    Watchdog *wd = &c->impl->wd;
    pthread_mutex_lock(&wd->mu);
    wd->armed = 0;
    pthread_mutex_unlock(&wd->mu);
}

void wd_check(Comm *c)
{
    Watchdog *wd = &c->impl->wd;
    /* armed, t0 and limit are written by this (the main) thread only */
    if (!wd->armed || wd->limit <= 0)
        return;
    double waited = comm_now() - wd->t0;
    if (waited <= wd->limit)
        return;
    char label[WD_LABEL_MAX];
    pthread_mutex_lock(&wd->mu);
    memcpy(label, wd->label, sizeof label);
    pthread_mutex_unlock(&wd->mu);
    wd_report(c->rank, waited, wd->limit, label);
    MPI_Abort(MPI_COMM_WORLD, COMM_WATCHDOG_EXIT);
    _exit(COMM_WATCHDOG_EXIT); /* not reached */
}

void comm_set_watchdog(Comm *c, double seconds)
{
    Watchdog *wd = &c->impl->wd;
    pthread_mutex_lock(&wd->mu);
    wd->limit = seconds == 0 ? COMM_WATCHDOG_DEFAULT : seconds;
    pthread_mutex_unlock(&wd->mu);
}

void comm_set_step(Comm *c, long step) { c->step = step; }

int comm_wait(Comm *c, MPI_Request *req, const char *what)
{
    char step[64];
    comm_step_text(c, step, sizeof step);
    wd_arm(c, 1, "%s at %s", what, step);
    long spins = 0;
    for (;;) {
        int done = 0;
        int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) {
            wd_disarm(c);
            return comm_fail_mpi(c, rc, "%s at %s", what, step);
        }
        if (done)
            break;
        wd_check(c);
        comm_poll_pause(++spins);
    }
    wd_disarm(c);
    return 0;
}

/* ---------------------------------------------------------- life cycle */

/* Cores this process may run on (its affinity mask), or `fallback`. */
static int affinity_cores(int fallback)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return fallback;
    int n = CPU_COUNT(&set);
    return n > 0 ? n : fallback;
}

static void suggest_threads(Comm *c, const CommOptions *o)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    c->node_cores = online > 0 ? (int)online : 1;
    c->own_cores = affinity_cores(c->node_cores);
    if (o && o->threads > 0) {
        c->threads = o->threads;
        return;
    }
    int share = c->node_cores / (c->local_size > 0 ? c->local_size : 1);
    int own = c->own_cores;
    c->threads = share < own ? share : own;
    if (c->threads < 1)
        c->threads = 1;
}

static int node_ranks(Comm *c)
{
    MPI_Comm node;
    int rc = MPI_Comm_split_type(c->impl->world, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node);
    if (rc != MPI_SUCCESS)
        return comm_fail_mpi(c, rc, "MPI_Comm_split_type (ranks of this node)");
    MPI_Comm_rank(node, &c->local_rank);
    MPI_Comm_size(node, &c->local_size);
    MPI_Comm_free(&node);
    return 0;
}

static int set_single_group(Comm *c)
{
    int rc = MPI_Comm_dup(c->impl->world, &c->impl->group);
    if (rc != MPI_SUCCESS)
        return comm_fail_mpi(c, rc, "MPI_Comm_dup (group communicator)");
    MPI_Comm_set_errhandler(c->impl->group, MPI_ERRORS_RETURN);
    c->n_groups = 1;
    c->group = 0;
    c->group_rank = c->rank;
    c->group_size = c->size;
    c->group_leader = 0;
    return 0;
}

int comm_init(int *argc, char ***argv, const CommOptions *o, Comm *c)
{
    memset(c, 0, sizeof *c);
    c->step = -1;
    c->max_count = INT_MAX;
    int inited = 0;
    MPI_Initialized(&inited);
    if (inited)
        return comm_fail(c, "comm_init: MPI is already initialised (call comm_init once per process)");
    int provided = 0;
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS)
        return comm_fail(c, "comm_init: MPI_Init_thread failed with code %d", rc);
    c->thread_level = provided;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    if (provided < MPI_THREAD_FUNNELED)
        return comm_fail(c, "comm_init: MPI provides thread level %d, below MPI_THREAD_FUNNELED", provided);
    c->impl = calloc(1, sizeof *c->impl);
    if (!c->impl)
        return comm_fail(c, "comm_init: out of memory");
    c->impl->world = MPI_COMM_NULL;
    c->impl->group = MPI_COMM_NULL;
    rc = MPI_Comm_dup(MPI_COMM_WORLD, &c->impl->world);
    if (rc != MPI_SUCCESS)
        return comm_fail_mpi(c, rc, "MPI_Comm_dup (world communicator)");
    MPI_Comm_set_errhandler(c->impl->world, MPI_ERRORS_RETURN);
    if (node_ranks(c) || set_single_group(c))
        return -1;
    suggest_threads(c, o);
    double limit = o ? o->watchdog_seconds : 0;
    return wd_start(c, limit == 0 ? COMM_WATCHDOG_DEFAULT : limit);
}

void comm_finalize(Comm *c)
{
    if (c->impl) {
        wd_stop(c);
        if (c->impl->group != MPI_COMM_NULL)
            MPI_Comm_free(&c->impl->group);
        if (c->impl->world != MPI_COMM_NULL)
            MPI_Comm_free(&c->impl->world);
        free(c->impl);
        c->impl = NULL;
    }
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (inited && !finalized)
        MPI_Finalize();
}

/* Group of world rank r when `size` ranks form g groups of consecutive ranks,
 * the first `size % g` groups one rank larger; *first and *count describe it. */
static int group_of(int r, int size, int g, int *first, int *count)
{
    int base = size / g, extra = size % g;
    int big = (base + 1) * extra; /* ranks in the larger groups */
    int grp = r < big ? r / (base + 1) : extra + (r - big) / base;
    *count = grp < extra ? base + 1 : base;
    *first = grp < extra ? grp * (base + 1) : big + (grp - extra) * base;
    return grp;
}

int comm_split_groups(Comm *c, int n_groups)
{
    if (n_groups < 1 || n_groups > c->size)
        return comm_fail(c, "comm_split_groups: %d groups requested for %d ranks (expected 1 to %d)", n_groups,
                         c->size, c->size);
    int first, count;
    int grp = group_of(c->rank, c->size, n_groups, &first, &count);
    MPI_Comm group;
    wd_arm(c, 0, "splitting %d ranks into %d groups", c->size, n_groups);
    int rc = MPI_Comm_split(c->impl->world, grp, c->rank, &group);
    wd_disarm(c);
    if (rc != MPI_SUCCESS)
        return comm_fail_mpi(c, rc, "MPI_Comm_split into %d groups", n_groups);
    MPI_Comm_set_errhandler(group, MPI_ERRORS_RETURN);
    int grank, gsize;
    MPI_Comm_rank(group, &grank);
    MPI_Comm_size(group, &gsize);
    if (gsize != count || grank != c->rank - first) {
        MPI_Comm_free(&group);
        return comm_fail(c, "comm_split_groups: rank %d got group rank %d of %d, expected %d of %d", c->rank,
                         grank, gsize, c->rank - first, count);
    }
    MPI_Comm_free(&c->impl->group);
    c->impl->group = group;
    c->n_groups = n_groups;
    c->group = grp;
    c->group_rank = grank;
    c->group_size = gsize;
    c->group_leader = first;
    return 0;
}

void comm_describe(const Comm *c, char *buf, size_t len)
{
    snprintf(buf, len, "rank %d/%d (node %d/%d, group %d/%d rank %d/%d), %d thread%s per rank (%d core%s on the node)",
             c->rank, c->size, c->local_rank, c->local_size, c->group, c->n_groups, c->group_rank, c->group_size,
             c->threads, c->threads == 1 ? "" : "s", c->node_cores, c->node_cores == 1 ? "" : "s");
}

/* ---------------------------------------------------- errors, agreement */

int comm_agree(Comm *c, CommScope s, int local_status, char *msg, size_t cap, int *failed_rank)
{
    MPI_Comm comm = comm_of(c, s);
    int me = comm_scope_rank(c, s);
    int key = local_status ? me : INT_MAX, first = INT_MAX;
    MPI_Request req;
    int rc = MPI_Iallreduce(&key, &first, 1, MPI_INT, MPI_MIN, comm, &req);
    if (rc != MPI_SUCCESS || comm_wait(c, &req, "error agreement") != 0) {
        if (rc != MPI_SUCCESS)
            comm_fail_mpi(c, rc, "MPI_Iallreduce (error agreement)");
        if (msg && cap)
            snprintf(msg, cap, "%s", c->error);
        return -1;
    }
    if (failed_rank)
        *failed_rank = first == INT_MAX ? -1 : first;
    if (first == INT_MAX)
        return 0;
    char text[COMM_MSG_MAX] = "";
    if (me == first)
        snprintf(text, sizeof text, "%s", msg && msg[0] ? msg : "(no message)");
    rc = MPI_Ibcast(text, COMM_MSG_MAX, MPI_CHAR, first, comm, &req);
    if (rc != MPI_SUCCESS || comm_wait(c, &req, "error message broadcast") != 0) {
        if (rc != MPI_SUCCESS)
            comm_fail_mpi(c, rc, "MPI_Ibcast (error message of rank %d)", first);
        if (msg && cap)
            snprintf(msg, cap, "%s", c->error);
        return -1;
    }
    text[COMM_MSG_MAX - 1] = '\0';
    if (msg && cap)
        snprintf(msg, cap, "%s", text);
    return 1;
}

_Noreturn void comm_abort_all(const Comm *c, const char *msg)
{
    int rank = c ? c->rank : -1;
    fprintf(stderr, "occkd: fatal error on rank %d: %s\n", rank, msg ? msg : "(no message)");
    fflush(stderr);
    fflush(stdout);
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (inited && !finalized)
        MPI_Abort(MPI_COMM_WORLD, COMM_ABORT_EXIT);
    exit(COMM_ABORT_EXIT);
}

/* ----------------------------------------------------- small collectives */

int comm_barrier(Comm *c, CommScope s)
{
    MPI_Request req;
    int rc = MPI_Ibarrier(comm_of(c, s), &req);
    if (rc != MPI_SUCCESS)
        return comm_fail_mpi(c, rc, "MPI_Ibarrier");
    return comm_wait(c, &req, "barrier");
}

static int sum_in_place(Comm *c, CommScope s, void *v, int n, MPI_Datatype type, const char *what)
{
    if (n < 0)
        return comm_fail(c, "%s: negative count %d", what, n);
    if (n == 0)
        return 0;
    MPI_Request req;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, v, n, type, MPI_SUM, comm_of(c, s), &req);
    if (rc != MPI_SUCCESS)
        return comm_fail_mpi(c, rc, "MPI_Iallreduce (%s of %d values)", what, n);
    return comm_wait(c, &req, what);
}

int comm_sum_f64(Comm *c, CommScope s, double *v, int n) { return sum_in_place(c, s, v, n, MPI_DOUBLE, "metrics allreduce"); }

int comm_sum_i64(Comm *c, CommScope s, int64_t *v, int n) { return sum_in_place(c, s, v, n, MPI_INT64_T, "count allreduce"); }

/* Broadcast of `count` elements of `size` bytes in calls of at most
 * c->max_count elements each. */
static int bcast_chunked(Comm *c, MPI_Comm comm, void *buf, size_t count, MPI_Datatype type, size_t size, int root,
                         const char *what)
{
    size_t max = c->max_count > 0 ? c->max_count : 1;
    for (size_t at = 0; at < count; at += max) {
        size_t len = count - at < max ? count - at : max;
        MPI_Request req;
        int rc = MPI_Ibcast((char *)buf + at * size, (int)len, type, root, comm, &req);
        if (rc != MPI_SUCCESS)
            return comm_fail_mpi(c, rc, "MPI_Ibcast (%s, elements %zu-%zu)", what, at, at + len - 1);
        if (comm_wait(c, &req, what) != 0)
            return -1;
    }
    return 0;
}

int comm_bcast_bytes(Comm *c, CommScope s, void *buf, size_t bytes, int root)
{
    if (root < 0 || root >= comm_scope_size(c, s))
        return comm_fail(c, "comm_bcast_bytes: root %d outside 0..%d", root, comm_scope_size(c, s) - 1);
    return bcast_chunked(c, comm_of(c, s), buf, bytes, MPI_BYTE, 1, root, "byte broadcast");
}

int comm_bcast_floats(Comm *c, float *v, size_t n)
{
    return bcast_chunked(c, c->impl->group, v, n, MPI_FLOAT, sizeof(float), 0, "weight broadcast");
}
