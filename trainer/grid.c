/* grid.c - runs a job's whole grid: every (seed, task, model, method) cell,
 * the fusions, and results.h5.
 *
 * Cells of one (seed, task, model) form a chain: the teacher first, then its
 * students, which start from the teacher's weights and use it frozen. Chains
 * are independent, so they are spread over the rank groups by estimated cost
 * (longest first onto the least loaded group); every rank computes the same
 * plan. A group loads a task's data when its first cell of the task starts
 * and releases them after its last (grid_data.c).
 *
 * Files under the job's output folder:
 *   checkpoints/<task>/<model>/<method>-seed<N>.h5   training state (resume)
 *   models/<task>/<model>/<method>-seed<N>.h5        the cell's final weights
 *   cells/<task>/<model>/<method>-seed<N>.h5         the cell's test results
 *   results.h5                                       assembled at the end
 * A cell is finished once its result file exists (written last, atomically):
 * a rerun skips it; an unfinished cell continues from its checkpoint.
 */
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

/* Set by SIGTERM / SIGUSR1 (Slurm's warning before a time limit or
 * preemption): checkpoint at the next step and stop. A signal handler can
 * only talk through a global. */
static volatile sig_atomic_t g_stop_signal;

static void on_stop_signal(int sig) { g_stop_signal = sig; }

int grid_stop_requested(void) { return g_stop_signal != 0; }

void grid_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESTART; /* a write or fsync in progress must not fail with EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

/* Training samples of a data source, known before its data are loaded (the
 * plan is made before any task is loaded), from dataset_size_estimate. Only
 * the ratios matter, for putting the longest chains first. */
static double train_estimate(const DataOptions *o)
{
    double n = (double)dataset_size_estimate(o);
    if (o->source == SOURCE_SYNTH || o->source == SOURCE_UTKFACE)
        n *= 1.0 - o->val_fraction - o->test_fraction;
    return n > 0 ? n : 10000;
}

/* Training samples x forward flops x (3 for forward+backward, +1 forward of
 * the frozen teacher for students) x epochs. */
static double chain_cost(const Grid *g, const Chain *c)
{
    const Job *job = g->job;
    NetSpec s = job_netspec(job, c->task, c->model);
    if (job->tasks[c->task].classes)
        s.classes = job->tasks[c->task].classes;
    char err[256];
    Net *probe = net_create(&s, 1, 0, err, sizeof err);
    double flops = probe ? net_flops(probe) : 1e9;
    net_free(probe);
    double n = train_estimate(&job->tasks[c->task].data), cost = 0;
    for (int i = 0; i < c->n_methods; i++) {
        TrainSettings ts = job_settings(job, c->task, c->model, c->methods[i]);
        cost += flops * n * ts.epochs * (c->methods[i] == METHOD_TEACHER ? 3.0 : 4.0);
    }
    return cost;
}

static int cmp_cost_desc(const void *a, const void *b)
{
    const Chain *x = *(const Chain *const *)a, *y = *(const Chain *const *)b;
    if (x->cost != y->cost)
        return x->cost < y->cost ? 1 : -1;
    return (x->seed_i * 1000 + x->task * 100 + x->model) - (y->seed_i * 1000 + y->task * 100 + y->model);
}

static void plan(Grid *g)
{
    const Job *job = g->job;
    g->n_chains = job->n_seeds * job->n_tasks * job->n_models;
    g->chains = calloc((size_t)g->n_chains, sizeof(Chain));
    int k = 0;
    for (int s = 0; s < job->n_seeds; s++)
        for (int t = 0; t < job->n_tasks; t++)
            for (int m = 0; m < job->n_models; m++, k++) {
                Chain *c = &g->chains[k];
                c->seed_i = s, c->task = t, c->model = m;
                c->methods[c->n_methods++] = METHOD_TEACHER;
                for (int i = 0; i < job->n_methods; i++)
                    if (job->methods[i] != METHOD_TEACHER)
                        c->methods[c->n_methods++] = job->methods[i];
                c->cost = chain_cost(g, c);
            }
    /* longest first onto the least loaded group */
    Chain **order = malloc((size_t)g->n_chains * sizeof(Chain *));
    for (int i = 0; i < g->n_chains; i++)
        order[i] = &g->chains[i];
    qsort(order, (size_t)g->n_chains, sizeof(Chain *), cmp_cost_desc);
    double *load = calloc((size_t)g->comm->n_groups, sizeof(double));
    for (int i = 0; i < g->n_chains; i++) {
        int best = 0;
        for (int j = 1; j < g->comm->n_groups; j++)
            if (load[j] < load[best])
                best = j;
        order[i]->group = best;
        load[best] += order[i]->cost;
    }
    free(load);
    free(order);
}

/* Runs this group's chains. */
static void run_chains(Grid *g)
{
    const Job *job = g->job;
    Comm *comm = g->comm;
    for (int i = 0; i < g->n_chains && !g->stopped; i++) {
        Chain *ch = &g->chains[i];
        if (ch->group != comm->group)
            continue;
        int teacher_ok = 1;
        for (int k = 0; k < ch->n_methods && !g->stopped; k++) {
            Method m = ch->methods[k];
            char ckpt[2048], mf[2048], res[2048], err[COMM_MSG_MAX] = "";
            cell_paths(job, ch->seed_i, ch->task, ch->model, method_name(m), ckpt, mf, res, sizeof ckpt);
            /* one agreement before the next cell: a stop signal on any rank,
             * and whether the cell is finished, as its group leader finds it
             * (a finished cell is skipped; a failed or skipped one is tried
             * again: its cause may have been passing, a full disk, a node) */
            int64_t flags[2] = {grid_stop_requested(), comm->group_rank == 0 && cell_done(res)};
            comm_sum_i64(comm, COMM_SCOPE_GROUP, flags, 2);
            if (flags[0]) {
                g->stopped = 1;
                break;
            }
            if (flags[1])
                continue;
            if (!teacher_ok) {
                write_status(g, ch->seed_i, ch->task, ch->model, method_name(m), "skipped",
                             "its teacher did not finish");
                continue;
            }
            int rc = acquire_task(g, ch->task, err, sizeof err);
            g->data_failed |= rc != 0;
            if (rc == 0)
                rc = run_cell(g, ch, m, err, sizeof err);
            if (rc == 1) {
                g->stopped = 1;
            } else if (rc < 0) {
                if (comm->group_rank == 0)
                    fprintf(stderr, "occkd: cell failed: %s\n", err);
                write_status(g, ch->seed_i, ch->task, ch->model, method_name(m), "failed", err);
                g->failed = 1;
                if (m == METHOD_TEACHER)
                    teacher_ok = 0;
            }
        }
        for (int f = 0; f < job->n_fusions && !g->stopped; f++)
            if (job->fusions[f].kind == FUSION_CONCAT) {
                char err[COMM_MSG_MAX];
                if (acquire_task(g, ch->task, err, sizeof err) || run_concat(g, ch, &job->fusions[f], err, sizeof err)) {
                    if (comm->group_rank == 0)
                        fprintf(stderr, "occkd: fusion failed: %s\n", err);
                    g->failed = 1;
                }
            }
        /* the data set goes when no later chain of this group reads it */
        int k = g->task_data[ch->task], later = 0;
        for (int j = i + 1; j < g->n_chains; j++)
            later |= g->chains[j].group == comm->group && g->task_data[g->chains[j].task] == k;
        if (!later)
            release_data(g, k, job->tasks[ch->task].name);
    }
}

/* ------------------------------------------------------------- entry */

int grid_run(const Job *job, Comm *comm, char *err, size_t errlen)
{
    time_t started = time(NULL);
    Grid g;
    memset(&g, 0, sizeof g);
    g.job = job;
    g.comm = comm;
    fault_blind_init(comm->rank);
    char msg[COMM_MSG_MAX] = "";
    int status = 0, locked = 0;
    int rc = EXIT_OK;
    if (map_data(&g)) {
        snprintf(err, errlen, "out of memory");
        rc = EXIT_FAILED;
        goto out;
    }
    /* the output folder, writable and ours, before anything trains */
    if (comm->rank == 0) {
        status = output_prepare(job->output, msg, sizeof msg) || output_lock(job->output, msg, sizeof msg);
        locked = status == 0;
    }
    if (comm_agree(comm, COMM_SCOPE_WORLD, status != 0, msg, sizeof msg, NULL)) {
        snprintf(err, errlen, "%s", msg);
        rc = EXIT_FAILED;
        goto out;
    }
    int groups = job->parallel.groups < comm->size ? job->parallel.groups : comm->size;
    if (comm_split_groups(comm, groups)) {
        snprintf(err, errlen, "%s", comm->error);
        rc = EXIT_FAILED;
        goto out;
    }
    plan(&g);
    /* nothing stale or foreign is reused, nothing finished overwritten (the
     * whole list on rank 0, which prints it) */
    char *stale = comm->rank == 0 ? calloc(1, 8192) : NULL;
    if (stale) {
        status = grid_check_outputs(&g, stale, 8192);
        snprintf(msg, sizeof msg, "%s", stale);
    }
    status = comm_agree(comm, COMM_SCOPE_WORLD, status != 0, msg, sizeof msg, NULL);
    if (status)
        snprintf(err, errlen, "%s", stale ? stale : msg);
    free(stale);
    if (status) {
        rc = EXIT_INVALID;
        goto out;
    }
    if (comm->rank == 0) {
        int cells = 0;
        for (int i = 0; i < g.n_chains; i++)
            cells += g.chains[i].n_methods;
        printf("occkd: job %s: %d cells in %d chains + %d fusion(s) per chain, %d rank(s) in %d group(s), output %s\n",
               job->name, cells, g.n_chains, job->n_fusions, comm->size, comm->n_groups, job->output);
        fflush(stdout);
    }
    run_chains(&g);
    /* everyone finishes (or stops) before the results are assembled */
    int64_t flags[3] = {g.failed, g.stopped, g.data_failed};
    if (comm_sum_i64(comm, COMM_SCOPE_WORLD, flags, 3)) {
        snprintf(err, errlen, "%s", comm->error);
        rc = EXIT_FAILED;
        goto out;
    }
    if (flags[1]) {
        if (comm->rank == 0)
            printf("occkd: stopped by a signal; checkpoints are written. Run the same command again to continue.\n");
        rc = EXIT_OK;
        goto out;
    }
    /* what the run cost: every rank's peak memory and cache bytes read */
    int64_t *cost = calloc((size_t)comm->size * 2, sizeof(int64_t));
    if (!cost) {
        snprintf(err, errlen, "out of memory");
        rc = EXIT_FAILED;
        goto out;
    }
    cost[comm->rank] = peak_rss_bytes();
    cost[comm->size + comm->rank] = g.bytes_read;
    for (int i = 0; i < g.n_data; i++)
        cost[comm->size + comm->rank] += g.loaded[i] ? dataset_bytes_read(&g.data[i]) : 0;
    if (comm_sum_i64(comm, COMM_SCOPE_WORLD, cost, comm->size * 2)) {
        free(cost);
        snprintf(err, errlen, "%s", comm->error);
        rc = EXIT_FAILED;
        goto out;
    }
    if (comm->rank == 0)
        print_cost(cost, cost + comm->size, comm->size);
    status = 0;
    msg[0] = 0;
    if (comm->rank == 0)
        status = assemble(job, comm->size, started, cost, cost + comm->size, msg, sizeof msg);
    free(cost);
    if (comm_agree(comm, COMM_SCOPE_WORLD, status != 0, msg, sizeof msg, NULL)) {
        snprintf(err, errlen, "assembling results: %s", msg);
        rc = EXIT_FAILED;
        goto out;
    }
    if (flags[2]) { /* a data set that cannot be read is invalid input */
        snprintf(err, errlen, "the data of a task could not be loaded (the message is above); its cells did not run");
        rc = EXIT_INVALID;
    } else if (flags[0]) {
        snprintf(err, errlen, "some cells failed (their messages are above and in results.h5)");
        rc = EXIT_FAILED;
    }
out:
    if (locked)
        output_unlock(job->output);
    for (int i = 0; i < g.n_data; i++)
        release_data(&g, i, NULL);
    free(g.data);
    free(g.loaded);
    free(g.task_ready);
    free(g.task_data);
    free(g.mean);
    free(g.std);
    free(g.age_mean);
    free(g.age_std);
    free(g.chains);
    return rc;
}
