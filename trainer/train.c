/* train.c - what a cell's training starts from and ends with: the method
 * names, the default configuration, the training state, and the evaluation
 * (sharded over the group, gathered in sample order to the leader) with its
 * paired significance tests. The loop itself is in loop.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trainer/job.h"
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

/* The job file's defaults (the key tables of job_keys.c); what no key sets
 * stays as a test of the loop alone wants it. */
TrainConfig train_config_default(void)
{
    TrainSettings s = job_train_defaults();
    DistillSettings d = job_distill_defaults();
    TrainConfig c;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "cell");
    c.method = METHOD_TEACHER;
    c.target_mean = 0;
    c.target_std = 1;
    c.classes = 8;
    c.epochs = s.epochs;
    c.global_batch = s.batch;
    c.accum = s.accum;
    c.eval_batch = s.eval_batch;
    c.sgd = s.sgd;
    c.sgd.schedule = SCHED_CONSTANT; /* a job file defaults to cosine; the loop's own tests hold the rate */
    c.T = d.T;
    c.lambda = d.lambda;
    c.beta = d.beta;
    c.margin = d.margin;
    c.mining = d.mining;
    c.positive = d.positive;
    c.age_bin = d.age_bin;
    c.seed = 1;
    c.log_every = 0;
    c.sync.scale = 1.0;
    c.sync_bn = 1;
    return c;
}

int train_state_init(TrainState *s, const Net *net)
{
    memset(s, 0, sizeof *s);
    s->velocity = calloc(net->n_params, sizeof(float));
    s->best_params = malloc(net->n_params * sizeof(float));
    s->best_state = malloc((net->n_state ? net->n_state : 1) * sizeof(float));
    s->run.best_metric = NAN;
    s->run.best_epoch = -1;
    if (!s->velocity || !s->best_params || !s->best_state) {
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
    history_free(&s->history);
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

/* ------------------------------------------------------------ evaluation */

/* The leader's scores of the gathered predictions: accuracy, the confusion
 * matrix and per-class accuracy (classification) or the mean absolute error. */
static void eval_score(EvalResult *out)
{
    int k = out->classes;
    int64_t n = out->n;
    double acc = 0;
    if (k) {
        out->confusion = calloc((size_t)k * k, sizeof(int64_t));
        out->per_class = calloc((size_t)k, sizeof(double));
        for (int64_t i = 0; i < n; i++) {
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
        for (int64_t i = 0; i < n; i++)
            acc += fabs((double)out->pred[i] - out->label[i]);
    }
    out->metric = acc / (double)n;
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
            eval_score(out);
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

