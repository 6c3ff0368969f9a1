/* grid.c - runs a job's whole grid: every (seed, task, model, method) cell,
 * the fusions, and results.h5.
 *
 * Cells of one (seed, task, model) form a chain: the teacher first, then its
 * students, which start from the teacher's weights and use it frozen. Chains
 * are independent, so they are spread over the rank groups by estimated cost
 * (longest first onto the least loaded group); every rank computes the same
 * plan. Data sets are loaded once by all ranks before any training.
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
#include "trainer/grid.h"

/* Set by SIGTERM / SIGUSR1 (Slurm's warning before a time limit or
 * preemption): checkpoint at the next step and stop. A signal handler can
 * only talk through a global. */
static volatile sig_atomic_t g_stop_signal;

static void on_stop_signal(int sig) { g_stop_signal = sig; }

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

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Fault injection for the crash tests: with OCCKD_FAULT_KILL_AFTER_CELL=N in
 * the environment, the process kills itself (SIGKILL) right after writing its
 * N-th cell result, i.e. between two cells. */
static void fault_after_cell(void)
{
    static int cells; /* per process; only counts when the variable is set */
    const char *v = getenv("OCCKD_FAULT_KILL_AFTER_CELL");
    if (v && ++cells == atoi(v)) {
        fprintf(stderr, "occkd: fault injection: killed after cell %d\n", cells);
        fflush(stderr);
        raise(SIGKILL);
    }
}

/* Fault injection for the preemption tests, driven by step counts rather
 * than by timing: with OCCKD_FAULT_PAUSE_AT_STEP=N and
 * OCCKD_FAULT_PAUSE_MARK=FILE, the first rank to reach step N of a cell while
 * FILE does not exist creates it (exclusively, so one rank of one run does)
 * and waits there, up to two minutes, for a stop signal. A test waits for
 * FILE, then signals: the signal is sure to find a cell mid-training. */
static void fault_pause_at_step(int64_t step)
{
    const char *v = getenv("OCCKD_FAULT_PAUSE_AT_STEP"), *mark = getenv("OCCKD_FAULT_PAUSE_MARK");
    if (!v || !mark || step != atoll(v) || g_stop_signal)
        return;
    int fd = open(mark, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        return;
    close(fd);
    printf("occkd: fault injection: paused at step %lld for a stop signal\n", (long long)step);
    fflush(stdout);
    struct timespec nap = {0, 50 * 1000 * 1000};
    for (int i = 0; i < 2400 && !g_stop_signal; i++)
        nanosleep(&nap, NULL);
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* 1 when the cell result file at `path` exists and says "done". */
static int cell_done(const char *path)
{
    CellResult r;
    char err[256];
    if (!file_exists(path) || cell_result_load(path, &r, err, sizeof err))
        return 0;
    int done = strcmp(r.status, "done") == 0;
    cell_result_free(&r);
    return done;
}

/* A cell's random keys come from the names of its task and model, not their
 * places in the job, so a job holding only some of the tasks (an array job)
 * trains the very same cells. */
static uint64_t name_key(const char *task, const char *model)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (const char *c = task; *c; c++)
        h = (h ^ (unsigned char)*c) * 0x100000001B3ull;
    h = (h ^ '/') * 0x100000001B3ull;
    for (const char *c = model; *c; c++)
        h = (h ^ (unsigned char)*c) * 0x100000001B3ull;
    return h;
}

/* ------------------------------------------------------------ the plan */

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
} Grid;

static void cell_paths(const Job *job, int seed_i, int task, int model, const char *method, char *ckpt,
                       char *model_file, char *result, size_t len)
{
    const char *t = job->tasks[task].name, *m = job->models[model].name;
    unsigned long long seed = (unsigned long long)job->seeds[seed_i];
    snprintf(ckpt, len, "%s/checkpoints/%s/%s/%s-seed%llu.h5", job->output, t, m, method, seed);
    snprintf(model_file, len, "%s/models/%s/%s/%s-seed%llu.h5", job->output, t, m, method, seed);
    snprintf(result, len, "%s/cells/%s/%s/%s-seed%llu.h5", job->output, t, m, method, seed);
}

static void cell_name(const Job *job, int seed_i, int task, int model, const char *method, char *out, size_t len)
{
    if (job->n_seeds > 1)
        snprintf(out, len, "%s/%s/%s seed %llu", job->tasks[task].name, job->models[model].name, method,
                 (unsigned long long)job->seeds[seed_i]);
    else
        snprintf(out, len, "%s/%s/%s", job->tasks[task].name, job->models[model].name, method);
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

/* ------------------------------------------------------------- data */

/* Which tasks share a data set (the same cache file): decided from the job
 * alone, nothing is loaded. */
static int map_data(Grid *g)
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
static int acquire_task(Grid *g, int t, char *err, size_t errlen)
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
static void release_data(Grid *g, int k, const char *task)
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

/* ------------------------------------------------------------ one cell */

typedef struct {
    Grid *g;
    const char *ckpt;
    Net *net;
    double last_save;
    int64_t last_step;
    char err[512];
} CkptCtx;

static int save_checkpoint(CkptCtx *c, const TrainState *s)
{
    const Job *job = c->g->job;
    CheckpointMeta m;
    memset(&m, 0, sizeof m);
    snprintf(m.config_sha256, sizeof m.config_sha256, "%s", job->sha256);
    m.world = c->g->comm->group_size;
    m.run = s->run;
    m.history = s->history; /* borrowed for the write */
    c->last_save = now();
    c->last_step = s->run.step;
    return checkpoint_save(c->ckpt, c->net, s->velocity, s->best_params, s->best_state, &m, c->err, sizeof c->err);
}

/* After every step: checkpoint on the interval (group leader only; every
 * rank of the group holds the same state) and on a stop signal. */
static int after_step(void *user, const TrainState *s, int epoch_end, char *msg, size_t len)
{
    CkptCtx *c = user;
    const Job *job = c->g->job;
    fault_pause_at_step(s->run.step);
    int stop = g_stop_signal != 0;
    int due = stop || (job->checkpoint_steps > 0 && s->run.step - c->last_step >= job->checkpoint_steps) ||
              (job->checkpoint_minutes > 0 && now() - c->last_save >= 60.0 * job->checkpoint_minutes);
    if (due && c->g->comm->group_rank == 0 && save_checkpoint(c, s)) {
        snprintf(msg, len, "writing checkpoint: %s", c->err);
        return -1;
    }
    (void)epoch_end;
    return stop ? 1 : 0;
}

static TrainConfig cell_config(const Grid *g, int task, int model, Method method, uint64_t seed, const char *name,
                               int *max_local)
{
    const Job *job = g->job;
    const TaskSpec *ts = &job->tasks[task];
    TrainSettings s = job_settings(job, task, model, method);
    TrainConfig c = train_config_default();
    snprintf(c.name, sizeof c.name, "%s", name);
    c.method = method;
    c.regression = ts->regression;
    c.l2 = ts->l2;
    c.target_mean = (float)g->age_mean[task];
    c.target_std = (float)g->age_std[task];
    c.classes = ts->regression ? 1 : ts->classes;
    c.epochs = s.epochs;
    c.global_batch = s.batch;
    c.accum = s.accum > 0 ? s.accum : 1;
    c.sgd = s.sgd;
    int micro = c.global_batch / c.accum;
    int64_t n_train = dataset_split_count(&g->data[g->task_data[task]], SPLIT_TRAIN);
    int64_t steps_per_epoch = (n_train / (micro > 0 ? micro : 1)) / c.accum;
    c.sgd.warmup_steps = (int64_t)llround(s.warmup_epochs * (double)steps_per_epoch);
    c.sgd.step_size = (int64_t)llround(s.step_epochs * (double)steps_per_epoch);
    if (c.sgd.step_size < 1)
        c.sgd.step_size = 1;
    c.sgd.total_steps = steps_per_epoch * c.epochs;
    c.T = job->distill.T;
    c.lambda = job->distill.lambda;
    c.beta = job->distill.beta;
    c.margin = job->distill.margin;
    c.mining = job->distill.mining;
    c.positive = job->distill.positive;
    c.age_bin = job->distill.age_bin;
    c.seed = rng_mix(seed, name_key(ts->name, job->models[model].name) + (uint64_t)method);
    c.log_every = job->log_every;
    c.eval_batch = s.eval_batch;
    c.sync.bucket_bytes = job->parallel.bucket_bytes;
    c.sync.blocking = !job->parallel.overlap;
    c.sync.scale = 1.0;
    /* networks hold a training slice; evaluation runs in batches of that size
     * too (evaluate caps its batch), so a large eval_batch costs no memory */
    int gs = g->comm->group_size;
    *max_local = (micro + gs - 1) / gs;
    return c;
}

static LoaderOptions cell_loader(const Grid *g, int task, int model, Method method)
{
    const Job *job = g->job;
    const TaskSpec *ts = &job->tasks[task];
    TrainSettings s = job_settings(job, task, model, method);
    LoaderOptions o = loader_options_default();
    o.attr = ts->regression ? ATTR_COUNT : ts->attr;
    o.aug = s.aug;
    o.augment = 1;
    o.occ = ts->occ;
    o.side = ts->data.side; /* the cache may hold another resolution */
    o.channels = ts->data.channels;
    for (int c = 0; c < 4; c++) {
        o.mean[c] = g->mean[task][c];
        o.std[c] = g->std[task][c] > 0 ? g->std[task][c] : 1.0f;
    }
    o.background = 1;
    return o;
}

static void fill_result_from_eval(CellResult *r, const EvalResult *e, int regression)
{
    r->n_test = e->n;
    r->classes = regression ? 0 : e->classes;
    r->labels = e->label;
    r->predictions = e->pred;
    r->probabilities = regression ? NULL : e->prob;
    r->confusion = regression ? NULL : e->confusion;
    r->value = e->metric;
}

static void result_header(CellResult *r, const Job *job, int seed_i, int task, int model, const char *method)
{
    memset(r, 0, sizeof *r);
    snprintf(r->task, sizeof r->task, "%s", job->tasks[task].name);
    snprintf(r->model, sizeof r->model, "%s", job->models[model].name);
    snprintf(r->method, sizeof r->method, "%s", method);
    r->seed = job->seeds[seed_i];
    snprintf(r->metric, sizeof r->metric, "%s", job->tasks[task].regression ? "mae" : "accuracy");
    r->value = r->value_occluded = r->p_value = r->p_value_occluded = NAN;
    r->best_epoch = -1;
}

/* Writes a failed or skipped cell's result (group leader). */
static void write_status(Grid *g, int seed_i, int task, int model, const char *method, const char *status,
                         const char *message)
{
    if (g->comm->group_rank != 0)
        return;
    char ckpt[2048], mf[2048], res[2048], err[512];
    cell_paths(g->job, seed_i, task, model, method, ckpt, mf, res, sizeof ckpt);
    CellResult r;
    result_header(&r, g->job, seed_i, task, model, method);
    snprintf(r.status, sizeof r.status, "%s", status);
    snprintf(r.message, sizeof r.message, "%s", message);
    if (cell_result_save(res, &r, err, sizeof err))
        fprintf(stderr, "occkd: %s\n", err);
}

/* Trains and evaluates one cell on this rank's group. Returns 0 done, 1
 * stopped by a signal (checkpoint written), -1 failed (message in err). */
static int run_cell(Grid *g, const Chain *ch, Method method, char *err, size_t errlen)
{
    const Job *job = g->job;
    Comm *comm = g->comm;
    int task = ch->task, model = ch->model;
    const Dataset *d = &g->data[g->task_data[task]];
    const char *mname = method_name(method);
    char ckpt[2048], mf[2048], res[2048], teacher_mf[2048], tmp[2048], tmp2[2048], name[160];
    cell_paths(job, ch->seed_i, task, model, mname, ckpt, mf, res, sizeof ckpt);
    cell_paths(job, ch->seed_i, task, model, "teacher", tmp, teacher_mf, tmp2, sizeof tmp);
    cell_name(job, ch->seed_i, task, model, mname, name, sizeof name);

    int max_local;
    TrainConfig cfg = cell_config(g, task, model, method, job->seeds[ch->seed_i], name, &max_local);
    LoaderOptions base = cell_loader(g, task, model, method);
    NetSpec spec = job_netspec(job, task, model);
    spec.classes = cfg.classes;
    char msg[COMM_MSG_MAX] = "";
    Net *net = net_create(&spec, max_local, 0, msg, sizeof msg);
    Net *teacher = NULL;
    TrainState st;
    int have_state = 0, rc = 0, status = net ? 0 : -1;
    if (net && method != METHOD_TEACHER) {
        teacher = net_create(&spec, max_local, 0, msg, sizeof msg);
        status = !teacher || weights_load(teacher_mf, teacher, 0, NULL, msg, sizeof msg);
    }
    if (!status) {
        status = train_state_init(&st, net);
        have_state = status == 0;
        if (status)
            snprintf(msg, sizeof msg, "out of memory for the training state");
    }
    /* starting point: a checkpoint of this cell, else the teacher's weights
     * (students), a pretrained file, or a seeded initialisation */
    int resumed = 0;
    if (!status) {
        if (file_exists(ckpt)) {
            CheckpointMeta m;
            memset(&m, 0, sizeof m);
            status = checkpoint_load(ckpt, net, st.velocity, st.best_params, st.best_state, &m, job->sha256, msg,
                                     sizeof msg);
            /* the state is complete on every rank and the sampler position is
             * global, so another rank count resumes the same steps; only the
             * order of float sums (and batch-norm slices) differs from here on */
            if (!status && m.world != comm->group_size && comm->group_rank == 0)
                printf("[%s] %s was written by a group of %d rank(s); resuming on %d: the steps from here agree "
                       "with an uninterrupted run to float rounding, not bit for bit\n",
                       name, ckpt, m.world, comm->group_size);
            if (!status) {
                st.run = m.run;
                st.history = m.history; /* moved: the state frees it */
                memset(&m.history, 0, sizeof m.history);
                resumed = 1;
            }
            checkpoint_meta_free(&m);
        } else if (method != METHOD_TEACHER) {
            memcpy(net->params, teacher->params, net->n_params * sizeof(float));
            memcpy(net->state, teacher->state, net->n_state * sizeof(float));
        } else {
            net_init(net, rng_mix(job->seeds[ch->seed_i], name_key(job->tasks[task].name, job->models[model].name)));
            if (job->models[model].init[0]) {
                int loaded = 0;
                status = weights_load(job->models[model].init, net, 1, &loaded, msg, sizeof msg);
                if (!status && comm->group_rank == 0)
                    printf("[%s] %d tensors from %s\n", name, loaded, job->models[model].init);
            }
        }
    }
    if (comm_agree(comm, COMM_SCOPE_GROUP, status != 0, msg, sizeof msg, NULL)) {
        snprintf(err, errlen, "%s: %s", name, msg);
        rc = -1;
        goto out;
    }
    if (comm->group_rank == 0) {
        if (resumed)
            printf("[%s] resuming at step %lld (epoch %lld) from %s\n", name, (long long)st.run.step,
                   (long long)st.run.epoch, ckpt);
        else
            printf("[%s] training: %d epochs, batch %d, lr %g, %d rank(s)\n", name, cfg.epochs, cfg.global_batch,
                   cfg.sgd.lr, comm->group_size);
        fflush(stdout);
    }
    CkptCtx cc = {.g = g, .ckpt = ckpt, .net = net, .last_save = now(), .last_step = st.run.step};
    TrainEnv env = {.comm = comm, .log = comm->group_rank == 0 ? stdout : NULL, .after_step = after_step, .user = &cc};
    rc = train_cell(&cfg, &env, net, teacher, d, &base, &st, msg, sizeof msg);
    if (rc == 1) /* stopped by a signal: the checkpoint is written */
        goto out;
    if (rc < 0) {
        snprintf(err, errlen, "%s", msg);
        goto out;
    }
    /* the finished training, saved before evaluation so a crash from here on
     * only repeats the evaluation */
    status = 0;
    if (comm->group_rank == 0)
        status = save_checkpoint(&cc, &st) || weights_save(mf, net, msg, sizeof msg);
    if (status && cc.err[0])
        snprintf(msg, sizeof msg, "%s", cc.err);
    if (comm_agree(comm, COMM_SCOPE_GROUP, status, msg, sizeof msg, NULL)) {
        snprintf(err, errlen, "%s: %s", name, msg);
        rc = -1;
        goto out;
    }
    EvalResult ev, ev_occ;
    memset(&ev_occ, 0, sizeof ev_occ);
    int occluded_input = method != METHOD_TEACHER;
    status = evaluate(&cfg, comm, net, d, &base, SPLIT_TEST, occluded_input, &ev, msg, sizeof msg);
    if (!status && method == METHOD_TEACHER)
        status = evaluate(&cfg, comm, net, d, &base, SPLIT_TEST, 1, &ev_occ, msg, sizeof msg);
    if (status) {
        snprintf(err, errlen, "%s: %s", name, msg);
        rc = -1;
        goto out;
    }
    status = 0;
    if (comm->group_rank == 0) {
        CellResult r;
        result_header(&r, job, ch->seed_i, task, model, mname);
        snprintf(r.status, sizeof r.status, "done");
        fill_result_from_eval(&r, &ev, cfg.regression);
        if (method == METHOD_TEACHER) {
            r.value_occluded = ev_occ.metric;
            r.predictions_occluded = ev_occ.pred;
        }
        r.seconds = st.run.seconds;
        r.best_epoch = (int)st.run.best_epoch + 1;
        r.history = st.history; /* borrowed: freed with the state */
        status = cell_result_save(res, &r, msg, sizeof msg);
        fault_after_cell();
        if (cfg.regression)
            printf("[%s] test MAE %.3f years%s\n", name, ev.metric, method == METHOD_TEACHER ? " (clean)" : " (occluded)");
        else
            printf("[%s] test accuracy %.2f%%%s\n", name, 100 * ev.metric,
                   method == METHOD_TEACHER ? " (clean)" : " (occluded)");
        if (method == METHOD_TEACHER && cfg.regression)
            printf("[%s] test MAE %.3f years (occluded)\n", name, ev_occ.metric);
        else if (method == METHOD_TEACHER)
            printf("[%s] test accuracy %.2f%% (occluded)\n", name, 100 * ev_occ.metric);
        fflush(stdout);
    }
    eval_result_free(&ev);
    eval_result_free(&ev_occ);
    if (comm_agree(comm, COMM_SCOPE_GROUP, status, msg, sizeof msg, NULL)) {
        snprintf(err, errlen, "%s: %s", name, msg);
        rc = -1;
    }
out:
    if (have_state)
        train_state_free(&st);
    net_free(net);
    net_free(teacher);
    return rc;
}

/* A concatenation fusion: the students' embeddings of the occluded training
 * and test faces, concatenated, and a linear head trained on them (on the
 * group leader; the other ranks help extract the embeddings). */
static int run_concat(Grid *g, const Chain *ch, const FusionSpec *f, char *err, size_t errlen)
{
    const Job *job = g->job;
    Comm *comm = g->comm;
    int task = ch->task, model = ch->model;
    const Dataset *d = &g->data[g->task_data[task]];
    char ckpt[2048], mf[2048], res[2048], name[160], msg[COMM_MSG_MAX] = "";
    cell_paths(job, ch->seed_i, task, model, f->name, ckpt, mf, res, sizeof ckpt);
    cell_name(job, ch->seed_i, task, model, f->name, name, sizeof name);
    if (cell_done(res))
        return 0;
    for (int i = 0; i < f->n_students; i++) {
        char c2[2048], m2[2048], r2[2048];
        cell_paths(job, ch->seed_i, task, model, method_name(f->students[i]), c2, m2, r2, sizeof c2);
        if (!cell_done(r2)) {
            snprintf(msg, sizeof msg, "student %s did not finish", method_name(f->students[i]));
            write_status(g, ch->seed_i, task, model, f->name, "skipped", msg);
            return 0;
        }
    }
    int max_local;
    TrainConfig cfg = cell_config(g, task, model, f->students[0], job->seeds[ch->seed_i], name, &max_local);
    LoaderOptions base = cell_loader(g, task, model, f->students[0]);
    NetSpec spec = job_netspec(job, task, model);
    spec.classes = cfg.classes;
    EvalResult tr[METHOD_COUNT], te[METHOD_COUNT];
    memset(tr, 0, sizeof tr);
    memset(te, 0, sizeof te);
    int status = 0, dim = 0;
    for (int i = 0; i < f->n_students && !status; i++) {
        char c2[2048], m2[2048], r2[2048];
        cell_paths(job, ch->seed_i, task, model, method_name(f->students[i]), c2, m2, r2, sizeof c2);
        Net *net = net_create(&spec, max_local, 0, msg, sizeof msg);
        status = !net || weights_load(m2, net, 0, NULL, msg, sizeof msg);
        if (comm_agree(comm, COMM_SCOPE_GROUP, status, msg, sizeof msg, NULL) ||
            evaluate_embeddings(&cfg, comm, net, d, &base, SPLIT_TRAIN, 1, &tr[i], msg, sizeof msg) ||
            evaluate_embeddings(&cfg, comm, net, d, &base, SPLIT_TEST, 1, &te[i], msg, sizeof msg))
            status = -1;
        dim += net ? (int)net_embedding_size(net) : 0;
        net_free(net);
    }
    if (!status && comm->group_rank == 0) {
        int64_t n = tr[0].n, nt = te[0].n;
        int k = cfg.regression ? 0 : cfg.classes;
        float *x = malloc((size_t)n * dim * sizeof(float)), *xt = malloc((size_t)nt * dim * sizeof(float));
        for (int i = 0, off = 0; i < f->n_students; off += tr[i].embedding_size, i++)
            for (int64_t r = 0; r < n + nt; r++) {
                const EvalResult *src = r < n ? &tr[i] : &te[i];
                int64_t row = r < n ? r : r - n;
                float *dst = (r < n ? x : xt) + (size_t)row * dim + off;
                memcpy(dst, src->embedding + (size_t)row * src->embedding_size, src->embedding_size * sizeof(float));
            }
        CellResult out;
        result_header(&out, job, ch->seed_i, task, model, f->name);
        out.n_test = nt;
        out.classes = k;
        out.labels = te[0].label;
        out.predictions = malloc((size_t)nt * sizeof(float));
        out.probabilities = k ? malloc((size_t)nt * k * sizeof(float)) : NULL;
        linear_head(x, tr[0].label, n, xt, nt, dim, k, job->tasks[task].l2, f->head_epochs > 0 ? f->head_epochs : 5,
                    cfg.seed ^ 0xF05ull, out.predictions, out.probabilities);
        double metric = 0;
        if (k)
            out.confusion = calloc((size_t)k * k, sizeof(int64_t));
        for (int64_t i = 0; i < nt; i++) {
            if (k) {
                int t = (int)out.labels[i], p = (int)out.predictions[i];
                metric += t == p;
                if (t >= 0 && t < k)
                    out.confusion[(size_t)t * k + p]++;
            } else {
                metric += fabs(out.predictions[i] - out.labels[i]);
            }
        }
        out.value = nt ? metric / (double)nt : NAN;
        snprintf(out.status, sizeof out.status, "done");
        status = cell_result_save(res, &out, msg, sizeof msg);
        printf("[%s] linear head on %d concatenated embedding features: test %s %.4f\n", name, dim,
               k ? "accuracy" : "MAE", out.value);
        free(out.predictions);
        free(out.probabilities);
        free(out.confusion);
        free(x);
        free(xt);
    }
    for (int i = 0; i < f->n_students; i++) {
        eval_result_free(&tr[i]);
        eval_result_free(&te[i]);
    }
    if (comm_agree(comm, COMM_SCOPE_GROUP, status != 0, msg, sizeof msg, NULL)) {
        snprintf(err, errlen, "%s: %s", name, msg);
        write_status(g, ch->seed_i, task, model, f->name, "failed", err);
        return -1;
    }
    return 0;
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
            /* a stop signal between cells: agree before starting the next */
            int64_t stop = g_stop_signal != 0;
            comm_sum_i64(comm, COMM_SCOPE_GROUP, &stop, 1);
            if (stop) {
                g->stopped = 1;
                break;
            }
            /* a finished cell is skipped; a failed or skipped one is tried
             * again (its cause may have been passing: a full disk, a node) */
            if (cell_done(res))
                continue;
            if (!teacher_ok) {
                write_status(g, ch->seed_i, ch->task, ch->model, method_name(m), "skipped",
                             "its teacher did not finish");
                continue;
            }
            int rc = acquire_task(g, ch->task, err, sizeof err);
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

/* -------------------------------------------------------- assembly */

static EvalResult eval_view(const CellResult *r, int occluded)
{
    EvalResult e;
    memset(&e, 0, sizeof e);
    e.n = r->n_test;
    e.classes = r->classes;
    e.label = r->labels;
    e.pred = occluded && r->predictions_occluded ? r->predictions_occluded : r->predictions;
    return e;
}

static int find_cell(const CellResult *cells, int n, const char *task, const char *model, const char *method,
                     uint64_t seed)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(cells[i].task, task) && !strcmp(cells[i].model, model) && !strcmp(cells[i].method, method) &&
            cells[i].seed == seed)
            return i;
    return -1;
}

/* Average of the students' probabilities (regression: predictions). */
static void fuse(const Job *job, const FusionSpec *f, CellResult *cells, int n, CellResult *out, int seed_i, int task,
                 int model)
{
    result_header(out, job, seed_i, task, model, f->name);
    const char *t = job->tasks[task].name, *m = job->models[model].name;
    uint64_t seed = job->seeds[seed_i];
    const CellResult *parts[METHOD_COUNT];
    for (int i = 0; i < f->n_students; i++) {
        int k = find_cell(cells, n, t, m, method_name(f->students[i]), seed);
        if (k < 0 || strcmp(cells[k].status, "done") || (!cells[k].probabilities && cells[k].classes)) {
            snprintf(out->status, sizeof out->status, "skipped");
            snprintf(out->message, sizeof out->message, "student %s did not finish", method_name(f->students[i]));
            return;
        }
        parts[i] = &cells[k];
    }
    const CellResult *a = parts[0];
    int64_t nt = a->n_test;
    int k = a->classes;
    out->n_test = nt;
    out->classes = k;
    out->labels = malloc((size_t)nt * sizeof(float));
    out->predictions = malloc((size_t)nt * sizeof(float));
    memcpy(out->labels, a->labels, (size_t)nt * sizeof(float));
    double metric = 0;
    if (k) {
        out->probabilities = calloc((size_t)nt * k, sizeof(float));
        out->confusion = calloc((size_t)k * k, sizeof(int64_t));
        for (int i = 0; i < f->n_students; i++)
            for (int64_t j = 0; j < nt * k; j++)
                out->probabilities[j] += parts[i]->probabilities[j] / f->n_students;
        for (int64_t j = 0; j < nt; j++) {
            int pr = argmax(out->probabilities + j * k, k), tr = (int)out->labels[j];
            out->predictions[j] = (float)pr;
            metric += pr == tr;
            if (tr >= 0 && tr < k)
                out->confusion[(size_t)tr * k + pr]++;
        }
    } else {
        for (int64_t j = 0; j < nt; j++) {
            double s = 0;
            for (int i = 0; i < f->n_students; i++)
                s += parts[i]->predictions[j];
            out->predictions[j] = (float)(s / f->n_students);
            metric += fabs(out->predictions[j] - out->labels[j]);
        }
    }
    out->value = nt ? metric / (double)nt : NAN;
    snprintf(out->status, sizeof out->status, "done");
}

/* This process's peak resident memory (VmHWM of /proc/self/status), bytes;
 * 0 where the system does not say. */
static int64_t peak_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %lld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return (int64_t)kb * 1024;
}

static void print_cost(const int64_t *peak, const int64_t *bytes, int ranks)
{
    int64_t total = 0;
    printf("occkd: peak memory per rank (VmHWM):");
    for (int r = 0; r < ranks; r++) {
        printf(" %.0f", (double)peak[r] / (1 << 20));
        total += bytes[r];
    }
    printf(" MiB; pixel data read from the caches: %.1f MiB in all\n", (double)total / (1 << 20));
    fflush(stdout);
}

static void iso_time(char *buf, size_t len, time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* World rank 0: every cell's file, p-values against `student`, fusions,
 * results.h5. Returns 0, or -1 when a cell file is missing or unreadable. */
static int assemble(const Job *job, int ranks, time_t started, const int64_t *peak, const int64_t *bytes, char *err,
                    size_t errlen)
{
    int per_chain = 1;
    for (int i = 0; i < job->n_methods; i++)
        per_chain += job->methods[i] != METHOD_TEACHER;
    int cap = job->n_seeds * job->n_tasks * job->n_models * (per_chain + job->n_fusions);
    CellResult *cells = calloc((size_t)cap, sizeof(CellResult));
    int n = 0, rc = 0;
    for (int s = 0; s < job->n_seeds && !rc; s++)
        for (int t = 0; t < job->n_tasks && !rc; t++)
            for (int m = 0; m < job->n_models && !rc; m++) {
                Method list[METHOD_COUNT];
                int nl = 0;
                list[nl++] = METHOD_TEACHER;
                for (int i = 0; i < job->n_methods; i++)
                    if (job->methods[i] != METHOD_TEACHER)
                        list[nl++] = job->methods[i];
                for (int i = 0; i < nl && !rc; i++) {
                    char ckpt[2048], mf[2048], res[2048];
                    cell_paths(job, s, t, m, method_name(list[i]), ckpt, mf, res, sizeof ckpt);
                    if (cell_result_load(res, &cells[n], err, errlen))
                        rc = -1;
                    else
                        n++;
                }
                for (int f = 0; f < job->n_fusions && !rc; f++) {
                    if (job->fusions[f].kind == FUSION_AVERAGE) {
                        fuse(job, &job->fusions[f], cells, n, &cells[n], s, t, m), n++;
                        continue;
                    }
                    char ckpt[2048], mf[2048], res[2048];
                    cell_paths(job, s, t, m, job->fusions[f].name, ckpt, mf, res, sizeof ckpt);
                    if (cell_result_load(res, &cells[n], err, errlen))
                        rc = -1;
                    else
                        n++;
                }
            }
    if (!rc) {
        /* paired tests against the student of the same (seed, task, model) */
        for (int i = 0; i < n; i++) {
            int b = find_cell(cells, n, cells[i].task, cells[i].model, "student", cells[i].seed);
            if (b < 0 || i == b || strcmp(cells[b].status, "done") || strcmp(cells[i].status, "done") ||
                cells[i].n_test != cells[b].n_test)
                continue;
            EvalResult base = eval_view(&cells[b], 0);
            if (!strcmp(cells[i].method, "teacher")) {
                EvalResult occ = eval_view(&cells[i], 1);
                cells[i].p_value_occluded = paired_p_value(&base, &occ);
            } else {
                EvalResult other = eval_view(&cells[i], 0);
                cells[i].p_value = paired_p_value(&base, &other);
            }
        }
        char path[2048], start[32], end[32];
        snprintf(path, sizeof path, "%s/results.h5", job->output);
        iso_time(start, sizeof start, started);
        iso_time(end, sizeof end, time(NULL));
        ResultsInfo info = {.job_text = job->text, .job_path = job->path, .version = OCCKD_VERSION, .ranks = ranks,
                            .start = start, .end = end, .peak_rss_bytes = peak, .data_bytes_read = bytes,
                            .blas = blas_kernel_describe()};
        rc = results_write(path, &info, cells, n, err, errlen);
        if (!rc)
            printf("occkd: wrote %s (%d cells)\n", path, n);
    }
    for (int i = 0; i < n; i++)
        cell_result_free(&cells[i]);
    free(cells);
    return rc;
}

/* ------------------------------------------------------------- entry */

int grid_run(const Job *job, Comm *comm, char *err, size_t errlen)
{
    time_t started = time(NULL);
    Grid g;
    memset(&g, 0, sizeof g);
    g.job = job;
    g.comm = comm;
    char msg[COMM_MSG_MAX] = "";
    int status = 0;
    int rc = EXIT_OK;
    if (map_data(&g)) {
        snprintf(err, errlen, "out of memory");
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
    int64_t flags[2] = {g.failed, g.stopped};
    if (comm_sum_i64(comm, COMM_SCOPE_WORLD, flags, 2)) {
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
    if (flags[0]) {
        snprintf(err, errlen, "some cells failed (their messages are above and in results.h5)");
        rc = EXIT_FAILED;
    }
out:
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
