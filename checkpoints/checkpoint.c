/* checkpoint.c - training checkpoints and weight files.
 *
 * Layout (every dataset float32, chunked, Fletcher-32):
 *     /params/<layer>/<tensor>            trainable tensors, PyTorch shapes
 *     /state/<layer>/<tensor>             batch-norm running statistics
 *     /optimizer/<layer>/<tensor>         SGD velocity, shaped as /params
 *     /best/params/..., /best/state/...   the best epoch's weights
 *     /history                            compound table, one row per epoch
 *     attributes on /                     format, config_sha256, world, seed,
 *                                         step, epoch, sampler_epoch,
 *                                         sampler_batch, best_metric,
 *                                         best_epoch, seconds, epoch_loss_sum,
 *                                         epoch_seen, epochs, and the
 *                                         network's spec (arch, input, ...)
 * Weight files (weights_save, the PyTorch converter) hold /params and /state
 * only, with format WEIGHTS_FORMAT.
 *
 * Loading is all or nothing: tensors are read into scratch copies and only
 * copied into the network and the caller's buffers when everything checked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints.h"
#include "h5io.h"

#define PATH_MAX_LEN 4096

/* ------------------------------------------------------------- tensors */

typedef enum { KIND_PARAMS, KIND_STATE } Kind;

static int layer_count(const Layer *l, Kind k) { return k == KIND_PARAMS ? l->n_params : l->n_state; }

static const Tensor *layer_tensor(const Layer *l, Kind k, int i)
{
    return k == KIND_PARAMS ? &l->param[i] : &l->state[i];
}

static void tensor_dims(const Tensor *t, hsize_t *dims)
{
    for (int i = 0; i < t->ndims; i++)
        dims[i] = (hsize_t)t->dims[i];
}

/* "<group>/<layer>/<tensor>" (group like "params" or "best/state"). */
static void tensor_name(char *buf, size_t n, const char *group, const Layer *l, const Tensor *t)
{
    snprintf(buf, n, "%s/%s/%s", group, l->name, t->name);
}

/* Calls visit for every tensor of one kind, with its dataset name under
 * group and its dims; stops at the first non-zero return. */
typedef int (*TensorVisit)(void *ctx, const Layer *l, const Tensor *t, const char *name, const hsize_t *dims);

static int each_tensor(const Net *net, Kind k, const char *group, TensorVisit visit, void *ctx)
{
    char name[256];
    hsize_t dims[4];
    for (int li = 0; li < net->n_layers; li++) {
        const Layer *l = net->layers[li];
        for (int i = 0; i < layer_count(l, k); i++) {
            const Tensor *t = layer_tensor(l, k, i);
            tensor_name(name, sizeof name, group, l, t);
            tensor_dims(t, dims);
            int rc = visit(ctx, l, t, name, dims);
            if (rc)
                return rc;
        }
    }
    return 0;
}

typedef struct {
    hid_t f;
    float *base;             /* laid out as the network's params or state (const when writing) */
    int partial, *loaded;
    const char *file;
    char *err;
    size_t errlen;
} TensorIO;

static int write_one(void *ctx, const Layer *l, const Tensor *t, const char *name, const hsize_t *dims)
{
    TensorIO *io = ctx;
    (void)l;
    return h5io_write(io->f, name, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, t->ndims, dims, io->base + t->offset, io->file,
                      io->err, io->errlen);
}

static int read_one(void *ctx, const Layer *l, const Tensor *t, const char *name, const hsize_t *dims)
{
    TensorIO *io = ctx;
    char what[260];
    snprintf(what, sizeof what, "/%s", name);
    if (!h5io_exists(io->f, name)) {
        if (io->partial)
            return 0;
        snprintf(io->err, io->errlen, "file %s: dataset %s is missing (the network's layer %s has a tensor %s)",
                 io->file, what, l->name, t->name);
        return -1;
    }
    if (h5io_read(io->f, name, H5T_NATIVE_FLOAT, t->ndims, dims, io->base + t->offset, io->file, what, io->err,
                  io->errlen))
        return -1;
    if (io->loaded)
        (*io->loaded)++;
    return 0;
}

/* Writes every tensor of one kind from base under group. */
static int write_tensors(hid_t f, const char *group, const Net *net, Kind k, const float *base, const char *file,
                         char *err, size_t errlen)
{
    TensorIO io = {f, (float *)base, 0, NULL, file, err, errlen};
    return each_tensor(net, k, group, write_one, &io);
}

/* Reads every tensor of one kind under group into base. Missing tensors are
 * skipped when partial, else refused; *loaded counts the tensors read. */
static int read_tensors(hid_t f, const char *group, const Net *net, Kind k, float *base, int partial, int *loaded,
                        const char *file, char *err, size_t errlen)
{
    TensorIO io = {f, base, partial, loaded, file, err, errlen};
    return each_tensor(net, k, group, read_one, &io);
}

/* Finds a tensor in the file that the network lacks (a checkpoint of
 * another architecture or size). */
typedef struct {
    const Net *net;
    Kind kind;
    char extra[256];
} ExtraScan;

static int layer_has_tensor(const Layer *l, Kind k, const char *name)
{
    for (int i = 0; i < layer_count(l, k); i++)
        if (strcmp(layer_tensor(l, k, i)->name, name) == 0)
            return 1;
    return 0;
}

static herr_t scan_link(hid_t g, const char *name, const H5L_info_t *info, void *user)
{
    ExtraScan *s = user;
    char layer[256];
    const char *slash = strchr(name, '/');
    if (!slash) { /* a layer group */
        if (net_find_layer(s->net, name) >= 0)
            return 0;
        snprintf(s->extra, sizeof s->extra, "%s", name);
        return 1;
    }
    snprintf(layer, sizeof layer, "%.*s", (int)(slash - name), name);
    int li = net_find_layer(s->net, layer);
    if (li >= 0 && !strchr(slash + 1, '/') && layer_has_tensor(s->net->layers[li], s->kind, slash + 1))
        return 0;
    snprintf(s->extra, sizeof s->extra, "%s", name);
    return 1;
}

static int check_no_extra(hid_t f, const char *group, const Net *net, Kind k, const char *file, char *err,
                          size_t errlen)
{
    if (!h5io_exists(f, group))
        return 0;
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    if (g < 0) {
        char why[256];
        int sum = h5io_last_error(why, sizeof why);
        snprintf(err, errlen, "file %s: %s /%s%s", file, sum ? "checksum mismatch in group" : "cannot open group",
                 group, sum ? " (the file is corrupted)" : "");
        return -1;
    }
    ExtraScan s = {net, k, {0}};
    herr_t rc = H5Lvisit(g, H5_INDEX_NAME, H5_ITER_INC, scan_link, &s);
    H5Gclose(g);
    if (rc > 0) {
        snprintf(err, errlen, "file %s: /%s/%s is not part of this network (a checkpoint of another architecture or size)",
                 file, group, s.extra);
        return -1;
    }
    if (rc < 0) {
        char why[256];
        int sum = h5io_last_error(why, sizeof why);
        snprintf(err, errlen, "file %s: %s /%s%s%s", file, sum ? "checksum mismatch in group" : "cannot list group",
                 group, sum ? " (the file is corrupted)" : ": ", sum ? "" : why);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------- attributes */

static int write_spec(hid_t f, const NetSpec *s)
{
    int rc = h5io_attr_str(f, "arch", arch_name(s->arch));
    rc |= h5io_attr_i64(f, "input", s->input);
    rc |= h5io_attr_i64(f, "channels", s->channels);
    rc |= h5io_attr_f64(f, "width", s->width);
    rc |= h5io_attr_i64(f, "fc", s->fc);
    rc |= h5io_attr_i64(f, "fc_layers", s->fc_layers);
    rc |= h5io_attr_i64(f, "batchnorm", s->batchnorm);
    rc |= h5io_attr_i64(f, "classes", s->classes);
    return rc;
}

static int write_meta(hid_t f, const CheckpointMeta *m)
{
    int rc = h5io_attr_str(f, "format", CHECKPOINT_FORMAT);
    rc |= h5io_write_stamp(f, &m->stamp);
    rc |= h5io_attr_i64(f, "world", m->world);
    rc |= h5io_attr_u64(f, "seed", m->seed);
    rc |= h5io_attr_i64(f, "step", m->run.step);
    rc |= h5io_attr_i64(f, "epoch", m->run.epoch);
    rc |= h5io_attr_i64(f, "sampler_epoch", m->run.sampler_epoch);
    rc |= h5io_attr_i64(f, "sampler_batch", m->run.sampler_batch);
    rc |= h5io_attr_f64(f, "best_metric", m->run.best_metric);
    rc |= h5io_attr_i64(f, "best_epoch", m->run.best_epoch);
    rc |= h5io_attr_f64(f, "seconds", m->run.seconds);
    rc |= h5io_attr_f64(f, "epoch_loss_sum", m->run.epoch_loss_sum);
    rc |= h5io_attr_f64(f, "epoch_seen", m->run.epoch_seen);
    rc |= h5io_attr_i64(f, "epochs", m->history.n);
    return rc;
}

static int read_meta(hid_t f, CheckpointMeta *m, const char *file, char *err, size_t errlen)
{
    int64_t world, epochs;
    if (h5io_read_stamp(f, &m->stamp, file, "/", err, errlen) ||
        h5io_get_i64(f, "world", &world, file, "/", err, errlen) ||
        h5io_get_u64(f, "seed", &m->seed, file, "/", err, errlen) ||
        h5io_get_i64(f, "step", &m->run.step, file, "/", err, errlen) ||
        h5io_get_i64(f, "epoch", &m->run.epoch, file, "/", err, errlen) ||
        h5io_get_i64(f, "sampler_epoch", &m->run.sampler_epoch, file, "/", err, errlen) ||
        h5io_get_i64(f, "sampler_batch", &m->run.sampler_batch, file, "/", err, errlen) ||
        h5io_get_f64(f, "best_metric", &m->run.best_metric, file, "/", err, errlen) ||
        h5io_get_i64(f, "best_epoch", &m->run.best_epoch, file, "/", err, errlen) ||
        h5io_get_f64(f, "seconds", &m->run.seconds, file, "/", err, errlen) ||
        h5io_get_f64(f, "epoch_loss_sum", &m->run.epoch_loss_sum, file, "/", err, errlen) ||
        h5io_get_f64(f, "epoch_seen", &m->run.epoch_seen, file, "/", err, errlen) ||
        h5io_get_i64(f, "epochs", &epochs, file, "/", err, errlen))
        return -1;
    m->world = (int)world;
    if (h5io_read_history(f, "history", &m->history, file, "/history", err, errlen))
        return -1;
    int rows = m->history.n;
    if (rows != epochs) {
        snprintf(err, errlen, "file %s: /history has %d rows but the attribute epochs says %lld", file, rows,
                 (long long)epochs);
        return -1;
    }
    return 0;
}

/* The format attribute must be one of the accepted ones (accept2 may be NULL). */
static int check_format(hid_t f, const char *accept1, const char *accept2, const char *file, char *err,
                        size_t errlen)
{
    char fmt[128];
    if (h5io_get_str(f, "format", fmt, sizeof fmt, file, "/", err, errlen)) {
        char inner[768];
        snprintf(inner, sizeof inner, "%s", err);
        snprintf(err, errlen, "%s (not an occkd file?)", inner);
        return -1;
    }
    if (strcmp(fmt, accept1) == 0 || (accept2 && strcmp(fmt, accept2) == 0))
        return 0;
    snprintf(err, errlen, "file %s: format \"%s\", expected \"%s\"%s%s%s", file, fmt, accept1, accept2 ? " or \"" : "",
             accept2 ? accept2 : "", accept2 ? "\"" : "");
    return -1;
}

/* ------------------------------------------------------------- checkpoints */

/* What a checkpoint or a weights file holds, for the fill callbacks. */
typedef struct {
    const Net *net;
    const float *velocity, *best_params, *best_state; /* NULL: not written */
    const CheckpointMeta *meta;                       /* NULL: a weights file */
    const CellStamp *stamp;                           /* weights files: optional */
} Contents;

static int fill_file(hid_t f, const char *tmp, const void *ctx, char *err, size_t errlen)
{
    const Contents *c = ctx;
    const Net *net = c->net;
    int attrs = c->meta ? write_meta(f, c->meta)
                        : h5io_attr_str(f, "format", WEIGHTS_FORMAT) || (c->stamp && h5io_write_stamp(f, c->stamp));
    if (attrs || write_spec(f, &net->spec)) {
        snprintf(err, errlen, "file %s: cannot write the attributes of /", tmp);
        return -1;
    }
    return write_tensors(f, "params", net, KIND_PARAMS, net->params, tmp, err, errlen) ||
                   write_tensors(f, "state", net, KIND_STATE, net->state, tmp, err, errlen) ||
                   (c->velocity && write_tensors(f, "optimizer", net, KIND_PARAMS, c->velocity, tmp, err, errlen)) ||
                   (c->best_params &&
                    write_tensors(f, "best/params", net, KIND_PARAMS, c->best_params, tmp, err, errlen)) ||
                   (c->best_state && write_tensors(f, "best/state", net, KIND_STATE, c->best_state, tmp, err, errlen)) ||
                   (c->meta && h5io_write_history(f, "history", &c->meta->history, tmp, err, errlen))
               ? -1
               : 0;
}

int checkpoint_save(const char *path, const Net *net, const float *velocity, const float *best_params,
                    const float *best_state, const CheckpointMeta *meta, char *err, size_t errlen)
{
    Contents c = {net, velocity, best_params, best_state, meta, NULL};
    return h5io_save(path, fill_file, &c, err, errlen);
}

/* Scratch copies for an all-or-nothing load. */
typedef struct {
    float *params, *state, *velocity, *best_params, *best_state;
} Scratch;

static float *copy_of(const float *src, size_t n)
{
    float *d = malloc((n ? n : 1) * sizeof(float));
    if (src && n)
        memcpy(d, src, n * sizeof(float));
    return d;
}

static void scratch_free(Scratch *s)
{
    free(s->params);
    free(s->state);
    free(s->velocity);
    free(s->best_params);
    free(s->best_state);
}

static int load_buffers(hid_t f, const Net *net, Scratch *s, int want_velocity, int want_best_params,
                        int want_best_state, const char *path, char *err, size_t errlen)
{
    if (read_tensors(f, "params", net, KIND_PARAMS, s->params, 0, NULL, path, err, errlen) ||
        read_tensors(f, "state", net, KIND_STATE, s->state, 0, NULL, path, err, errlen) ||
        check_no_extra(f, "params", net, KIND_PARAMS, path, err, errlen) ||
        check_no_extra(f, "state", net, KIND_STATE, path, err, errlen))
        return -1;
    if (want_velocity && read_tensors(f, "optimizer", net, KIND_PARAMS, s->velocity, 0, NULL, path, err, errlen))
        return -1;
    if (want_best_params &&
        read_tensors(f, "best/params", net, KIND_PARAMS, s->best_params, 0, NULL, path, err, errlen))
        return -1;
    if (want_best_state && read_tensors(f, "best/state", net, KIND_STATE, s->best_state, 0, NULL, path, err, errlen))
        return -1;
    return 0;
}

int checkpoint_load(const char *path, Net *net, float *velocity, float *best_params, float *best_state,
                    CheckpointMeta *meta, const CellStamp *expect, char *err, size_t errlen)
{
    H5Quiet q;
    h5io_quiet(&q);
    CheckpointMeta m = {0};
    Scratch s = {copy_of(NULL, net->n_params), copy_of(NULL, net->n_state), copy_of(NULL, net->n_params),
                 copy_of(NULL, net->n_params), copy_of(NULL, net->n_state)};
    int rc = -1;
    hid_t f = h5io_open(path, err, errlen);
    if (f < 0)
        goto out;
    if (check_format(f, CHECKPOINT_FORMAT, NULL, path, err, errlen) || read_meta(f, &m, path, err, errlen))
        goto close;
    if (expect && cell_stamp_compare(path, &m.stamp, expect, err, errlen))
        goto close;
    if (load_buffers(f, net, &s, velocity != NULL, best_params != NULL, best_state != NULL, path, err, errlen))
        goto close;
    memcpy(net->params, s.params, net->n_params * sizeof(float));
    memcpy(net->state, s.state, net->n_state * sizeof(float));
    if (velocity)
        memcpy(velocity, s.velocity, net->n_params * sizeof(float));
    if (best_params)
        memcpy(best_params, s.best_params, net->n_params * sizeof(float));
    if (best_state)
        memcpy(best_state, s.best_state, net->n_state * sizeof(float));
    if (meta) {
        *meta = m;
        memset(&m, 0, sizeof m);
    }
    rc = 0;
close:
    H5Fclose(f);
out:
    checkpoint_meta_free(&m);
    scratch_free(&s);
    H5Eclear2(H5E_DEFAULT);
    h5io_loud(&q);
    return rc;
}

void checkpoint_meta_free(CheckpointMeta *m)
{
    if (!m)
        return;
    history_free(&m->history);
}

/* ------------------------------------------------------------- weights */

int weights_load(const char *path, Net *net, int partial, int *loaded, char *err, size_t errlen)
{
    H5Quiet q;
    h5io_quiet(&q);
    Scratch s = {copy_of(net->params, net->n_params), copy_of(net->state, net->n_state), NULL, NULL, NULL};
    int count = 0, rc = -1;
    if (loaded)
        *loaded = 0;
    hid_t f = h5io_open(path, err, errlen);
    if (f < 0)
        goto out;
    if (check_format(f, WEIGHTS_FORMAT, CHECKPOINT_FORMAT, path, err, errlen) ||
        read_tensors(f, "params", net, KIND_PARAMS, s.params, partial, &count, path, err, errlen) ||
        read_tensors(f, "state", net, KIND_STATE, s.state, partial, &count, path, err, errlen))
        goto close;
    if (count == 0 && net->n_tensors > 0) {
        snprintf(err, errlen, "file %s: none of the network's tensors is in /params (layer names differ?)", path);
        goto close;
    }
    memcpy(net->params, s.params, net->n_params * sizeof(float));
    memcpy(net->state, s.state, net->n_state * sizeof(float));
    if (loaded)
        *loaded = count;
    rc = 0;
close:
    H5Fclose(f);
out:
    scratch_free(&s);
    H5Eclear2(H5E_DEFAULT);
    h5io_loud(&q);
    return rc;
}

int weights_save(const char *path, const Net *net, const CellStamp *stamp, char *err, size_t errlen)
{
    Contents c = {net, NULL, NULL, NULL, NULL, stamp};
    return h5io_save(path, fill_file, &c, err, errlen);
}
