/* train.c - one cell's training loop: objectives, gradient averaging,
 * progress, validation and the best epoch.
 *
 * Losses are normalised by the number of samples in the global step (all
 * ranks, all micro-batches), so the per-rank gradients add up to the
 * gradient of the whole step: the allreduce sums (scale 1) instead of
 * averaging. The triplet term is computed by every rank on the gathered
 * global batch, identical everywhere; each rank back-propagates the rows of
 * its own slice. Dropout masks and augmentations are keyed by global sample
 * indices. Hence a step does the same arithmetic whatever the number of
 * ranks, up to the order of floating-point sums (batch normalisation, which
 * uses per-rank batch statistics, is the exception).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trainer/trainer.h"

static const char *const method_names[METHOD_COUNT] = {"teacher", "student", "kd", "triplet", "kd+triplet"};

const char *method_name(Method m) { return (unsigned)m < METHOD_COUNT ? method_names[m] : "?"; }

int method_parse(const char *name, Method *out)
{
    for (int i = 0; i < METHOD_COUNT; i++)
        if (strcmp(name, method_names[i]) == 0) {
            *out = (Method)i;
            return 0;
        }
    return -1;
}

TrainConfig train_config_default(void)
{
    TrainConfig c;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "cell");
    c.method = METHOD_TEACHER;
    c.target_mean = 0;
    c.target_std = 1;
    c.classes = 8;
    c.epochs = 10;
    c.global_batch = 64;
    c.accum = 1;
    c.sgd = sgd_default();
    c.T = 3.0f;
    c.lambda = 0.5f;
    c.beta = 1.0f;
    c.margin = 0.2f;
    c.mining = MINE_HARDEST;
    c.positive = POSITIVE_SAME;
    c.age_bin = 10.0f;
    c.seed = 1;
    c.log_every = 0;
    c.eval_batch = 256;
    c.sync.scale = 1.0;
    return c;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int train_state_init(TrainState *s, const Net *net, int epochs)
{
    memset(s, 0, sizeof *s);
    s->velocity = calloc(net->n_params, sizeof(float));
    s->best_params = malloc(net->n_params * sizeof(float));
    s->best_state = malloc((net->n_state ? net->n_state : 1) * sizeof(float));
    size_t e = (size_t)(epochs > 0 ? epochs : 1);
    s->lr = calloc(e, sizeof(double));
    s->train_loss = calloc(e, sizeof(double));
    s->val_metric = calloc(e, sizeof(double));
    s->images_per_s = calloc(e, sizeof(double));
    s->wait_share = calloc(e, sizeof(double));
    s->best_metric = NAN;
    s->best_epoch = -1;
    if (!s->velocity || !s->best_params || !s->best_state || !s->lr || !s->train_loss || !s->val_metric ||
        !s->images_per_s || !s->wait_share) {
        train_state_free(s);
        return -1;
    }
    return 0;
}

void train_state_free(TrainState *s)
{
    free(s->velocity);
    free(s->best_params);
    free(s->best_state);
    free(s->lr);
    free(s->train_loss);
    free(s->val_metric);
    free(s->images_per_s);
    free(s->wait_share);
    memset(s, 0, sizeof *s);
}

void eval_result_free(EvalResult *r)
{
    free(r->label);
    free(r->pred);
    free(r->prob);
    free(r->confusion);
    free(r->per_class);
    free(r->embedding);
    memset(r, 0, sizeof *r);
}

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
        task = loss_softmax_ce(out, b->label, n, k, fnorm, w->d_out);
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
        else
            kd = loss_kd(out, t_out, n, k, cfg->T, fnorm, w->d_kd);
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
        double tri = triplet_objective(w->s_emb, w->t_emb, w->g_labels, g, e, cfg->mining, cfg->positive,
                                       cfg->margin, key, w->d_gs, &t->active);
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

/* ------------------------------------------------------------ evaluation */

static int better(const TrainConfig *cfg, double a, double b)
{
    if (isnan(b))
        return 1;
    return cfg->regression ? a < b : a > b;
}

/* The evaluation pass; with want_emb the embedding rows are gathered too. */
static int evaluate_core(const TrainConfig *cfg, Comm *comm, Net *net, const Dataset *d, const LoaderOptions *base,
                         Split split, int occluded, int want_emb, EvalResult *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int e = want_emb ? (int)net_embedding_size(net) : 0;
    LoaderOptions o = *base;
    o.split = split;
    o.augment = 0;
    o.sampler.seed = cfg->seed;
    /* no rank may get more samples than its network holds */
    int eval_batch = cfg->eval_batch < net->max_batch * comm->group_size ? cfg->eval_batch
                                                                          : net->max_batch * comm->group_size;
    o.sampler.global_batch = eval_batch;
    o.sampler.drop_last = 0;
    o.sampler.shuffle = 0;
    o.sampler.rank = comm->group_rank;
    o.sampler.world = comm->group_size;
    o.start.epoch = 0;
    o.start.batch = 0;
    o.max_epochs = 1;
    int64_t n_total = dataset_split_count(d, split);
    int k = cfg->regression ? 0 : cfg->classes, kk = k ? k : 1;
    Loader *ld = NULL;
    char lerr[512] = "";
    int status = n_total > 0 ? loader_create(d, &o, &ld, lerr, sizeof lerr) : -1;
    if (n_total <= 0)
        snprintf(lerr, sizeof lerr, "the %s split is empty", split_name(split));
    char msg[COMM_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", lerr);
    if (comm_agree(comm, COMM_SCOPE_GROUP, status != 0, msg, sizeof msg, NULL)) {
        snprintf(err, errlen, "evaluating %s on %s: %s", cfg->name, split_name(split), msg);
        loader_destroy(ld);
        return -1;
    }
    int64_t batches = (n_total + eval_batch - 1) / eval_batch;
    int64_t mine_max = batches * ((eval_batch + comm->group_size - 1) / comm->group_size) + 1;
    float *pred = malloc((size_t)mine_max * sizeof(float));
    float *label = malloc((size_t)mine_max * sizeof(float));
    float *prob = malloc((size_t)mine_max * kk * sizeof(float));
    int64_t *pos = malloc((size_t)mine_max * sizeof(int64_t));
    int64_t *pos_k = malloc((size_t)mine_max * kk * sizeof(int64_t));
    float *emb = e ? malloc((size_t)mine_max * e * sizeof(float)) : NULL;
    int64_t *pos_e = e ? malloc((size_t)mine_max * e * sizeof(int64_t)) : NULL;
    int64_t mine = 0;
    Batch b;
    int rc = 0;
    for (;;) {
        rc = loader_next(ld, &b, lerr, sizeof lerr);
        snprintf(msg, sizeof msg, "%s", lerr);
        if (comm_agree(comm, COMM_SCOPE_GROUP, rc == LOADER_ERROR, msg, sizeof msg, NULL)) {
            rc = LOADER_ERROR;
            snprintf(err, errlen, "evaluating %s: %s", cfg->name, msg);
            break;
        }
        if (rc == LOADER_END)
            break;
        Pass p = {.n = b.n, .training = 0, .seed = cfg->seed, .sample_id = b.ids};
        const float *y = b.n ? net_forward(net, &p, occluded ? b.occluded : b.clean) : NULL;
        for (int i = 0; i < b.n; i++, mine++) {
            pos[mine] = b.batch * eval_batch + b.offset + i;
            for (int j = 0; j < e; j++) {
                emb[mine * e + j] = net_embedding(net)[(size_t)i * e + j];
                pos_e[mine * e + j] = pos[mine] * e + j;
            }
            if (cfg->regression) {
                pred[mine] = y[i] * cfg->target_std + cfg->target_mean;
                label[mine] = b.age[i];
                prob[mine] = pred[mine];
                pos_k[mine] = pos[mine];
                continue;
            }
            const float *row = y + (size_t)i * k;
            float mx = row[argmax(row, k)];
            double sum = 0;
            for (int c = 0; c < k; c++)
                sum += exp((double)row[c] - mx);
            for (int c = 0; c < k; c++) {
                prob[mine * k + c] = (float)(exp((double)row[c] - mx) / sum);
                pos_k[mine * k + c] = pos[mine] * k + c;
            }
            pred[mine] = (float)argmax(row, k);
            label[mine] = (float)(b.soft ? argmax(b.soft + (size_t)i * b.soft_k, b.soft_k) : b.label[i]);
        }
    }
    loader_destroy(ld);
    if (rc != LOADER_ERROR) {
        int leader = comm->group_rank == 0;
        if (leader) {
            out->n = n_total;
            out->classes = k;
            out->pred = malloc((size_t)n_total * sizeof(float));
            out->label = malloc((size_t)n_total * sizeof(float));
            out->prob = k ? malloc((size_t)n_total * k * sizeof(float)) : NULL;
            out->embedding = e ? malloc((size_t)n_total * e * sizeof(float)) : NULL;
            out->embedding_size = e;
        }
        if (comm_gather_to_leader(comm, pred, pos, (int)mine, out->pred, (size_t)n_total) ||
            comm_gather_to_leader(comm, label, pos, (int)mine, out->label, (size_t)n_total) ||
            (k && comm_gather_to_leader(comm, prob, pos_k, (int)(mine * k), out->prob, (size_t)n_total * k)) ||
            (e && comm_gather_to_leader(comm, emb, pos_e, (int)(mine * e), out->embedding, (size_t)n_total * e))) {
            snprintf(err, errlen, "gathering predictions of %s: %s", cfg->name, comm->error);
            rc = LOADER_ERROR;
        } else if (leader) {
            double acc = 0;
            if (k) {
                out->confusion = calloc((size_t)k * k, sizeof(int64_t));
                out->per_class = calloc((size_t)k, sizeof(double));
                for (int64_t i = 0; i < n_total; i++) {
                    int t = (int)out->label[i], pr = (int)out->pred[i];
                    if (t >= 0 && t < k)
                        out->confusion[(size_t)t * k + pr]++;
                    acc += t == pr;
                }
                for (int c = 0; c < k; c++) {
                    int64_t row = 0;
                    for (int j = 0; j < k; j++)
                        row += out->confusion[(size_t)c * k + j];
                    out->per_class[c] = row ? (double)out->confusion[(size_t)c * k + c] / row : NAN;
                }
            } else {
                for (int64_t i = 0; i < n_total; i++)
                    acc += fabs((double)out->pred[i] - out->label[i]);
            }
            out->metric = acc / (double)n_total;
        }
    }
    free(pred);
    free(label);
    free(prob);
    free(pos);
    free(pos_k);
    free(emb);
    free(pos_e);
    if (rc == LOADER_ERROR) {
        eval_result_free(out);
        return -1;
    }
    return 0;
}

int evaluate(const TrainConfig *cfg, Comm *comm, Net *net, const Dataset *d, const LoaderOptions *base, Split split,
             int occluded, EvalResult *out, char *err, size_t errlen)
{
    return evaluate_core(cfg, comm, net, d, base, split, occluded, 0, out, err, errlen);
}

int evaluate_embeddings(const TrainConfig *cfg, Comm *comm, Net *net, const Dataset *d, const LoaderOptions *base,
                        Split split, int occluded, EvalResult *out, char *err, size_t errlen)
{
    return evaluate_core(cfg, comm, net, d, base, split, occluded, 1, out, err, errlen);
}

double paired_p_value(const EvalResult *base, const EvalResult *other)
{
    if (!base || !other || base->n != other->n || base->n == 0)
        return NAN;
    if (base->classes) {
        int64_t b = 0, c = 0;
        for (int64_t i = 0; i < base->n; i++) {
            int rb = base->pred[i] == base->label[i], ro = other->pred[i] == other->label[i];
            b += rb && !ro;
            c += ro && !rb;
        }
        return mcnemar_exact(b, c);
    }
    double *d = malloc((size_t)base->n * sizeof(double));
    for (int64_t i = 0; i < base->n; i++)
        d[i] = fabs((double)base->pred[i] - base->label[i]) - fabs((double)other->pred[i] - other->label[i]);
    double p = wilcoxon_signed_rank(d, base->n, NULL);
    free(d);
    return p;
}

/* ------------------------------------------------------------- the loop */

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

int train_cell(const TrainConfig *cfg, const TrainEnv *env, Net *net, Net *teacher, const Dataset *d,
               const LoaderOptions *base, TrainState *st, char *err, size_t errlen)
{
    Comm *comm = env->comm;
    int leader = comm->group_rank == 0;
    char msg[COMM_MSG_MAX] = "";
    int accum = cfg->accum > 0 ? cfg->accum : 1;
    int micro = cfg->global_batch / accum;
    if (micro < comm->group_size || micro * accum != cfg->global_batch) {
        snprintf(err, errlen, "%s: global batch %d must split into %d micro-batches of at least %d samples (one per rank)",
                 cfg->name, cfg->global_batch, accum, comm->group_size);
        return -1;
    }
    if ((method_uses_kd(cfg->method) || method_uses_triplet(cfg->method)) && !teacher) {
        snprintf(err, errlen, "%s: method %s needs a teacher", cfg->name, method_name(cfg->method));
        return -1;
    }

    /* the same starting point everywhere (weights, statistics, momentum) */
    if (st->step == 0) {
        if (comm_bcast_floats(comm, net->params, net->n_params) ||
            (net->n_state && comm_bcast_floats(comm, net->state, net->n_state))) {
            snprintf(err, errlen, "%s: broadcasting the initial weights: %s", cfg->name, comm->error);
            return -1;
        }
    }
    if (comm_check_same(comm, COMM_SCOPE_GROUP, net->params, net->n_params, "weights")) {
        snprintf(err, errlen, "%s: %s", cfg->name, comm->error);
        return -1;
    }

    LoaderOptions o = *base;
    o.split = SPLIT_TRAIN;
    o.sampler.seed = cfg->seed;
    o.sampler.global_batch = micro;
    o.sampler.drop_last = 1;
    o.sampler.shuffle = 1;
    o.sampler.rank = comm->group_rank;
    o.sampler.world = comm->group_size;
    o.start = st->sampler;
    o.max_epochs = cfg->epochs;
    Loader *ld = NULL;
    char lerr[512] = "";
    int status = loader_create(d, &o, &ld, lerr, sizeof lerr);
    snprintf(msg, sizeof msg, "%s", lerr);
    if (comm_agree(comm, COMM_SCOPE_GROUP, status != 0, msg, sizeof msg, NULL)) {
        snprintf(err, errlen, "%s: %s", cfg->name, msg);
        loader_destroy(ld);
        return -1;
    }
    int64_t micro_per_epoch = loader_batches_per_epoch(ld);
    int64_t steps_per_epoch = micro_per_epoch / accum;
    if (steps_per_epoch < 1) {
        snprintf(err, errlen, "%s: the training split (%d samples) is smaller than one global batch of %d", cfg->name,
                 dataset_split_count(d, SPLIT_TRAIN), cfg->global_batch);
        loader_destroy(ld);
        return -1;
    }
    SgdConfig sgd = cfg->sgd;
    if (sgd.total_steps <= 0)
        sgd.total_steps = steps_per_epoch * cfg->epochs;

    int max_n = (micro + comm->group_size - 1) / comm->group_size;
    Work w;
    GradSync *gs = NULL;
    GradSyncOptions so = cfg->sync;
    if (so.scale == 0)
        so.scale = 1.0;
    if (work_init(&w, max_n, micro, cfg->regression ? 1 : cfg->classes, (int)net_embedding_size(net)) ||
        gradsync_create(comm, net->grads, net->n_params, &so, &gs)) {
        snprintf(err, errlen, "%s: setting up training: %s", cfg->name, gs ? "out of memory" : comm->error);
        work_free(&w);
        loader_destroy(ld);
        return -1;
    }

    GradSync *state_sync = NULL;
    GradSyncOptions sso = {.blocking = 1, .scale = 0};
    if (net->n_state && comm->group_size > 1 && gradsync_create(comm, net->state, net->n_state, &sso, &state_sync)) {
        snprintf(err, errlen, "%s: %s", cfg->name, comm->error);
        gradsync_free(gs);
        work_free(&w);
        loader_destroy(ld);
        return -1;
    }
    int rc = 0;
    double t_start = now(), t_interval = now(), wait_interval = 0, wait_epoch = 0, t_epoch = now();
    double loss_interval = 0, task_i = 0, kd_i = 0, tri_i = 0, seen_i = 0;
    int64_t interval_steps = 0;
    int64_t total_steps = steps_per_epoch * cfg->epochs;
    while (st->step < total_steps) {
        comm_set_step(comm, (long)st->step);
        Terms t = {0};
        double norm = (double)micro * accum;
        float lr = sgd_lr(&sgd, st->step);
        int local_fail = 0;
        msg[0] = 0;
        for (int m = 0; m < accum && !rc; m++) {
            Batch b;
            int lr_rc = loader_next(ld, &b, lerr, sizeof lerr);
            snprintf(msg, sizeof msg, "%s", lerr);
            if (comm_agree(comm, COMM_SCOPE_GROUP, lr_rc != LOADER_OK, msg, sizeof msg, NULL)) {
                snprintf(err, errlen, "%s: step %lld: %s", cfg->name, (long long)st->step,
                         lr_rc == LOADER_END ? "the loader ended early" : msg);
                rc = -1;
                break;
            }
            Pass p = {.n = b.n, .training = 1, .seed = cfg->seed, .step = (uint64_t)st->step, .sample_id = b.ids,
                      .accumulate_grads = m > 0};
            if (m == accum - 1) {
                p.grads_ready = gradsync_on_ready;
                p.user = gs;
            }
            if (micro_step(cfg, comm, net, teacher, &b, &p, norm, 1.0 / accum, &w, &t, msg, sizeof msg)) {
                snprintf(err, errlen, "%s: step %lld: %s", cfg->name, (long long)st->step, msg);
                rc = -1;
                break;
            }
            if (!local_fail && !isfinite(t.task + t.kd + t.triplet)) {
                local_fail = 1;
                describe_nonfinite(net, b.n, st->step, &t, msg, sizeof msg);
            }
        }
        if (rc)
            break;
        if (gradsync_finish(gs)) {
            snprintf(err, errlen, "%s: step %lld: gradient allreduce: %s", cfg->name, (long long)st->step,
                     comm->error);
            rc = -1;
            break;
        }
        double metrics[5] = {t.task, t.kd, t.triplet, t.correct, (double)local_fail};
        if (comm_sum_f64(comm, COMM_SCOPE_GROUP, metrics, 5)) {
            snprintf(err, errlen, "%s: step %lld: %s", cfg->name, (long long)st->step, comm->error);
            rc = -1;
            break;
        }
        if (metrics[4] > 0) { /* someone saw a NaN: everyone learns whose message */
            comm_agree(comm, COMM_SCOPE_GROUP, local_fail, msg, sizeof msg, NULL);
            snprintf(err, errlen, "%s: %s", cfg->name, msg);
            rc = -1;
            break;
        }
        sgd_step(&sgd, lr, net->params, net->grads, st->velocity, net->n_params);
        /* batch-norm statistics come from each rank's slice: average them so
         * that every rank holds the same state (and a checkpoint all of it) */
        if (state_sync && (gradsync_ready(state_sync, net->n_state) || gradsync_finish(state_sync))) {
            snprintf(err, errlen, "%s: step %lld: averaging batch-norm statistics: %s", cfg->name,
                     (long long)st->step, comm->error);
            rc = -1;
            break;
        }
        double loss = metrics[0] + metrics[1] + metrics[2];
        double wait = gradsync_wait_seconds(gs);
        wait_interval += wait;
        wait_epoch += wait;
        loss_interval += loss, task_i += metrics[0], kd_i += metrics[1], tri_i += metrics[2];
        st->epoch_loss_sum += loss;
        st->epoch_seen += norm;
        seen_i += norm;
        interval_steps++;
        st->step++;
        int epoch_end = st->step % steps_per_epoch == 0;
        int64_t epoch = (st->step - 1) / steps_per_epoch;
        if (leader && env->log && cfg->log_every >= 0 &&
            ((cfg->log_every > 0 && st->step % cfg->log_every == 0) || (cfg->log_every == 0 && epoch_end))) {
            double el = now() - t_interval;
            double eta = (now() - t_start) / (double)(st->step) * (double)(total_steps - st->step);
            char eta_s[32];
            fmt_duration(eta, eta_s, sizeof eta_s);
            fprintf(env->log,
                    "[%s] epoch %lld/%d step %lld/%lld loss %.4f (task %.4f kd %.4f triplet %.4f) lr %.3g "
                    "%.1f img/s allreduce wait %.1f%% ETA %s\n",
                    cfg->name, (long long)epoch + 1, cfg->epochs, (long long)st->step, (long long)total_steps,
                    loss_interval / interval_steps, task_i / interval_steps, kd_i / interval_steps,
                    tri_i / interval_steps, lr, seen_i / el, el > 0 ? 100.0 * wait_interval / el : 0.0, eta_s);
            fflush(env->log);
            t_interval = now();
            wait_interval = loss_interval = task_i = kd_i = tri_i = seen_i = 0;
            interval_steps = 0;
        }
        if (epoch_end) {
            double el = now() - t_epoch;
            st->lr[epoch] = lr;
            st->train_loss[epoch] = st->epoch_loss_sum / steps_per_epoch;
            st->images_per_s[epoch] = st->epoch_seen / el;
            st->wait_share[epoch] = el > 0 ? wait_epoch / el : 0;
            st->seconds += el;
            /* validation: the student on occluded faces, a teacher on clean ones */
            EvalResult ev;
            double metric = NAN;
            if (dataset_split_count(d, SPLIT_VAL) > 0) {
                if (evaluate(cfg, comm, net, d, base, SPLIT_VAL, cfg->method != METHOD_TEACHER, &ev, msg,
                             sizeof msg)) {
                    snprintf(err, errlen, "%s", msg);
                    rc = -1;
                    break;
                }
                metric = ev.metric;
                eval_result_free(&ev);
                if (comm_bcast_bytes(comm, COMM_SCOPE_GROUP, &metric, sizeof metric, 0)) {
                    snprintf(err, errlen, "%s: %s", cfg->name, comm->error);
                    rc = -1;
                    break;
                }
            } else {
                metric = cfg->regression ? -(double)st->step : (double)st->step; /* no validation: keep the last */
            }
            st->val_metric[epoch] = metric;
            if (better(cfg, metric, st->best_metric)) {
                st->best_metric = metric;
                st->best_epoch = epoch;
                memcpy(st->best_params, net->params, net->n_params * sizeof(float));
                if (net->n_state)
                    memcpy(st->best_state, net->state, net->n_state * sizeof(float));
            }
            if (leader && env->log && cfg->log_every >= 0 && dataset_split_count(d, SPLIT_VAL) > 0)
                fprintf(env->log, "[%s] epoch %lld: train loss %.4f, val %s %.4f%s\n", cfg->name, (long long)epoch + 1,
                        st->train_loss[epoch], cfg->regression ? "MAE" : "accuracy", metric,
                        st->best_epoch == epoch ? " (best)" : "");
            st->epoch = epoch + 1;
            st->epoch_loss_sum = st->epoch_seen = 0;
            wait_epoch = 0;
            t_epoch = now();
        }
        st->sampler = loader_tell(ld);
        if (env->after_step) {
            msg[0] = 0;
            int r = env->after_step(env->user, st, epoch_end, msg, sizeof msg);
            int64_t flags[2] = {r == 1, r < 0};
            if (comm_sum_i64(comm, COMM_SCOPE_GROUP, flags, 2)) {
                snprintf(err, errlen, "%s: step %lld: %s", cfg->name, (long long)st->step, comm->error);
                rc = -1;
                break;
            }
            if (flags[1] > 0) {
                comm_agree(comm, COMM_SCOPE_GROUP, r < 0, msg, sizeof msg, NULL);
                snprintf(err, errlen, "%s: step %lld: %s", cfg->name, (long long)st->step, msg);
                rc = -1;
                break;
            }
            if (flags[0] > 0) {
                rc = 1;
                break;
            }
        }
    }
    if (rc == 0) {
        memcpy(net->params, st->best_params, net->n_params * sizeof(float));
        if (net->n_state)
            memcpy(net->state, st->best_state, net->n_state * sizeof(float));
    }
    gradsync_free(gs);
    gradsync_free(state_sync);
    work_free(&w);
    loader_destroy(ld);
    return rc;
}
