/* grid_data.c - the tasks' data sets: mapped to distinct sources, loaded
 * by a group when its first cell of a task starts, released after its last. */
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoints/checkpoints.h"
#include "trainer/grid_internal.h"

/* ------------------------------------------------------------- data */

/* Which tasks share a data set (the same cache file): decided from the job
 * alone, nothing is loaded. */
int map_data(Grid *g)
{
    const Job *job = g->job;
    int T = job->n_tasks;
    g->data = calloc((size_t)T, sizeof(Dataset));
    g->loaded = calloc((size_t)T, sizeof(int));
    g->task_data = calloc((size_t)T, sizeof(int));
    g->task_ready = calloc((size_t)T, sizeof(int));
    g->mean = calloc((size_t)T, sizeof *g->mean);
    g->std = calloc((size_t)T, sizeof *g->std);
    g->age_mean = calloc((size_t)T, sizeof(double));
    g->age_std = calloc((size_t)T, sizeof(double));
    char (*keys)[1100] = calloc((size_t)T, sizeof *keys);
    if (!g->data || !g->loaded || !g->task_data || !g->task_ready || !g->mean || !g->std || !g->age_mean ||
        !g->age_std || !keys) {
        free(keys);
        return -1;
    }
    for (int t = 0; t < T; t++) {
        char key[1100];
        if (dataset_cache_path(&job->tasks[t].data, job->cache, key, sizeof key))
            snprintf(key, sizeof key, "task %d", t); /* no cache: nothing to share */
        int found = -1;
        for (int i = 0; i < g->n_data; i++)
            if (strcmp(keys[i], key) == 0)
                found = i;
        if (found < 0) {
            found = g->n_data++;
            snprintf(keys[found], sizeof keys[found], "%s", key);
        }
        g->task_data[t] = found;
    }
    free(keys);
    return 0;
}

/* The statistics a task's cells need from its data set. */
static int task_stats(Grid *g, int t, char *err, size_t errlen)
{
    const Job *job = g->job;
    const Dataset *d = &g->data[g->task_data[t]];
    char msg[512];
    if (dataset_channel_stats(d, SPLIT_TRAIN, g->mean[t], g->std[t], msg, sizeof msg)) {
        snprintf(err, errlen, "task %s: %s", job->tasks[t].name, msg);
        return -1;
    }
    TaskSpec *ts = &((Job *)job)->tasks[t];
    if (ts->target == TARGET_CLASS)
        ts->classes = d->n_classes[ATTR_CLASS];
    if (ts->regression) {
        if (!d->age) {
            snprintf(err, errlen, "task %s: the data set has no ages (source %s)", ts->name,
                     source_name(job->tasks[t].data.source));
            return -1;
        }
        double s = 0, s2 = 0;
        int n = 0;
        for (int i = 0; i < d->n; i++)
            if (d->split[i] == SPLIT_TRAIN && !isnan(d->age[i])) {
                s += d->age[i];
                s2 += (double)d->age[i] * d->age[i];
                n++;
            }
        g->age_mean[t] = n ? s / n : 0;
        g->age_std[t] = n > 1 ? sqrt(fmax(s2 / n - g->age_mean[t] * g->age_mean[t], 1e-6)) : 1;
    } else if (ts->classes < 2 || !d->attr_class[ts->attr]) {
        snprintf(err, errlen, "task %s: the data set has no %s labels", ts->name, target_name(ts->target));
        return -1;
    }
    g->task_ready[t] = 1;
    return 0;
}

/* Loads task t's data set on this rank's group when it is not loaded yet
 * (the group's ranks together: its leader checks or builds the cache).
 * Collective over the group; every rank returns the same status. */
int acquire_task(Grid *g, int t, char *err, size_t errlen)
{
    const Job *job = g->job;
    Comm *comm = g->comm;
    int k = g->task_data[t], status = 0;
    char msg[COMM_MSG_MAX] = "";
    if (!g->loaded[k]) {
        const DataOptions *o = &job->tasks[t].data;
        if (comm->group_rank == 0) {
            printf("occkd: group %d: loading data for task %s (%s)\n", comm->group, job->tasks[t].name,
                   source_name(o->source));
            fflush(stdout);
        }
        DataComm dc = trainer_datacomm_group(comm);
        status = dataset_load(o, job->cache, &dc, &g->data[k], msg, sizeof msg);
        if (status == 0) {
            g->loaded[k] = 1;
            const Dataset *d = &g->data[k];
            if (comm->group_rank == 0)
                printf("occkd: group %d: %s: %d samples (train %d, val %d, test %d)%s\n", comm->group,
                       d->source_desc, d->n, dataset_split_count(d, SPLIT_TRAIN), dataset_split_count(d, SPLIT_VAL),
                       dataset_split_count(d, SPLIT_TEST), d->from_cache ? ", from the cache" : "");
        } else {
            char m2[COMM_MSG_MAX];
            snprintf(m2, sizeof m2, "task %s: %s", job->tasks[t].name, msg);
            snprintf(msg, sizeof msg, "%s", m2);
        }
    }
    if (status == 0 && !g->task_ready[t])
        status = task_stats(g, t, msg, sizeof msg);
    if (comm_agree(comm, COMM_SCOPE_GROUP, status != 0, msg, sizeof msg, NULL)) {
        snprintf(err, errlen, "%s", msg);
        return -1;
    }
    return 0;
}

/* Frees data set k on this rank (its last chain on the group is done). */
void release_data(Grid *g, int k, const char *task)
{
    if (!g->loaded[k])
        return;
    g->bytes_read += dataset_bytes_read(&g->data[k]);
    dataset_free(&g->data[k]);
    g->loaded[k] = 0;
    for (int t = 0; t < g->job->n_tasks; t++)
        if (g->task_data[t] == k)
            g->task_ready[t] = 0;
    if (task && g->comm->group_rank == 0) {
        printf("occkd: group %d: released the data of task %s\n", g->comm->group, task);
        fflush(stdout);
    }
}

