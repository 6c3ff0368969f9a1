/* registry.c - layer type names to their operation tables and constructors,
 * descriptions, and destruction.
 *
 * One row per type: its name (the ops table's `type`), the table, and a
 * constructor from LayerArgs that calls the type's own constructor with the
 * fields it uses. layer_create looks the name up once, at build time.
 */
#include "internal.h"

extern const LayerOps conv_ops, fc_ops, pool_ops, lrn_ops, relu_ops, dropout_ops, batchnorm_ops, gap_ops, add_ops,
    flatten_ops;

typedef Layer *(*LayerBuild)(const char *name, Shape in, const LayerArgs *a, char *err, size_t errlen);

static int stride_of(const LayerArgs *a) { return a->stride ? a->stride : 1; }

static Layer *build_conv(const char *name, Shape in, const LayerArgs *a, char *err, size_t errlen)
{
    const int *p = a->pad;
    if (p[1] != p[0] || p[2] != p[0] || p[3] != p[0])
        return layer_refuse(&conv_ops, name, err, errlen, "padding (%d,%d,%d,%d) must be the same on every side", p[0],
                            p[1], p[2], p[3]);
    return conv_create(name, in, a->out, a->k, stride_of(a), p[0], a->bias, a->relu, err, errlen);
}

static Layer *build_fc(const char *name, Shape in, const LayerArgs *a, char *err, size_t errlen)
{
    return fc_create(name, in, a->out, a->relu, err, errlen);
}

static Layer *build_pool(const char *name, Shape in, const LayerArgs *a, char *err, size_t errlen)
{
    return pool_create(name, in, a->pool, a->k, stride_of(a), a->pad[0], a->pad[1], a->pad[2], a->pad[3],
                       a->ceil_mode, err, errlen);
}

static Layer *build_lrn(const char *name, Shape in, const LayerArgs *a, char *err, size_t errlen)
{
    return lrn_create(name, in, a->size, a->alpha, a->beta, a->lrn_k, err, errlen);
}

static Layer *build_relu(const char *name, Shape in, const LayerArgs *a, char *err, size_t errlen)
{
    return relu_create(name, in, err, errlen);
}

static Layer *build_dropout(const char *name, Shape in, const LayerArgs *a, char *err, size_t errlen)
{
    return dropout_create(name, in, a->rate, err, errlen);
}

static Layer *build_batchnorm(const char *name, Shape in, const LayerArgs *a, char *err, size_t errlen)
{
    return batchnorm_create(name, in, a->eps, a->momentum, a->relu, err, errlen);
}

static Layer *build_gap(const char *name, Shape in, const LayerArgs *a, char *err, size_t errlen)
{
    return gap_create(name, in, err, errlen);
}

static Layer *build_add(const char *name, Shape in, const LayerArgs *a, char *err, size_t errlen)
{
    return add_create(name, in, a->relu, err, errlen);
}

static Layer *build_flatten(const char *name, Shape in, const LayerArgs *a, char *err, size_t errlen)
{
    return flatten_create(name, in, err, errlen);
}

static const struct {
    const LayerOps *ops;
    LayerBuild build;
} registry[] = {{&conv_ops, build_conv}, {&fc_ops, build_fc},           {&pool_ops, build_pool},
                {&lrn_ops, build_lrn},   {&relu_ops, build_relu},       {&dropout_ops, build_dropout},
                {&batchnorm_ops, build_batchnorm}, {&gap_ops, build_gap}, {&add_ops, build_add},
                {&flatten_ops, build_flatten}};

#define N_TYPES (sizeof registry / sizeof registry[0])

static int type_index(const char *type)
{
    for (size_t i = 0; type && i < N_TYPES; i++)
        if (strcmp(registry[i].ops->type, type) == 0)
            return (int)i;
    return -1;
}

const LayerOps *layer_ops_find(const char *type)
{
    int i = type_index(type);
    return i < 0 ? NULL : registry[i].ops;
}

/* test_layers checks that every row's name is in it */
const char *layer_type_names(void) { return "conv, fc, pool, lrn, relu, dropout, batchnorm, gap, add, flatten"; }

Layer *layer_create(const char *type, const char *name, Shape in, const LayerArgs *a, char *err, size_t errlen)
{
    int i = type_index(type);
    if (i < 0) {
        if (err && errlen)
            snprintf(err, errlen, "layer %s: unknown type \"%s\" (known: %s)", name ? name : "(null)",
                     type ? type : "(null)", layer_type_names());
        return NULL;
    }
    static const LayerArgs none;
    return registry[i].build(name, in, a ? a : &none, err, errlen);
}

void layer_describe(const Layer *l, char *buf, size_t len)
{
    const Shape i = l->in_shape[0], o = l->out;
    int n = snprintf(buf, len, "%s %s (%d,%d,%d) -> (%d,%d,%d)", l->name, l->ops->type, i.c, i.h, i.w, o.c, o.h,
                     o.w);
    if (l->ops->describe && n >= 0 && (size_t)n + 2 < len) {
        char settings[160];
        settings[0] = '\0';
        l->ops->describe(l, settings, sizeof settings);
        if (settings[0])
            snprintf(buf + n, len - (size_t)n, ": %s", settings);
    }
}

void layer_destroy(Layer *l)
{
    if (!l)
        return;
    if (l->ops && l->ops->destroy)
        l->ops->destroy(l);
    free(l);
}
