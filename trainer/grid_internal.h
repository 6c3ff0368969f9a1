/* grid_internal.h - what the files of the grid share: the plan's chains,
 * the grid's state on this rank, and the functions one file offers the
 * others. grid.c plans and runs the chains, grid_data.c loads and releases
 * the tasks' data, cell.c trains one cell (and a concatenation fusion),
 * assemble.c writes results.h5. */
#ifndef OCCKD_GRID_INTERNAL_H
#define OCCKD_GRID_INTERNAL_H

#include <stdint.h>
#include <time.h>

#include "checkpoints/checkpoints.h"
#include "trainer/grid.h"
#include "trainer/trainer.h"

typedef struct {
    int seed_i, task, model;
    int n_methods;
    Method methods[METHOD_COUNT];
    double cost;
    int group;
} Chain;

typedef struct {
    const Job *job;
    Comm *comm;
    int n_data;
    Dataset *data;        /* distinct data sets, loaded when a chain of this group needs one */
    int *loaded;          /* per data set: 1 while loaded */
    int *task_data;       /* task -> data set */
    int *task_ready;      /* per task: normalisation and target statistics computed */
    int64_t bytes_read;   /* pixel bytes this rank read from caches, data sets released so far */
    float (*mean)[4], (*std)[4];
    double *age_mean, *age_std;
    int n_chains;
    Chain *chains;
    int failed;           /* some cell failed */
    int stopped;          /* a signal asked to stop */
    int data_failed;      /* a task's data could not be loaded */
} Grid;

/* 1 once SIGTERM or SIGUSR1 arrived (grid.c). */
int grid_stop_requested(void);

/* cell.c: a cell's files, name and result, and its training */
/* The group leader's value (e.g. what it found on the file system), told to
 * every rank of the group. Collective over the group. */
int group_decides(Comm *comm, int leader_value);
int file_exists(const char *path);
/* Reads OCCKD_FAULT_BLIND_RANK (a test switch; see cell.c). */
void fault_blind_init(int world_rank);
/* 1 when the cell result file at `path` exists and says "done". */
int cell_done(const char *path);
/* A cell's random keys come from the names of its task and model. */
uint64_t name_key(const char *task, const char *model);
void cell_paths(const Job *job, int seed_i, int task, int model, const char *method, char *ckpt,
                char *model_file, char *result, size_t len);
void cell_name(const Job *job, int seed_i, int task, int model, const char *method, char *out, size_t len);
void result_header(CellResult *r, const Job *job, int seed_i, int task, int model, const char *method);
/* Writes a result file for a cell that failed or was skipped (group leader). */
void write_status(Grid *g, int seed_i, int task, int model, const char *method, const char *status,
                  const char *message);
/* Trains and evaluates one cell on this rank's group. 0 done, 1 stopped by a
 * signal (checkpoint written), -1 failed (message in err). Collective. */
int run_cell(Grid *g, const Chain *ch, Method method, char *err, size_t errlen);
int run_concat(Grid *g, const Chain *ch, const FusionSpec *f, char *err, size_t errlen);

/* grid_data.c: the tasks' data */
int map_data(Grid *g);
/* Loads task t's data set for this group if it is not loaded (collective over the group). */
int acquire_task(Grid *g, int t, char *err, size_t errlen);
void release_data(Grid *g, int k, const char *task);

/* stale.c: 0 when every file the cells left in the output folder is the
 * cell's own and of its current settings; -1 with the message (world rank 0). */
int grid_check_outputs(const Grid *g, char *msg, size_t len);

/* assemble.c: results.h5 and the run's cost */
int64_t peak_rss_bytes(void);
void print_cost(const int64_t *peak, const int64_t *bytes, int ranks);
int assemble(const Job *job, int ranks, time_t started, const int64_t *peak, const int64_t *bytes, char *err,
             size_t errlen);

#endif
