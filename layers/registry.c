/* registry.c - layer type names to their operation tables, and destruction. */
#include <stdlib.h>
#include <string.h>

#include "layers.h"

extern const LayerOps conv_ops, fc_ops, pool_ops, lrn_ops, relu_ops, dropout_ops, batchnorm_ops, gap_ops, add_ops,
    flatten_ops;

static const LayerOps *const registry[] = {&conv_ops,      &fc_ops,  &pool_ops, &lrn_ops, &relu_ops, &dropout_ops,
                                           &batchnorm_ops, &gap_ops, &add_ops,  &flatten_ops};

#define N_TYPES (sizeof registry / sizeof registry[0])

/* The table for a type name ("conv", "pool", ...); NULL when unknown. */
const LayerOps *layer_ops_find(const char *type)
{
    if (!type)
        return NULL;
    for (size_t i = 0; i < N_TYPES; i++)
        if (strcmp(registry[i]->type, type) == 0)
            return registry[i];
    return NULL;
}

/* "conv, fc, pool, ..." in registry order, for error messages. */
const char *layer_type_names(void)
{
    return "conv, fc, pool, lrn, relu, dropout, batchnorm, gap, add, flatten";
}

void layer_destroy(Layer *l)
{
    if (!l)
        return;
    if (l->ops && l->ops->destroy)
        l->ops->destroy(l);
    free(l);
}
