/* internal.h - private to comm/: the MPI handles behind Comm, the watchdog,
 * error formatting and the polled wait that every collective goes through. */
#ifndef OCCKD_COMM_INTERNAL_H
#define OCCKD_COMM_INTERNAL_H

#include <mpi.h>
#include <pthread.h>

#include "comm/comm.h"

#define WD_LABEL_MAX 256

/* What the rank is waiting on, shared between the main thread (which arms
 * and disarms it) and the watchdog thread (which only reads it). */
typedef struct {
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    double limit;  /* seconds; <= 0: off */
    int armed;
    int polled;    /* 1: the main thread checks the limit itself (the thread is a backstop) */
    double t0;     /* when the current wait began (comm_now) */
    char label[WD_LABEL_MAX];
    int world_rank;
} Watchdog;

struct CommImpl {
    MPI_Comm world; /* a duplicate of MPI_COMM_WORLD: our messages never mix with anyone else's */
    MPI_Comm group;
    Watchdog wd;
};

/* Sets c->error and returns -1. comm_fail_mpi appends MPI's text for rc. */
int comm_fail(Comm *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int comm_fail_mpi(Comm *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

MPI_Comm comm_of(const Comm *c, CommScope s);
int comm_scope_rank(const Comm *c, CommScope s);
int comm_scope_size(const Comm *c, CommScope s);

/* "step 7" or "before the first step". */
void comm_step_text(const Comm *c, char *buf, size_t len);

/* Watchdog: arm before waiting (label says on what), disarm after. */
void wd_arm(Comm *c, int polled, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void wd_relabel(Comm *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void wd_disarm(Comm *c);
/* Main thread, inside a polled wait: aborts the job when the limit is passed. */
void wd_check(Comm *c);
/* Gives the other ranks on an oversubscribed node a chance to run. */
void comm_poll_pause(long spins);

/* Waits for one request on the main thread under the watchdog; `what` names
 * the operation ("metrics allreduce"). */
int comm_wait(Comm *c, MPI_Request *req, const char *what);

#endif
