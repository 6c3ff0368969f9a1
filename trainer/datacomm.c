/* datacomm.c - gives data/ the few collectives it needs, through comm/. */
#include "trainer/trainer.h"

static int dc_barrier(void *ctx) { return comm_barrier(ctx, COMM_SCOPE_WORLD); }

static int dc_sum_i64(void *ctx, int64_t *v, int n) { return comm_sum_i64(ctx, COMM_SCOPE_WORLD, v, n); }

static int dc_bcast(void *ctx, void *buf, size_t bytes) { return comm_bcast_bytes(ctx, COMM_SCOPE_WORLD, buf, bytes, 0); }

/* The lowest failing rank's message, prefixed with its rank, on every rank. */
static int agree_in(Comm *c, CommScope scope, int failed, char *msg, size_t len)
{
    int who = -1;
    int rc = comm_agree(c, scope, failed, msg, len, &who);
    if (rc == 1 && who >= 0) {
        char inner[COMM_MSG_MAX];
        snprintf(inner, sizeof inner, "%s", msg);
        snprintf(msg, len, "rank %d: %s", who, inner);
    }
    return rc;
}

static int dc_agree(void *ctx, int failed, char *msg, size_t len) { return agree_in(ctx, COMM_SCOPE_WORLD, failed, msg, len); }

static int dg_agree(void *ctx, int failed, char *msg, size_t len) { return agree_in(ctx, COMM_SCOPE_GROUP, failed, msg, len); }

DataComm trainer_datacomm(Comm *c)
{
    DataComm d = {.rank = c->rank, .world = c->size, .ctx = c, .barrier = dc_barrier, .sum_i64 = dc_sum_i64,
                  .bcast = dc_bcast, .agree = dc_agree};
    return d;
}

static int dg_barrier(void *ctx) { return comm_barrier(ctx, COMM_SCOPE_GROUP); }

static int dg_sum_i64(void *ctx, int64_t *v, int n) { return comm_sum_i64(ctx, COMM_SCOPE_GROUP, v, n); }

static int dg_bcast(void *ctx, void *buf, size_t bytes) { return comm_bcast_bytes(ctx, COMM_SCOPE_GROUP, buf, bytes, 0); }

DataComm trainer_datacomm_group(Comm *c)
{
    DataComm d = {.rank = c->group_rank, .world = c->group_size, .ctx = c, .barrier = dg_barrier,
                  .sum_i64 = dg_sum_i64, .bcast = dg_bcast, .agree = dg_agree};
    return d;
}
