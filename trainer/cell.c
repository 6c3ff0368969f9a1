/* cell.c - one cell of the grid: its files and name, its configuration,
 * and its phases (prepare, resume, train, evaluate, record); and the
 * concatenation fusion, trained on the students' embeddings. */
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

/* Fault injection driven by step counts rather than by timing, fired once:
 * with OCCKD_FAULT_AT_STEP=N, OCCKD_FAULT_MARK=FILE and
 * OCCKD_FAULT_ACTION=pause or kill, the first rank to reach step N of a cell
 * while FILE does not exist creates it (exclusively, so one rank of one run
 * does) and writes its process id into it, then either waits there, up to two minutes, for a stop signal (a
 * test waits for FILE, then signals: the signal is sure to find a cell
 * mid-training), or kills itself with SIGKILL (a crash between checkpoints).
 * With OCCKD_FAULT_LEADER=1 only a group leader takes it: the leader writes
 * the checkpoints and no rank passes step N without it, so a kill leaves
 * exactly the checkpoint of step N - 1 (with every_steps = 1). */
static void fault_at_step(int64_t step, int leader)
{
    const char *v = getenv("OCCKD_FAULT_AT_STEP"), *mark = getenv("OCCKD_FAULT_MARK");
    const char *action = getenv("OCCKD_FAULT_ACTION"), *only_leader = getenv("OCCKD_FAULT_LEADER");
    if (!v || !mark || step != atoll(v) || grid_stop_requested() || (only_leader && atoi(only_leader) && !leader))
        return;
    int fd = open(mark, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        return;
    char line[32];
    int n = snprintf(line, sizeof line, "%ld\n", (long)getpid()); /* whom the test signals */
    if (write(fd, line, (size_t)n) != n)
        fprintf(stderr, "occkd: fault injection: cannot write %s\n", mark);
    close(fd);
    if (action && strcmp(action, "kill") == 0) {
        fprintf(stderr, "occkd: fault injection: killed at step %lld\n", (long long)step);
        fflush(stderr);
        raise(SIGKILL);
    }
    printf("occkd: fault injection: paused at step %lld for a stop signal\n", (long long)step);
    fflush(stdout);
    struct timespec nap = {0, 50 * 1000 * 1000};
    for (int i = 0; i < 2400 && !grid_stop_requested(); i++)
        nanosleep(&nap, NULL);
}

/* Fault injection for the leader-decides test: with OCCKD_FAULT_BLIND_RANK=R,
 * world rank R sees none of the output folder's files, as a rank behind a
 * stale attribute cache of a parallel file system might. The grid must
 * still agree, since the group leader decides what exists. */
static int blind_rank = -1, my_rank = -1;

void fault_blind_init(int world_rank)
{
    const char *v = getenv("OCCKD_FAULT_BLIND_RANK");
    blind_rank = v ? atoi(v) : -1;
    my_rank = world_rank;
}

int file_exists(const char *path)
{
    struct stat st;
    if (blind_rank >= 0 && blind_rank == my_rank)
        return 0;
    return stat(path, &st) == 0;
}

/* 1 when the cell result file at `path` exists and says "done". */
int cell_done(const char *path)
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
uint64_t name_key(const char *task, const char *model)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (const char *c = task; *c; c++)
        h = (h ^ (unsigned char)*c) * 0x100000001B3ull;
    h = (h ^ '/') * 0x100000001B3ull;
    for (const char *c = model; *c; c++)
        h = (h ^ (unsigned char)*c) * 0x100000001B3ull;
    return h;
}

void cell_paths(const Job *job, int seed_i, int task, int model, const char *method, char *ckpt,
                       char *model_file, char *result, size_t len)
{
    const char *t = job->tasks[task].name, *m = job->models[model].name;
    unsigned long long seed = (unsigned long long)job->seeds[seed_i];
    snprintf(ckpt, len, "%s/checkpoints/%s/%s/%s-seed%llu.h5", job->output, t, m, method, seed);
    snprintf(model_file, len, "%s/models/%s/%s/%s-seed%llu.h5", job->output, t, m, method, seed);
    snprintf(result, len, "%s/cells/%s/%s/%s-seed%llu.h5", job->output, t, m, method, seed);
}

void cell_name(const Job *job, int seed_i, int task, int model, const char *method, char *out, size_t len)
{
    if (job->n_seeds > 1)
        snprintf(out, len, "%s/%s/%s seed %llu", job->tasks[task].name, job->models[model].name, method,
                 (unsigned long long)job->seeds[seed_i]);
    else
        snprintf(out, len, "%s/%s/%s", job->tasks[task].name, job->models[model].name, method);
}

/* ------------------------------------------------------------ one cell */

typedef struct {
    Grid *g;
    const char *ckpt;
    const CellStamp *stamp;
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
    m.stamp = *c->stamp;
    m.seed = job->seeds[0]; /* for information */
    m.world = c->g->comm->group_size;
    m.run = s->run;
    m.history = s->history; /* borrowed for the write */
    c->last_save = clock_seconds();
    c->last_step = s->run.step;
    return checkpoint_save(c->ckpt, c->net, s->velocity, s->best_params, s->best_state, &m, c->err, sizeof c->err);
}

/* After every step: checkpoint on the interval (group leader only; every
 * rank of the group holds the same state) and on a stop signal. */
static int after_step(void *user, const TrainState *s, int epoch_end, char *msg, size_t len)
{
    CkptCtx *c = user;
    const Job *job = c->g->job;
    fault_at_step(s->run.step, c->g->comm->group_rank == 0);
    int stop = grid_stop_requested() != 0;
    int due = stop || (job->checkpoint_steps > 0 && s->run.step - c->last_step >= job->checkpoint_steps) ||
              (job->checkpoint_minutes > 0 && clock_seconds() - c->last_save >= 60.0 * job->checkpoint_minutes);
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
    c.sync_bn = job->parallel.sync_bn;
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

void result_header(CellResult *r, const Job *job, int seed_i, int task, int model, const char *method)
{
    memset(r, 0, sizeof *r);
    snprintf(r->task, sizeof r->task, "%s", job->tasks[task].name);
    snprintf(r->model, sizeof r->model, "%s", job->models[model].name);
    snprintf(r->method, sizeof r->method, "%s", method);
    r->seed = job->seeds[seed_i];
    snprintf(r->metric, sizeof r->metric, "%s", job->tasks[task].regression ? "mae" : "accuracy");
    r->value = r->value_occluded = r->p_value = r->p_value_occluded = NAN;
    r->best_epoch = -1;
    if (job_cell_stamp(job, seed_i, task, model, method, &r->stamp))
        fprintf(stderr, "occkd: %s/%s/%s: the settings text does not fit its %d bytes\n", r->task, r->model,
                method, CELL_SETTINGS_MAX);
}

/* Writes a failed or skipped cell's result (group leader). */
void write_status(Grid *g, int seed_i, int task, int model, const char *method, const char *status,
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

/* What the leader of the group learnt (a file exists, a cell is done),
 * told to every rank: ranks never decide from the file system on their own
 * before a collective, where attribute caching could make them disagree. */
int group_decides(Comm *comm, int leader_value)
{
    int64_t v = comm->group_rank == 0 ? leader_value : 0;
    if (comm_sum_i64(comm, COMM_SCOPE_GROUP, &v, 1))
        return leader_value; /* the group is failing; the next collective says so */
    return v != 0;
}

/* One cell as its phases see it. */
typedef struct {
    Grid *g;
    const Chain *ch;
    Method method;
    char ckpt[2048], model_file[2048], result[2048], teacher_file[2048], name[256];
    CellStamp stamp, teacher_stamp; /* this cell's, and a student's teacher's */
    TrainConfig cfg;
    LoaderOptions base;
    int max_local;
    Net *net, *teacher;
    TrainState st;
    int have_state, resumed;
    EvalResult ev, ev_occ;   /* test split: as trained; teachers also on occluded faces */
    char msg[COMM_MSG_MAX];
} Cell;

/* Paths, configuration, the network (and a student's frozen teacher), the
 * training state. Local: the caller agrees on the outcome. */
static int cell_prepare(Cell *c)
{
    const Job *job = c->g->job;
    const Chain *ch = c->ch;
    char tmp[2048], tmp2[2048];
    cell_paths(job, ch->seed_i, ch->task, ch->model, method_name(c->method), c->ckpt, c->model_file, c->result,
               sizeof c->ckpt);
    cell_paths(job, ch->seed_i, ch->task, ch->model, "teacher", tmp, c->teacher_file, tmp2, sizeof tmp);
    cell_name(job, ch->seed_i, ch->task, ch->model, method_name(c->method), c->name, sizeof c->name);
    c->cfg = cell_config(c->g, ch->task, ch->model, c->method, job->seeds[ch->seed_i], c->name, &c->max_local);
    c->base = cell_loader(c->g, ch->task, ch->model, c->method);
    NetSpec spec = job_netspec(job, ch->task, ch->model);
    spec.classes = c->cfg.classes;
    c->net = net_create(&spec, c->max_local, 0, c->msg, sizeof c->msg);
    if (!c->net)
        return -1;
    if (job_cell_stamp(job, ch->seed_i, ch->task, ch->model, method_name(c->method), &c->stamp)) {
        snprintf(c->msg, sizeof c->msg, "the text of the cell's settings does not fit %d bytes", CELL_SETTINGS_MAX);
        return -1;
    }
    if (c->method != METHOD_TEACHER) {
        /* the teacher's weights, only from the teacher's own model file */
        CellStamp *found = malloc(sizeof *found);
        int bad = !found || job_cell_stamp(job, ch->seed_i, ch->task, ch->model, "teacher", &c->teacher_stamp) ||
                  cell_stamp_read(c->teacher_file, found, c->msg, sizeof c->msg) ||
                  cell_stamp_compare(c->teacher_file, found, &c->teacher_stamp, c->msg, sizeof c->msg);
        free(found);
        if (bad)
            return -1;
        c->teacher = net_create(&spec, c->max_local, 0, c->msg, sizeof c->msg);
        if (!c->teacher || weights_load(c->teacher_file, c->teacher, 0, NULL, c->msg, sizeof c->msg))
            return -1;
    }
    if (train_state_init(&c->st, c->net)) {
        snprintf(c->msg, sizeof c->msg, "out of memory for the training state");
        return -1;
    }
    c->have_state = 1;
    return 0;
}

/* The starting point: this cell's checkpoint when the leader found one,
 * else the teacher's weights (students), a pretrained file, or a seeded
 * initialisation. Local: the caller agrees on the outcome. */
static int cell_resume(Cell *c, int have_checkpoint)
{
    const Job *job = c->g->job;
    Comm *comm = c->g->comm;
    Net *net = c->net;
    if (have_checkpoint) {
        CheckpointMeta m;
        memset(&m, 0, sizeof m);
        TrainState *st = &c->st;
        if (checkpoint_load(c->ckpt, net, st->velocity, st->best_params, st->best_state, &m, &c->stamp, c->msg,
                            sizeof c->msg)) {
            size_t n = strlen(c->msg);
            snprintf(c->msg + n, sizeof c->msg - n, "; delete %s to train the cell from its start", c->ckpt);
            return -1;
        }
        /* the state is complete on every rank and the sampler position is
         * global, so another rank count resumes the same steps; only the
         * order of float sums (and batch-norm slices) differs from here on */
        if (m.world != comm->group_size && comm->group_rank == 0)
            printf("[%s] %s was written by a group of %d rank(s); resuming on %d: the steps from here agree "
                   "with an uninterrupted run to float rounding, not bit for bit\n",
                   c->name, c->ckpt, m.world, comm->group_size);
        st->run = m.run;
        st->history = m.history; /* moved: the state frees it */
        memset(&m.history, 0, sizeof m.history);
        checkpoint_meta_free(&m);
        c->resumed = 1;
        return 0;
    }
    if (c->method != METHOD_TEACHER) {
        memcpy(net->params, c->teacher->params, net->n_params * sizeof(float));
        memcpy(net->state, c->teacher->state, net->n_state * sizeof(float));
        return 0;
    }
    const ModelSpec *ms = &job->models[c->ch->model];
    net_init(net, rng_mix(job->seeds[c->ch->seed_i], name_key(job->tasks[c->ch->task].name, ms->name)));
    if (ms->init[0]) {
        int loaded = 0;
        if (weights_load(ms->init, net, 1, &loaded, c->msg, sizeof c->msg))
            return -1;
        if (comm->group_rank == 0)
            printf("[%s] %d tensors from %s\n", c->name, loaded, ms->init);
    }
    return 0;
}

/* The training, then the finished state and the model file, saved before
 * the evaluation so that a crash from there on only repeats the evaluation.
 * 0, 1 stopped by a signal (checkpoint written), -1 failed. Collective. */
static int cell_train(Cell *c, char *err, size_t errlen)
{
    Comm *comm = c->g->comm;
    const Dataset *d = &c->g->data[c->g->task_data[c->ch->task]];
    if (comm->group_rank == 0) {
        if (c->resumed)
            printf("[%s] resuming at step %lld (epoch %lld) from %s\n", c->name, (long long)c->st.run.step,
                   (long long)c->st.run.epoch, c->ckpt);
        else
            printf("[%s] training: %d epochs, batch %d, lr %g, %d rank(s)\n", c->name, c->cfg.epochs,
                   c->cfg.global_batch, c->cfg.sgd.lr, comm->group_size);
        fflush(stdout);
    }
    CkptCtx cc = {.g = c->g, .ckpt = c->ckpt, .stamp = &c->stamp, .net = c->net, .last_save = clock_seconds(),
                  .last_step = c->st.run.step};
    TrainEnv env = {.comm = comm, .log = comm->group_rank == 0 ? stdout : NULL, .after_step = after_step, .user = &cc};
    int rc = train_cell(&c->cfg, &env, c->net, c->teacher, d, &c->base, &c->st, c->msg, sizeof c->msg);
    if (rc) {
        if (rc < 0)
            snprintf(err, errlen, "%s", c->msg);
        return rc;
    }
    int status = 0;
    if (comm->group_rank == 0)
        status = save_checkpoint(&cc, &c->st) || weights_save(c->model_file, c->net, &c->stamp, c->msg, sizeof c->msg);
    if (status && cc.err[0])
        snprintf(c->msg, sizeof c->msg, "%s", cc.err);
    if (comm_agree(comm, COMM_SCOPE_GROUP, status, c->msg, sizeof c->msg, NULL)) {
        snprintf(err, errlen, "%s: %s", c->name, c->msg);
        return -1;
    }
    return 0;
}

/* The test split: students on occluded faces, teachers on clean and on
 * occluded ones. Collective. */
static int cell_evaluate(Cell *c, char *err, size_t errlen)
{
    Comm *comm = c->g->comm;
    const Dataset *d = &c->g->data[c->g->task_data[c->ch->task]];
    int teacher = c->method == METHOD_TEACHER;
    if (evaluate(&c->cfg, comm, c->net, d, &c->base, SPLIT_TEST, !teacher, &c->ev, c->msg, sizeof c->msg) ||
        (teacher && evaluate(&c->cfg, comm, c->net, d, &c->base, SPLIT_TEST, 1, &c->ev_occ, c->msg, sizeof c->msg))) {
        snprintf(err, errlen, "%s: %s", c->name, c->msg);
        return -1;
    }
    return 0;
}

/* The cell's result file, written last (a cell is finished once it
 * exists), and its line of output. Collective. */
static int cell_record(Cell *c, char *err, size_t errlen)
{
    Comm *comm = c->g->comm;
    const Chain *ch = c->ch;
    int status = 0, teacher = c->method == METHOD_TEACHER, regression = c->cfg.regression;
    if (comm->group_rank == 0) {
        CellResult r;
        result_header(&r, c->g->job, ch->seed_i, ch->task, ch->model, method_name(c->method));
        snprintf(r.status, sizeof r.status, "done");
        fill_result_from_eval(&r, &c->ev, regression);
        if (teacher) {
            r.value_occluded = c->ev_occ.metric;
            r.predictions_occluded = c->ev_occ.pred;
        }
        r.seconds = c->st.run.seconds;
        r.best_epoch = (int)c->st.run.best_epoch + 1;
        r.history = c->st.history; /* borrowed: freed with the state */
        status = cell_result_save(c->result, &r, c->msg, sizeof c->msg);
        fault_after_cell();
        const char *faces = teacher ? " (clean)" : " (occluded)";
        if (regression)
            printf("[%s] test MAE %.3f years%s\n", c->name, c->ev.metric, faces);
        else
            printf("[%s] test accuracy %.2f%%%s\n", c->name, 100 * c->ev.metric, faces);
        if (teacher && regression)
            printf("[%s] test MAE %.3f years (occluded)\n", c->name, c->ev_occ.metric);
        else if (teacher)
            printf("[%s] test accuracy %.2f%% (occluded)\n", c->name, 100 * c->ev_occ.metric);
        fflush(stdout);
    }
    if (comm_agree(comm, COMM_SCOPE_GROUP, status, c->msg, sizeof c->msg, NULL)) {
        snprintf(err, errlen, "%s: %s", c->name, c->msg);
        return -1;
    }
    return 0;
}

int run_cell(Grid *g, const Chain *ch, Method method, char *err, size_t errlen)
{
    Cell *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory for a cell");
        return -1;
    }
    c->g = g, c->ch = ch, c->method = method;
    Comm *comm = g->comm;
    int status = cell_prepare(c);
    int have_checkpoint = group_decides(comm, comm->group_rank == 0 && file_exists(c->ckpt));
    if (!status)
        status = cell_resume(c, have_checkpoint);
    int rc = 0;
    if (comm_agree(comm, COMM_SCOPE_GROUP, status != 0, c->msg, sizeof c->msg, NULL)) {
        snprintf(err, errlen, "%s: %s", c->name, c->msg);
        rc = -1;
    }
    if (!rc)
        rc = cell_train(c, err, errlen); /* 1: stopped by a signal, the checkpoint is written */
    if (!rc)
        rc = cell_evaluate(c, err, errlen);
    if (!rc)
        rc = cell_record(c, err, errlen);
    eval_result_free(&c->ev);
    eval_result_free(&c->ev_occ);
    if (c->have_state)
        train_state_free(&c->st);
    net_free(c->net);
    net_free(c->teacher);
    free(c);
    return rc;
}

/* A concatenation fusion: the students' embeddings of the occluded training
 * and test faces, concatenated, and a linear head trained on them (on the
 * group leader; the other ranks help extract the embeddings). */
int run_concat(Grid *g, const Chain *ch, const FusionSpec *f, char *err, size_t errlen)
{
    const Job *job = g->job;
    Comm *comm = g->comm;
    int task = ch->task, model = ch->model;
    const Dataset *d = &g->data[g->task_data[task]];
    char ckpt[2048], mf[2048], res[2048], name[256], msg[COMM_MSG_MAX] = "";
    cell_paths(job, ch->seed_i, task, model, f->name, ckpt, mf, res, sizeof ckpt);
    cell_name(job, ch->seed_i, task, model, f->name, name, sizeof name);
    if (group_decides(comm, comm->group_rank == 0 && cell_done(res)))
        return 0;
    for (int i = 0; i < f->n_students; i++) {
        char c2[2048], m2[2048], r2[2048];
        cell_paths(job, ch->seed_i, task, model, method_name(f->students[i]), c2, m2, r2, sizeof c2);
        if (!group_decides(comm, comm->group_rank == 0 && cell_done(r2))) {
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

