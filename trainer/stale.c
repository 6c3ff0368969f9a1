/* stale.c - before anything trains, world rank 0 looks at every file the
 * job's cells have left in the output folder (results, checkpoints, model
 * files) and refuses the run when one belongs to another cell or was made
 * with other settings: nothing stale or foreign is ever reused, and nothing
 * finished is overwritten. The message names each file and the settings
 * that changed, and says what to do. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/grid_internal.h"

#define PROBLEMS_SHOWN 4

typedef struct {
    char *msg;
    size_t len;
    int n;
} Problems;

static void add(Problems *p, const char *what)
{
    if (p->n++ >= PROBLEMS_SHOWN)
        return;
    size_t used = strlen(p->msg);
    snprintf(p->msg + used, p->len - used, "\n  %s", what);
}

/* A file of the cell, when present, must carry the cell's stamp. */
static void check_stamped(Problems *p, const char *path, const CellStamp *want, CellStamp *scratch)
{
    char err[2048];
    if (!file_exists(path))
        return;
    if (cell_stamp_read(path, scratch, err, sizeof err) || cell_stamp_compare(path, scratch, want, err, sizeof err))
        add(p, err);
}

/* 1 when the cell's result says done (and is the cell's own, current). */
static int check_cell(Problems *p, const Job *job, int seed_i, int task, int model, const char *method,
                      CellResult *r, CellStamp *want)
{
    char ckpt[2048], mf[2048], res[2048], err[2048];
    cell_paths(job, seed_i, task, model, method, ckpt, mf, res, sizeof ckpt);
    if (job_cell_stamp(job, seed_i, task, model, method, want)) {
        add(p, "the text of a cell's settings does not fit its buffer");
        return 0;
    }
    int done = 0;
    if (file_exists(res)) {
        if (cell_result_load(res, r, err, sizeof err)) {
            add(p, err);
        } else {
            done = strcmp(r->status, "done") == 0;
            if (done && cell_stamp_compare(res, &r->stamp, want, err, sizeof err))
                add(p, err);
            cell_result_free(r);
        }
    }
    if (!done)
        check_stamped(p, ckpt, want, &r->stamp);
    check_stamped(p, mf, want, &r->stamp);
    return done;
}

int grid_check_outputs(const Grid *g, char *msg, size_t len)
{
    const Job *job = g->job;
    CellResult *r = malloc(sizeof *r);
    CellStamp *want = malloc(sizeof *want);
    if (!r || !want) {
        free(r);
        free(want);
        snprintf(msg, len, "out of memory");
        return -1;
    }
    snprintf(msg, len, "files in %s belong to other cells or were made with other settings:", job->output);
    Problems p = {msg, len, 0};
    for (int i = 0; i < g->n_chains; i++) {
        const Chain *ch = &g->chains[i];
        for (int k = 0; k < ch->n_methods; k++)
            check_cell(&p, job, ch->seed_i, ch->task, ch->model, method_name(ch->methods[k]), r, want);
        for (int f = 0; f < job->n_fusions; f++)
            if (job->fusions[f].kind == FUSION_CONCAT)
                check_cell(&p, job, ch->seed_i, ch->task, ch->model, job->fusions[f].name, r, want);
    }
    free(r);
    free(want);
    if (p.n == 0) {
        msg[0] = 0;
        return 0;
    }
    size_t used = strlen(msg);
    if (p.n > PROBLEMS_SHOWN)
        snprintf(msg + used, len - used, "\n  (and %d more)", p.n - PROBLEMS_SHOWN);
    used = strlen(msg);
    snprintf(msg + used, len - used,
             "\nNothing was trained. Give these settings another job.output, or delete the files named to train "
             "their cells again.");
    return -1;
}
