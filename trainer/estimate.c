/* estimate.c - what a job will cost a rank, before it runs (occkd_train
 * --check): the cache's bytes on disk per data set, and per rank the memory
 * for data (loader batches and labels; the whole cache with data.in_memory)
 * and for the largest cell (its network's parameters, gradients, momentum,
 * best weights, activations and scratch; the frozen teacher of a kd or
 * triplet student too).
 * MPI and the libraries add some 50 MB per rank on top. */
#include <stdio.h>
#include <string.h>

#include "trainer/grid.h"

static double mib(double bytes) { return bytes / (1 << 20); }

/* Bytes of one cell's networks on a rank that holds `local` samples a pass. */
static double cell_bytes(const Job *job, int t, int m, int student, int local)
{
    NetSpec s = job_netspec(job, t, m);
    if (job->tasks[t].classes)
        s.classes = job->tasks[t].classes;
    char err[256];
    Net *net = net_create(&s, local, 0, err, sizeof err);
    if (!net)
        return 0;
    /* network (params, grads, activations, scratch) + velocity + best weights */
    double b = (double)net_memory_bytes(net) + 2.0 * net->n_params * sizeof(float) + net->n_state * sizeof(float);
    if (student) /* the frozen teacher: weights and activations, no optimiser */
        b += (double)net_memory_bytes(net);
    net_free(net);
    return b;
}

void job_print_estimate(const Job *job, int ranks, FILE *f)
{
    int groups = job->parallel.groups < ranks ? job->parallel.groups : ranks;
    int per_group = groups > 0 ? ranks / groups : ranks;
    if (per_group < 1)
        per_group = 1;
    fprintf(f, "estimate for %d rank(s) in %d group(s) (set OCCKD_RANKS=N to see another count):\n", ranks,
            groups > 0 ? groups : 1);
    double disk = 0, worst_data = 0, worst_cell = 0;
    char worst_name[256] = "";
    for (int t = 0; t < job->n_tasks; t++) {
        const TaskSpec *ts = &job->tasks[t];
        const DataOptions *o = &ts->data;
        int64_t n = dataset_size_estimate(o);
        int ss, sc;
        data_stored_geometry(o, &ss, &sc);
        double sample = (double)o->channels * o->side * o->side, stored = (double)sc * ss * ss;
        double cache = (double)n * stored;
        int shared = 0; /* tasks reading the same cache count once */
        char a[1100], b[1100];
        for (int u = 0; u < t && dataset_cache_path(o, job->cache, a, sizeof a) == 0; u++)
            shared |= dataset_cache_path(&job->tasks[u].data, job->cache, b, sizeof b) == 0 && !strcmp(a, b);
        if (!shared)
            disk += cache;
        int biggest_local = 0;
        for (int m = 0; m < job->n_models; m++)
            for (int k = -1; k < job->n_methods; k++) {
                Method me = k < 0 ? METHOD_TEACHER : job->methods[k];
                TrainSettings s = job_settings(job, t, m, me);
                int micro = s.batch / (s.accum > 0 ? s.accum : 1);
                int local = (micro + per_group - 1) / per_group; /* evaluation uses the same */
                biggest_local = local > biggest_local ? local : biggest_local;
                double c = cell_bytes(job, t, m, method_uses_kd(me) || method_uses_triplet(me), local);
                if (c > worst_cell) {
                    worst_cell = c;
                    snprintf(worst_name, sizeof worst_name, "%s/%s/%s", ts->name, job->models[m].name, method_name(me));
                }
            }
        /* loader: LOADER_SLOTS batches of clean + occluded floats and the raw bytes,
         * twice (training and evaluation loaders may overlap); labels and names */
        double data = 2.0 * LOADER_SLOTS * biggest_local * sample * (2 * sizeof(float) + 1) + (double)n * 64;
        if (o->in_memory)
            data += cache;
        worst_data = data > worst_data ? data : worst_data;
        if (n > 0)
            fprintf(f, "  task %-12s cache %.0f MiB on disk (%lld faces of %dx%dx%d bytes)%s, data memory %.1f MiB per rank%s\n",
                    ts->name, mib(cache), (long long)n, sc, ss, ss, shared ? ", shared" : "",
                    mib(data), o->in_memory ? " (in memory)" : " (streamed)");
        else
            fprintf(f, "  task %-12s cache: %d x %d x %d bytes per image (the folder's count decides)\n", ts->name,
                    sc, ss, ss);
    }
    fprintf(f, "  largest cell %s: %.0f MiB per rank (networks, optimiser, activations)\n", worst_name,
            mib(worst_cell));
    fprintf(f, "  in all: %.0f MiB of caches on disk (plus as much again while a cache is built); about %.0f MiB "
               "per rank, MPI and libraries not counted\n",
            mib(disk), mib(worst_data + worst_cell));
}
