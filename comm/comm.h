/* comm.h - everything occkd does with MPI, behind one small interface.
 *
 * comm/ sees flat buffers only (float gradients and weights, double metrics,
 * int labels, raw bytes); it knows nothing of layers. It is the only folder
 * that includes <mpi.h>, and this header does not: callers see plain C types.
 *
 * The world of ranks is split into groups (one group per grid cell trained
 * side by side; a single group holding every rank by default). The data
 * collectives below act within the caller's group; agreement, barriers and
 * the small sums take a CommScope so that job-level decisions can involve the
 * whole world.
 *
 * Error handling. Every function returns 0 on success and -1 when MPI
 * reported an error or an argument was bad; `c->error` then holds a message
 * naming the call and what went wrong. A communication error inside a
 * collective leaves the ranks out of step: the only safe reaction is
 * comm_abort_all(). Errors of the caller's own work (a bad sample, a NaN) are
 * made collective with comm_agree() at agreement points, so that every rank
 * leaves together with the message of the lowest failing rank.
 *
 * Watchdog. Every collective is watched: when one waits longer than
 * `watchdog_seconds`, the rank prints which operation, step and bucket it is
 * stuck in, and the job is aborted, so no rank waits forever for a rank that
 * died or never arrived. Waits are polled on the calling (main) thread and
 * end with MPI_Abort; a helper thread that never calls MPI covers the calls
 * that cannot be polled (the blocking reference allreduce) and ends the
 * process with exit status COMM_WATCHDOG_EXIT, which makes mpirun end the job.
 *
 * Threads. MPI is initialised with MPI_THREAD_FUNNELED: only the thread that
 * called comm_init may call comm_* functions (background data loading must
 * not). `threads` suggests how many compute threads (OpenBLAS, OpenMP) this
 * rank should use: the node's cores divided by the ranks on the node, at most
 * the cores this rank may run on, at least 1. comm/ does not set it; the
 * caller passes it to its thread pools.
 *
 * data/ synchronises through its DataComm hooks; they map one to one onto
 * comm_barrier, comm_sum_i64 and comm_bcast_bytes (root 0) with the scope the
 * data set is loaded in.
 *
 * Typical step:
 *
 *     comm_set_step(&c, step);
 *     // backward calls gradsync_ready(gs, n_ready) after each layer
 *     gradsync_finish(gs);                // all gradients summed and scaled
 *     comm_sum_f64(&c, COMM_SCOPE_GROUP, metrics, n_metrics);
 *     optimiser step ...
 */
#ifndef OCCKD_COMM_H
#define OCCKD_COMM_H

#include <stddef.h>
#include <stdint.h>

#define COMM_MSG_MAX 1024          /* longest message comm_agree carries (bytes, with the NUL) */
#define COMM_WATCHDOG_DEFAULT 600.0 /* seconds a collective may wait by default */
#define COMM_WATCHDOG_EXIT 3        /* exit status / MPI_Abort code when the watchdog fires */
#define COMM_ABORT_EXIT 1           /* MPI_Abort code of comm_abort_all */

typedef enum {
    COMM_SCOPE_GROUP = 0, /* the caller's rank group */
    COMM_SCOPE_WORLD = 1  /* every rank of the job */
} CommScope;

typedef struct {
    int threads;             /* > 0: compute threads per rank; 0: derive from the node */
    double watchdog_seconds; /* > 0: limit; 0: COMM_WATCHDOG_DEFAULT; < 0: no watchdog */
} CommOptions;

typedef struct CommImpl CommImpl; /* MPI handles and the watchdog; private to comm/ */

/* One per process, passed explicitly; all fields are read-only for callers
 * except where noted. */
typedef struct {
    int rank, size;             /* in the world */
    int local_rank, local_size; /* among the ranks on this node (shared memory) */
    int n_groups, group;        /* number of groups, this rank's group (0 .. n_groups-1) */
    int group_rank, group_size; /* rank within the group; the group's leader has group_rank 0 */
    int group_leader;           /* world rank of the group's leader */
    int threads;                /* suggested compute threads for this rank (>= 1) */
    int node_cores;             /* online cores of this node */
    int own_cores;              /* cores this rank may run on (its CPU affinity, set by the launcher) */
    int thread_level;           /* MPI thread level provided (an MPI_THREAD_* value) */
    size_t max_count;           /* largest element count per MPI call (INT_MAX; tests lower it) */
    long step;                  /* current training step, for watchdog messages (-1: none) */
    char error[COMM_MSG_MAX];   /* message of the last failure */
    CommImpl *impl;
} Comm;

/* ------------------------------------------------------------ life cycle */

/* Initialises MPI (MPI_THREAD_FUNNELED), fills *c with one group holding
 * every rank, and starts the watchdog. o may be NULL (defaults). On failure
 * returns -1 with a message in c->error (MPI may then be unusable: print it
 * and exit). */
int comm_init(int *argc, char ***argv, const CommOptions *o, Comm *c);

/* Stops the watchdog, frees the communicators and finalises MPI. */
void comm_finalize(Comm *c);

/* Splits the world into n_groups groups of consecutive ranks (sizes differ
 * by at most one; the first groups get the extra ranks). Collective over the
 * world; replaces the current groups. 1 <= n_groups <= size. */
int comm_split_groups(Comm *c, int n_groups);

/* Changes the watchdog limit (same meaning as CommOptions.watchdog_seconds). */
void comm_set_watchdog(Comm *c, double seconds);

/* Sets the step that watchdog messages name. */
void comm_set_step(Comm *c, long step);

/* One line such as "rank 1/4 (node 1/4, group 0/2 rank 1/2), 1 thread per
 * rank (2 cores on the node)". */
void comm_describe(const Comm *c, char *buf, size_t len);

/* --------------------------------------------------- errors and agreement */

/* Agreement point, collective over the scope. Every rank passes its own
 * status (0: fine) and, when it failed, a message in msg. Returns 0 when
 * every rank is fine; 1 when some rank failed, with msg (capacity cap)
 * replaced on every rank by the message of the lowest failing rank, whose
 * rank within the scope goes to *failed_rank (may be NULL); -1 when the
 * agreement itself failed (c->error, also copied to msg). */
int comm_agree(Comm *c, CommScope s, int local_status, char *msg, size_t cap, int *failed_rank);

/* Fatal error where agreement is impossible: prints msg once (from this
 * rank) and aborts every rank of the job. Never returns. */
_Noreturn void comm_abort_all(const Comm *c, const char *msg);

/* ------------------------------------------------- small collectives */

int comm_barrier(Comm *c, CommScope s);
/* In-place sums over the scope (metrics: loss terms, correct and sample counts). */
int comm_sum_f64(Comm *c, CommScope s, double *v, int n);
int comm_sum_i64(Comm *c, CommScope s, int64_t *v, int n);
/* The bytes of the scope's rank `root` to every rank of the scope. */
int comm_bcast_bytes(Comm *c, CommScope s, void *buf, size_t bytes, int root);

/* --------------------------------------------- weights and checksums */

/* The group leader's n floats to every rank of the group (initial weights). */
int comm_bcast_floats(Comm *c, float *v, size_t n);

/* Seconds on the monotonic clock (no MPI call: any thread, before comm_init). */
double comm_now(void);

/* 64-bit hash of the bytes of v (the same on every platform of one job). */
uint64_t comm_hash_floats(const float *v, size_t n);

/* Checks that v holds the same bytes on every rank of the scope. Returns 0
 * when it does; -1 otherwise, on every rank, with c->error naming `what`
 * and the ranks whose copy differs from that of the scope's rank 0. */
int comm_check_same(Comm *c, CommScope s, const float *v, size_t n, const char *what);

/* ------------------------------------------------ gathers (group) */

/* All-gather of rows in group-rank order. Each rank contributes n_rows rows
 * of d floats (n_rows may differ between ranks, d may not); out receives
 * every rank's rows one after another and must hold cap_rows rows.
 * rows_per_rank (group_size entries, or NULL) receives each rank's count,
 * *total_rows (or NULL) their sum. Fails on every rank when the rows do not
 * fit cap_rows on some rank or when d differs between ranks. */
int comm_allgather_rows(Comm *c, const float *rows, int n_rows, int d, float *out, size_t cap_rows,
                        int *rows_per_rank, int *total_rows);

/* The same for int values (labels): n per rank, out holds cap values. */
int comm_allgather_ints(Comm *c, const int *v, int n, int *out, size_t cap, int *counts, int *total);

/* Gathers per-sample values (predictions) to the group leader. Each rank
 * passes its n values and, in index, the position of each in the whole set
 * (a sample index in [0, n_total)); index NULL means rank order. Every
 * position must be filled exactly once, so the ranks' n sum to n_total. out
 * (n_total floats) is written on the leader only and may be NULL elsewhere.
 * A bad index or count fails on every rank with a message. */
int comm_gather_to_leader(Comm *c, const float *v, const int64_t *index, int n, float *out, size_t n_total);

/* ------------------------------------------------ gradient averaging */

typedef struct {
    size_t bucket_bytes; /* bucket cap; 0: 25 MiB */
    int blocking;        /* 1: one blocking allreduce over the whole buffer in finish (reference) */
    double scale;        /* factor applied after the sum; 0: 1 / group_size (the mean) */
    size_t max_count;    /* elements per MPI call; 0: c->max_count */
} GradSyncOptions;

typedef struct GradSync GradSync;

/* Prepares averaging of grads[0, n) over the group; the buffer must stay
 * valid and in place. Buckets are consecutive ranges of bucket_bytes. The
 * default scale is fixed at creation from the group size: create it after
 * comm_split_groups (again after a new split). */
int gradsync_create(Comm *c, float *grads, size_t n, const GradSyncOptions *o, GradSync **out);
void gradsync_free(GradSync *g);

/* grads[0, n_ready) is final for this step (n_ready never decreases within a
 * step): starts a non-blocking sum of every bucket that lies inside the
 * prefix and progresses the ones in flight. The caller must not touch a
 * reported prefix until gradsync_finish returns. The first call after a
 * finish begins a new step. */
int gradsync_ready(GradSync *g, size_t n_ready);

/* The same with the signature of Pass.grads_ready (user = the GradSync); an
 * error is kept and returned by gradsync_finish. */
void gradsync_on_ready(void *user, size_t n_ready);

/* Progresses the sums in flight without reporting anything new. */
int gradsync_progress(GradSync *g);

/* Starts what is left, waits for every bucket and scales: afterwards every
 * rank of the group holds scale * (sum over ranks) in grads. */
int gradsync_finish(GradSync *g);

/* Seconds the last finish was blocked waiting (in blocking mode: the whole
 * allreduce), for the "allreduce wait share" of the progress line. */
double gradsync_wait_seconds(const GradSync *g);

/* Elements of the current step whose sum has completed and been scaled so
 * far (whole calls, in any order); n after a finish. */
size_t gradsync_completed(const GradSync *g);

/* Number of buckets and of MPI calls per step (after large-count splits). */
size_t gradsync_buckets(const GradSync *g);
size_t gradsync_calls(const GradSync *g);

#endif
