/* loop.c - one cell's training loop: objectives, gradient averaging,
 * progress, validation and the best epoch.
 *
 * Losses are normalised by the number of samples in the global step (all
 * ranks, all micro-batches), so the per-rank gradients add up to the
 * gradient of the whole step: the allreduce sums (scale 1) instead of
 * averaging. The triplet term is computed by every rank on the gathered
 * global batch, identical everywhere; each rank back-propagates the rows of
 * its own slice. Dropout masks and augmentations are keyed by global sample
 * indices. Hence a step does the same arithmetic whatever the number of
 * ranks, up to the order of floating-point sums. Batch normalisation
 * normalises over the group's whole micro-batch (cfg->sync_bn: Pass.reduce
 * sums its statistics and gradient sums over the group, two small
 * allreduces per batch-norm layer per step); without it, over each rank's
 * slice, which does depend on the number of ranks.
 *
 * train_cell reads as its phases: loop_prepare (checks, the same starting
 * point everywhere, the loader and the gradient buckets), then per step
 * loop_step (micro-batches, allreduce, the loss terms summed over the group,
 * the optimiser), loop_log (a progress line), loop_end_epoch (history row,
 * validation, best epoch) and loop_after_step (the caller's checkpoint or
 * stop, agreed over the group).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trainer/trainer.h"

/* --------------------------------------------------------- one micro-batch */

/* Buffers for one micro-batch of at most max_n local and g global samples. */
typedef struct {
    int max_n, g, k, e;
    float *d_out, *d_kd, *d_emb, *target;
    float *s_emb, *t_emb, *d_gs; /* gathered (g, e) */
    int *labels, *g_labels;
} Work;

static int work_init(Work *w, int max_n, int g, int k, int e)
{
    memset(w, 0, sizeof *w);
    w->max_n = max_n, w->g = g, w->k = k, w->e = e;
    w->d_out = malloc((size_t)max_n * k * sizeof(float));
    w->d_kd = malloc((size_t)max_n * k * sizeof(float));
    w->d_emb = malloc((size_t)max_n * e * sizeof(float));
    w->target = malloc((size_t)max_n * sizeof(float));
    w->s_emb = malloc((size_t)g * e * sizeof(float));
    w->t_emb = malloc((size_t)g * e * sizeof(float));
    w->d_gs = malloc((size_t)g * e * sizeof(float));
    w->labels = malloc((size_t)max_n * sizeof(int));
    w->g_labels = malloc((size_t)g * sizeof(int));
    return (w->d_out && w->d_kd && w->d_emb && w->target && w->s_emb && w->t_emb && w->d_gs && w->labels &&
            w->g_labels)
               ? 0
               : -1;
}

static void work_free(Work *w)
{
    free(w->d_out);
    free(w->d_kd);
    free(w->d_emb);
    free(w->target);
    free(w->s_emb);
    free(w->t_emb);
    free(w->d_gs);
    free(w->labels);
    free(w->g_labels);
}

/* Loss terms of one micro-batch, each already divided by the step's samples. */
typedef struct {
    double task, kd, triplet;
    double correct;
    int active;
} Terms;

/* The class a sample counts as for the triplet term. */
static int triplet_class(const TrainConfig *cfg, const Batch *b, int i)
{
    if (cfg->regression)
        return (int)floorf(b->age[i] / cfg->age_bin);
    if (b->soft)
        return argmax(b->soft + (size_t)i * b->soft_k, b->soft_k);
    return b->label[i];
}

/* Forward, objectives and backward of one micro-batch. norm: samples in the
 * whole step; tri_scale: weight of this micro-batch's triplet term. */
static int micro_step(const TrainConfig *cfg, Comm *comm, Net *net, Net *teacher, const Batch *b, Pass *p,
                      double norm, double tri_scale, Work *w, Terms *t, char *err, size_t errlen)
{
    int n = b->n, k = cfg->regression ? 1 : cfg->classes;
    const float *x = cfg->method == METHOD_TEACHER ? b->clean : b->occluded;
    const float *out = net_forward(net, p, x);
    float fnorm = (float)norm;
    double task;
    if (cfg->regression) {
        for (int i = 0; i < n; i++)
            w->target[i] = (b->age[i] - cfg->target_mean) / cfg->target_std;
        task = cfg->l2 ? loss_l2(out, w->target, n, 1, fnorm, w->d_out) : loss_l1(out, w->target, n, 1, fnorm, w->d_out);
    } else if (b->soft) {
        task = loss_softmax_ce_soft(out, b->soft, n, k, fnorm, w->d_out);
    } else {
        float v;
        if (loss_softmax_ce_checked(out, b->label, n, k, fnorm, w->d_out, &v, err, errlen))
            return -1;
        task = v;
    }
    if (!cfg->regression)
        for (int i = 0; i < n; i++) {
            int truth = b->soft ? argmax(b->soft + (size_t)i * k, k) : b->label[i];
            t->correct += argmax(out + (size_t)i * k, k) == truth;
        }
    t->task += task;
    int need_teacher = method_uses_kd(cfg->method) || method_uses_triplet(cfg->method);
    const float *t_out = NULL;
    if (need_teacher) {
        Pass tp = {.n = n, .training = 0, .seed = cfg->seed, .step = p->step, .sample_id = b->ids};
        t_out = net_forward(teacher, &tp, b->clean);
    }
    if (method_uses_kd(cfg->method)) {
        float lam = cfg->lambda;
        double kd;
        if (cfg->regression)
            kd = cfg->l2 ? loss_l2(out, t_out, n, 1, fnorm, w->d_kd) : loss_l1(out, t_out, n, 1, fnorm, w->d_kd);
        else {
            float v;
            if (loss_kd_checked(out, t_out, n, k, cfg->T, fnorm, w->d_kd, &v, err, errlen))
                return -1;
            kd = v;
        }
        for (size_t j = 0; j < (size_t)n * k; j++)
            w->d_out[j] = (1.0f - lam) * w->d_out[j] + lam * w->d_kd[j];
        t->task -= lam * task;
        t->kd += lam * kd;
    }
    const float *d_emb = NULL;
    if (method_uses_triplet(cfg->method)) {
        int e = w->e, g = 0;
        for (int i = 0; i < n; i++)
            w->labels[i] = triplet_class(cfg, b, i);
        if (comm_allgather_rows(comm, net_embedding(net), n, e, w->s_emb, (size_t)w->g, NULL, &g) ||
            comm_allgather_rows(comm, net_embedding(teacher), n, e, w->t_emb, (size_t)w->g, NULL, NULL) ||
            comm_allgather_ints(comm, w->labels, n, w->g_labels, (size_t)w->g, NULL, NULL)) {
            snprintf(err, errlen, "%s", comm->error);
            return -1;
        }
        uint64_t key = rng_mix(cfg->seed, p->step * 1000003u + (uint64_t)b->batch);
        float tri;
        if (triplet_objective(w->s_emb, w->t_emb, w->g_labels, g, e, cfg->mining, cfg->positive, cfg->margin, key,
                              w->d_gs, &t->active, &tri, err, errlen))
            return -1;
        /* every rank holds the same value: count a share of it per rank */
        t->triplet += cfg->beta * tri * tri_scale / comm->group_size;
        float s = (float)(cfg->beta * tri_scale);
        const float *mine = w->d_gs + (size_t)b->offset * e;
        for (size_t j = 0; j < (size_t)n * e; j++)
            w->d_emb[j] = s * mine[j];
        d_emb = w->d_emb;
    }
    net_backward(net, p, w->d_out, d_emb);
    return 0;
}

/* ------------------------------------------------------------- the loop */

static int better(const TrainConfig *cfg, double a, double b)
{
    if (isnan(b))
        return 1;
    return cfg->regression ? a < b : a > b;
}

static void fmt_duration(double s, char *buf, size_t len)
{
    if (!(s >= 0) || s > 1e7)
        snprintf(buf, len, "?");
    else if (s >= 3600)
        snprintf(buf, len, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else
        snprintf(buf, len, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

/* First layer with a non-finite output, for the NaN message. */
static void describe_nonfinite(const Net *net, int n, int64_t step, const Terms *t, char *msg, size_t len)
{
    int l = net_first_nonfinite(net, n);
    snprintf(msg, len, "non-finite loss at step %lld (task %g, kd %g, triplet %g); first non-finite layer: %s",
             (long long)step, t->task, t->kd, t->triplet, l >= 0 ? net->layers[l]->name : "none (the loss itself)");
}

/* Sums over the steps since the last progress line, or the epoch's start. */
typedef struct {
    double t0, wait, loss, task, kd, triplet, seen;
    int64_t steps;
} Interval;

/* Everything one cell's loop works with. */
typedef struct {
    const TrainConfig *cfg;
    const TrainEnv *env;
    Comm *comm;
    Net *net, *teacher;
    const Dataset *d;
    const LoaderOptions *base;
    TrainState *st;
    Loader *ld;
    GradSync *gs, *state_sync;
    Work w;
    SgdConfig sgd;
    int accum, micro;
    int64_t steps_per_epoch, total_steps;
    double t_start;
    Interval log, epoch;     /* since the last progress line; since the epoch began */
    float lr;                /* of the last step */
    int bn_failed;           /* a batch-norm sum over the group failed in this step */
    char *err;
    size_t errlen;
} Loop;

/* "<cell>: step <k>: <what>" into the caller's buffer; returns -1. */
static int loop_fail(Loop *L, const char *fmt, ...)
{
    char what[COMM_MSG_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(L->err, L->errlen, "%s: step %lld: %s", L->cfg->name, (long long)L->st->run.step, what);
    return -1;
}

/* Checks, the same starting point on every rank, the loader positioned at
 * the state's sampler position, the gradient buckets. */
static int loop_prepare(Loop *L)
{
    const TrainConfig *cfg = L->cfg;
    Comm *comm = L->comm;
    Net *net = L->net;
    char msg[COMM_MSG_MAX] = "";
    L->accum = cfg->accum > 0 ? cfg->accum : 1;
    L->micro = cfg->global_batch / L->accum;
    if (L->micro < comm->group_size || L->micro * L->accum != cfg->global_batch) {
        snprintf(L->err, L->errlen,
                 "%s: global batch %d must split into %d micro-batches of at least %d samples (one per rank)",
                 cfg->name, cfg->global_batch, L->accum, comm->group_size);
        return -1;
    }
    if ((method_uses_kd(cfg->method) || method_uses_triplet(cfg->method)) && !L->teacher) {
        snprintf(L->err, L->errlen, "%s: method %s needs a teacher", cfg->name, method_name(cfg->method));
        return -1;
    }
    /* the same starting point everywhere (weights, statistics, momentum) */
    if (L->st->run.step == 0 && (comm_bcast_floats(comm, net->params, net->n_params) ||
                                 (net->n_state && comm_bcast_floats(comm, net->state, net->n_state)))) {
        snprintf(L->err, L->errlen, "%s: broadcasting the initial weights: %s", cfg->name, comm->error);
        return -1;
    }
    if (comm_check_same(comm, COMM_SCOPE_GROUP, net->params, net->n_params, "weights")) {
        snprintf(L->err, L->errlen, "%s: %s", cfg->name, comm->error);
        return -1;
    }
    LoaderOptions o = *L->base;
    o.split = SPLIT_TRAIN;
    o.sampler.seed = cfg->seed;
    o.sampler.global_batch = L->micro;
    o.sampler.drop_last = 1;
    o.sampler.shuffle = 1;
    o.sampler.rank = comm->group_rank;
    o.sampler.world = comm->group_size;
    o.start = (SamplerPos){L->st->run.sampler_epoch, L->st->run.sampler_batch};
    o.max_epochs = cfg->epochs;
    int status = loader_create(L->d, &o, &L->ld, msg, sizeof msg);
    if (comm_agree(comm, COMM_SCOPE_GROUP, status != 0, msg, sizeof msg, NULL)) {
        snprintf(L->err, L->errlen, "%s: %s", cfg->name, msg);
        return -1;
    }
    L->steps_per_epoch = loader_batches_per_epoch(L->ld) / L->accum;
    if (L->steps_per_epoch < 1) {
        snprintf(L->err, L->errlen, "%s: the training split (%d samples) is smaller than one global batch of %d",
                 cfg->name, dataset_split_count(L->d, SPLIT_TRAIN), cfg->global_batch);
        return -1;
    }
    L->total_steps = L->steps_per_epoch * cfg->epochs;
    L->sgd = cfg->sgd;
    if (L->sgd.total_steps <= 0)
        L->sgd.total_steps = L->total_steps;
    int max_n = (L->micro + comm->group_size - 1) / comm->group_size;
    GradSyncOptions so = cfg->sync;
    if (so.scale == 0)
        so.scale = 1.0;
    if (work_init(&L->w, max_n, L->micro, cfg->regression ? 1 : cfg->classes, (int)net_embedding_size(net)) ||
        gradsync_create(comm, net->grads, net->n_params, &so, &L->gs)) {
        snprintf(L->err, L->errlen, "%s: setting up training: %s", cfg->name, L->gs ? "out of memory" : comm->error);
        return -1;
    }
    GradSyncOptions sso = {.blocking = 1, .scale = 0};
    if (net->n_state && comm->group_size > 1 && gradsync_create(comm, net->state, net->n_state, &sso, &L->state_sync)) {
        snprintf(L->err, L->errlen, "%s: %s", cfg->name, comm->error);
        return -1;
    }
    L->t_start = clock_seconds();
    L->log.t0 = L->epoch.t0 = L->t_start;
    return 0;
}

/* Pass.reduce for synchronised batch norm: sums over the group. A failure
 * is kept for loop_step to report after the pass. */
static int bn_group_sum(void *user, double *v, int n)
{
    Loop *L = user;
    if (comm_sum_f64(L->comm, COMM_SCOPE_GROUP, v, n)) {
        L->bn_failed = 1;
        return -1;
    }
    return 0;
}

/* One optimiser step: the micro-batches (gradients summed over them and,
 * bucket by bucket as backward frees them, over the group), the loss terms
 * summed over the group in one reduction (with the NaN flags), the SGD
 * update and the averaged batch-norm statistics. */
static int loop_step(Loop *L)
{
    const TrainConfig *cfg = L->cfg;
    Comm *comm = L->comm;
    Net *net = L->net;
    TrainState *st = L->st;
    char msg[COMM_MSG_MAX] = "";
    Terms t = {0};
    double norm = (double)L->micro * L->accum;
    int local_fail = 0;
    comm_set_step(comm, (long)st->run.step);
    L->lr = sgd_lr(&L->sgd, st->run.step);
    for (int m = 0; m < L->accum; m++) {
        Batch b;
        int lr_rc = loader_next(L->ld, &b, msg, sizeof msg);
        if (comm_agree(comm, COMM_SCOPE_GROUP, lr_rc != LOADER_OK, msg, sizeof msg, NULL))
            return loop_fail(L, "%s", lr_rc == LOADER_END ? "the loader ended early" : msg);
        Pass p = {.n = b.n, .training = 1, .seed = cfg->seed, .step = (uint64_t)st->run.step, .sample_id = b.ids,
                  .accumulate_grads = m > 0};
        if (m == L->accum - 1) {
            p.grads_ready = gradsync_on_ready;
            p.user = L->gs;
        }
        if (cfg->sync_bn && comm->group_size > 1) {
            p.reduce = bn_group_sum;
            p.reduce_user = L;
        }
        if (micro_step(cfg, comm, net, L->teacher, &b, &p, norm, 1.0 / L->accum, &L->w, &t, msg, sizeof msg))
            return loop_fail(L, "%s", msg);
        if (L->bn_failed)
            return loop_fail(L, "batch-norm statistics over the group: %s", comm->error);
        if (!local_fail && !isfinite(t.task + t.kd + t.triplet)) {
            local_fail = 1;
            describe_nonfinite(net, b.n, st->run.step, &t, msg, sizeof msg);
        }
    }
    if (gradsync_finish(L->gs)) {
        return loop_fail(L, "gradient allreduce: %s", comm->error);
    }
    double sums[5] = {t.task, t.kd, t.triplet, t.correct, (double)local_fail};
    if (comm_sum_f64(comm, COMM_SCOPE_GROUP, sums, 5))
        return loop_fail(L, "%s", comm->error);
    if (sums[4] > 0) { /* someone saw a NaN: everyone learns whose message */
        comm_agree(comm, COMM_SCOPE_GROUP, local_fail, msg, sizeof msg, NULL);
        snprintf(L->err, L->errlen, "%s: %s", cfg->name, msg);
        return -1;
    }
    sgd_step(&L->sgd, L->lr, net->params, net->grads, st->velocity, net->n_params);
    /* batch-norm statistics come from each rank's slice: average them so
     * that every rank holds the same state (and a checkpoint all of it) */
    if (L->state_sync && (gradsync_ready(L->state_sync, net->n_state) || gradsync_finish(L->state_sync))) {
        return loop_fail(L, "averaging batch-norm statistics: %s", comm->error);
    }
    double loss = sums[0] + sums[1] + sums[2], wait = gradsync_wait_seconds(L->gs);
    Interval *iv[2] = {&L->log, &L->epoch};
    for (int i = 0; i < 2; i++) {
        iv[i]->wait += wait, iv[i]->loss += loss, iv[i]->seen += norm, iv[i]->steps++;
        iv[i]->task += sums[0], iv[i]->kd += sums[1], iv[i]->triplet += sums[2];
    }
    st->run.epoch_loss_sum += loss;
    st->run.epoch_seen += norm;
    st->run.step++;
    return 0;
}

/* The progress line, every log_every steps (0: at the end of each epoch). */
static void loop_log(Loop *L, int epoch_end)
{
    const TrainConfig *cfg = L->cfg;
    int64_t step = L->st->run.step;
    if (L->comm->group_rank != 0 || !L->env->log || cfg->log_every < 0 ||
        !((cfg->log_every > 0 && step % cfg->log_every == 0) || (cfg->log_every == 0 && epoch_end)))
        return;
    Interval *v = &L->log;
    double el = clock_seconds() - v->t0, n = (double)v->steps;
    double eta = (clock_seconds() - L->t_start) / (double)step * (double)(L->total_steps - step);
    char eta_s[32];
    fmt_duration(eta, eta_s, sizeof eta_s);
    fprintf(L->env->log,
            "[%s] epoch %lld/%d step %lld/%lld loss %.4f (task %.4f kd %.4f triplet %.4f) lr %.3g "
            "%.1f img/s allreduce wait %.1f%% ETA %s\n",
            cfg->name, (long long)((step - 1) / L->steps_per_epoch) + 1, cfg->epochs, (long long)step,
            (long long)L->total_steps, v->loss / n, v->task / n, v->kd / n, v->triplet / n, L->lr, v->seen / el,
            el > 0 ? 100.0 * v->wait / el : 0.0, eta_s);
    fflush(L->env->log);
    memset(v, 0, sizeof *v);
    v->t0 = clock_seconds();
}

/* The end of an epoch: validation (the student on occluded faces, a teacher
 * on clean ones), the history row, the best epoch's weights. */
static int loop_end_epoch(Loop *L)
{
    const TrainConfig *cfg = L->cfg;
    TrainState *st = L->st;
    Net *net = L->net;
    char msg[COMM_MSG_MAX];
    int64_t epoch = (st->run.step - 1) / L->steps_per_epoch;
    double el = clock_seconds() - L->epoch.t0;
    EpochRecord row = {.epoch = epoch + 1,
                       .lr = L->lr,
                       .train_loss = st->run.epoch_loss_sum / (double)L->steps_per_epoch,
                       .images_per_s = st->run.epoch_seen / el,
                       .wait_share = el > 0 ? L->epoch.wait / el : 0};
    st->run.seconds += el;
    int has_val = dataset_split_count(L->d, SPLIT_VAL) > 0;
    double metric = cfg->regression ? -(double)st->run.step : (double)st->run.step; /* no validation: the last */
    if (has_val) {
        EvalResult ev;
        if (evaluate(cfg, L->comm, net, L->d, L->base, SPLIT_VAL, cfg->method != METHOD_TEACHER, &ev, msg,
                     sizeof msg)) {
            snprintf(L->err, L->errlen, "%s", msg);
            return -1;
        }
        metric = ev.metric;
        eval_result_free(&ev);
        if (comm_bcast_bytes(L->comm, COMM_SCOPE_GROUP, &metric, sizeof metric, 0)) {
            snprintf(L->err, L->errlen, "%s: %s", cfg->name, L->comm->error);
            return -1;
        }
    }
    row.val_metric = metric;
    if (history_append(&st->history, &row)) {
        snprintf(L->err, L->errlen, "%s: out of memory for the history", cfg->name);
        return -1;
    }
    if (better(cfg, metric, st->run.best_metric)) {
        st->run.best_metric = metric;
        st->run.best_epoch = epoch;
        memcpy(st->best_params, net->params, net->n_params * sizeof(float));
        if (net->n_state)
            memcpy(st->best_state, net->state, net->n_state * sizeof(float));
    }
    if (L->comm->group_rank == 0 && L->env->log && cfg->log_every >= 0 && has_val)
        fprintf(L->env->log, "[%s] epoch %lld: train loss %.4f, val %s %.4f%s\n", cfg->name, (long long)epoch + 1,
                row.train_loss, cfg->regression ? "MAE" : "accuracy", metric,
                st->run.best_epoch == epoch ? " (best)" : "");
    st->run.epoch = epoch + 1;
    st->run.epoch_loss_sum = st->run.epoch_seen = 0;
    memset(&L->epoch, 0, sizeof L->epoch);
    L->epoch.t0 = clock_seconds();
    return 0;
}

/* The caller's hook (checkpoint, stop), its outcome agreed over the group:
 * 0 go on, 1 stop, -1 failed. */
static int loop_after_step(Loop *L, int epoch_end)
{
    const TrainEnv *env = L->env;
    if (!env->after_step)
        return 0;
    char msg[COMM_MSG_MAX] = "";
    int r = env->after_step(env->user, L->st, epoch_end, msg, sizeof msg);
    int64_t flags[2] = {r == 1, r < 0};
    if (comm_sum_i64(L->comm, COMM_SCOPE_GROUP, flags, 2))
        return loop_fail(L, "%s", L->comm->error);
    if (flags[1] > 0) {
        comm_agree(L->comm, COMM_SCOPE_GROUP, r < 0, msg, sizeof msg, NULL);
        return loop_fail(L, "%s", msg);
    }
    return flags[0] > 0 ? 1 : 0;
}

int train_cell(const TrainConfig *cfg, const TrainEnv *env, Net *net, Net *teacher, const Dataset *d,
               const LoaderOptions *base, TrainState *st, char *err, size_t errlen)
{
    Loop L = {.cfg = cfg, .env = env, .comm = env->comm, .net = net, .teacher = teacher, .d = d, .base = base,
              .st = st, .err = err, .errlen = errlen};
    int rc = loop_prepare(&L);
    while (!rc && st->run.step < L.total_steps) {
        rc = loop_step(&L);
        if (rc)
            break;
        int epoch_end = st->run.step % L.steps_per_epoch == 0;
        loop_log(&L, epoch_end);
        if (epoch_end)
            rc = loop_end_epoch(&L);
        if (rc)
            break;
        SamplerPos pos = loader_tell(L.ld);
        st->run.sampler_epoch = pos.epoch, st->run.sampler_batch = pos.batch;
        rc = loop_after_step(&L, epoch_end);
    }
    if (rc == 0) { /* the best validation epoch's weights */
        memcpy(net->params, st->best_params, net->n_params * sizeof(float));
        if (net->n_state)
            memcpy(net->state, st->best_state, net->n_state * sizeof(float));
    }
    gradsync_free(L.gs);
    gradsync_free(L.state_sync);
    work_free(&L.w);
    loader_destroy(L.ld);
    return rc;
}
