/* grid.h - running a whole job (private to trainer/). */
#ifndef OCCKD_GRID_H
#define OCCKD_GRID_H

#include <stddef.h>

#include "trainer/job.h"

#ifndef OCCKD_VERSION /* from CMakeLists.txt's project() */
#error "OCCKD_VERSION is not defined: build with CMake"
#endif

/* SIGTERM and SIGUSR1 make the running cells checkpoint and the run stop
 * (exit 0); a rerun continues. */
void grid_install_signals(void);

/* Runs every cell of the job not finished yet, then writes results.h5.
 * Collective over the world. Returns EXIT_OK, or EXIT_FAILED with a message
 * in err (identical on every rank). */
int grid_run(const Job *job, Comm *comm, char *err, size_t errlen);

/* Prints what the job will cost: cache bytes on disk per data set, data
 * memory per rank, and the memory of the largest cell per rank, for `ranks`
 * ranks (occkd_train --check). */
void job_print_estimate(const Job *job, int ranks, FILE *f);

/* The output folder (trainer/output.c). output_check: without touching
 * anything, 0 when `dir` is a folder occkd may write in or can be created;
 * -1 with a message naming job.output. output_prepare: creates it and writes
 * a probe file. output_lock: takes the run's lock file <dir>/.occkd-lock,
 * taking over a stale one with a message; -1 with a message naming the
 * holder when another run holds it. output_unlock: removes this process's
 * lock. World rank 0 calls them. */
int output_check(const char *dir, char *err, size_t errlen);
int output_prepare(const char *dir, char *err, size_t errlen);
int output_lock(const char *dir, char *err, size_t errlen);
void output_unlock(const char *dir);

#endif
