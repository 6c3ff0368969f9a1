/* conv_dnnl.c - the convolution's three passes by oneDNN (libdnnl).
 *
 * x (N,C,H,W), w (OC,C,K,K), bias (OC) -> y (N,OC,OH,OW), and backward
 * d_y -> d_x, d_w, d_bias; the weights stay OIHW, x and y (with their
 * gradients) are NCHW or channel-blocked as the network chose (`layout`:
 * bit 0 x, bit 1 y; layers.h). oneDNN chooses the layouts its kernels run
 * fastest in (blocked channels, from its view of the CPU's instruction
 * sets); each pass reorders the arguments that are not in them already and
 * its results back. The forward keeps its reordered input and weights for
 * the backward of the same pass, which needs them again.
 *
 * Primitives depend on the batch size and on the thread count (oneDNN's
 * kernels divide the work when they are created), so a layer keeps the plans
 * of the last few (n, threads, layout) it ran. The fused ReLU is a post-op
 * of the forward; in backward d_y is masked by y > 0 first. Accumulating
 * into d_x or d_w is a sum post-op of the reorder that writes it, or, where
 * the layer's layout is the primitive's own, a loop over a separate result.
 *
 * Built only with OCCKD_DNNL (CMakeLists.txt); without it conv_dnnl_create
 * returns NULL and the layer runs by im2col + sgemm (conv.c).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct ConvDnnl ConvDnnl;

#ifndef OCCKD_DNNL

ConvDnnl *conv_dnnl_create(const ConvGeom *g, int oc, int has_bias, int relu) { return NULL; }
void conv_dnnl_free(ConvDnnl *d) {}
int conv_dnnl_forward(ConvDnnl *d, int n, int layout, const float *x, const float *w, const float *bias, float *y)
{
    return -1;
}
int conv_dnnl_backward(ConvDnnl *d, int n, int layout, const float *x, const float *y, const float *d_y,
                       const float *w, float *d_w, float *d_b, int acc_p, float *d_x, int acc_x)
{
    return -1;
}

#else

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

/* One argument of a primitive in the primitive's layout. `mem` is the
 * primitive's side; when the layout is the layer's own, `mem` is bound to
 * the layer's buffer and there is no reorder. */
typedef struct {
    dnnl_memory_desc_t md;
    dnnl_memory_t mem;  /* in the primitive's layout */
    dnnl_memory_t user; /* the layer's buffer (handle set per call) */
    dnnl_primitive_t re;     /* user -> mem (inputs) or mem -> user (outputs) */
    dnnl_primitive_t re_acc; /* outputs: mem added into user */
    dnnl_memory_t tmp;       /* outputs in the layer's own layout: the result to add (made when first needed) */
    int same;                /* the primitive's layout is the layer's */
} Port;

typedef struct {
    int n, threads, layout, ok;
    dnnl_primitive_t fwd, bwd_d, bwd_w;
    Port src, wei, dst;      /* forward */
    Port dd, wd, ds;         /* backward data: diff_dst, weights, diff_src */
    Port sw, ddw, dw;        /* backward weights: src, diff_dst, diff_weights */
    dnnl_memory_t bias, dbias;
    float *dbias_buf;        /* (OC): the bias gradient before it is added */
    float *mask;             /* (N,OC,OH,OW): d_y masked by the fused ReLU */
    const float *fwd_x;      /* input of the last forward (its reorder in src) */
    const float *fwd_w;
} Plan;

#define CONV_DNNL_PLANS 3

struct ConvDnnl {
    ConvGeom g;
    int oc, has_bias, relu;
    dnnl_engine_t eng;
    dnnl_stream_t st;
    Plan plans[CONV_DNNL_PLANS];
    int next; /* the plan replaced next */
};

#define TRY(call)                                                                                                     \
    do {                                                                                                              \
        if ((call) != dnnl_success)                                                                                   \
            return -1;                                                                                                \
    } while (0)

static void port_free(Port *p)
{
    if (p->re)
        dnnl_primitive_destroy(p->re);
    if (p->re_acc)
        dnnl_primitive_destroy(p->re_acc);
    if (p->tmp)
        dnnl_memory_destroy(p->tmp);
    if (p->mem && p->mem != p->user)
        dnnl_memory_destroy(p->mem);
    if (p->user)
        dnnl_memory_destroy(p->user);
    memset(p, 0, sizeof *p);
}

static void plan_free(Plan *pl)
{
    if (pl->fwd)
        dnnl_primitive_destroy(pl->fwd);
    if (pl->bwd_d)
        dnnl_primitive_destroy(pl->bwd_d);
    if (pl->bwd_w)
        dnnl_primitive_destroy(pl->bwd_w);
    Port *ports[] = {&pl->src, &pl->wei, &pl->dst, &pl->dd, &pl->wd, &pl->ds, &pl->sw, &pl->ddw, &pl->dw};
    for (size_t i = 0; i < sizeof ports / sizeof *ports; i++)
        port_free(ports[i]);
    if (pl->bias)
        dnnl_memory_destroy(pl->bias);
    if (pl->dbias)
        dnnl_memory_destroy(pl->dbias);
    free(pl->dbias_buf);
    free(pl->mask);
    memset(pl, 0, sizeof *pl);
}

static int reorder_create(dnnl_engine_t eng, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                          int accumulate, dnnl_primitive_t *out)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    if (accumulate) {
        TRY(dnnl_primitive_attr_create(&attr));
        TRY(dnnl_post_ops_create(&po));
        TRY(dnnl_post_ops_append_sum(po, 1.0f));
        TRY(dnnl_primitive_attr_set_post_ops(attr, po));
    }
    dnnl_primitive_desc_t pd;
    dnnl_status_t s = dnnl_reorder_primitive_desc_create(&pd, from, eng, to, eng, attr);
    if (po)
        dnnl_post_ops_destroy(po);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    TRY(s);
    s = dnnl_primitive_create(out, pd);
    dnnl_primitive_desc_destroy(pd);
    return s == dnnl_success ? 0 : -1;
}

/* The port of argument `what` of pd against the layer's layout `user`;
 * output 1 for a result (reorders back, plain and accumulating). `share`,
 * if not NULL, is a port of an earlier primitive whose memory holds the same
 * tensor: used when its layout is the same. */
static int port_init(ConvDnnl *d, Port *p, const_dnnl_primitive_desc_t pd, dnnl_query_t what,
                     const dnnl_memory_desc_t *user, int output, const Port *share)
{
    p->md = *dnnl_primitive_desc_query_md(pd, what, 0);
    TRY(dnnl_memory_create(&p->user, user, d->eng, DNNL_MEMORY_NONE));
    p->same = dnnl_memory_desc_equal(&p->md, user);
    if (p->same) {
        p->mem = p->user;
        return 0;
    }
    if (share && !share->same && dnnl_memory_desc_equal(&p->md, &share->md)) {
        /* the same buffer, owned by `share`: borrowed through the handle */
        void *h;
        TRY(dnnl_memory_get_data_handle(share->mem, &h));
        TRY(dnnl_memory_create(&p->mem, &p->md, d->eng, h));
        return 0;
    }
    TRY(dnnl_memory_create(&p->mem, &p->md, d->eng, DNNL_MEMORY_ALLOCATE));
    if (!output)
        return reorder_create(d->eng, user, &p->md, 0, &p->re);
    if (reorder_create(d->eng, &p->md, user, 0, &p->re))
        return -1;
    return reorder_create(d->eng, &p->md, user, 1, &p->re_acc);
}

static void md_plain(dnnl_memory_desc_t *md, int nd, const dnnl_dims_t dims, dnnl_format_tag_t tag)
{
    dnnl_memory_desc_init_by_tag(md, nd, dims, dnnl_f32, tag);
}

static int plan_build(ConvDnnl *d, Plan *pl, int n, int layout)
{
    const ConvGeom *g = &d->g;
    dnnl_dims_t xs = {n, g->c, g->h, g->w}, ws = {d->oc, g->c, g->k, g->k}, ys = {n, d->oc, g->oh, g->ow},
                bs = {d->oc};
    dnnl_dims_t strides = {g->stride, g->stride}, pad_l = {g->pad, g->pad};
    /* the bottom/right padding that makes oneDNN's output size the layer's */
    dnnl_dims_t pad_r = {(g->oh - 1) * g->stride + g->k - g->h - g->pad, (g->ow - 1) * g->stride + g->k - g->w - g->pad};
    dnnl_memory_desc_t x_any, w_any, y_any, b_md, x_u, w_u, y_u;
    md_plain(&x_any, 4, xs, dnnl_format_tag_any);
    md_plain(&w_any, 4, ws, dnnl_format_tag_any);
    md_plain(&y_any, 4, ys, dnnl_format_tag_any);
    md_plain(&b_md, 1, bs, dnnl_x);
    md_plain(&x_u, 4, xs, (layout & 1) ? dnnl_nChw16c : dnnl_nchw);
    md_plain(&w_u, 4, ws, dnnl_oihw);
    md_plain(&y_u, 4, ys, (layout & 2) ? dnnl_nChw16c : dnnl_nchw);
    const dnnl_memory_desc_t *bp = d->has_bias ? &b_md : NULL;

    /* forward, with the ReLU as a post-op */
    dnnl_convolution_desc_t cd;
    TRY(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &x_any, &w_any, bp,
                                           &y_any, strides, pad_l, pad_r));
    dnnl_primitive_attr_t attr;
    TRY(dnnl_primitive_attr_create(&attr));
    if (d->relu) {
        dnnl_post_ops_t po;
        TRY(dnnl_post_ops_create(&po));
        TRY(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
        TRY(dnnl_primitive_attr_set_post_ops(attr, po));
        dnnl_post_ops_destroy(po);
    }
    dnnl_primitive_desc_t fpd;
    dnnl_status_t s = dnnl_primitive_desc_create(&fpd, &cd, attr, d->eng, NULL);
    dnnl_primitive_attr_destroy(attr);
    TRY(s);
    int rc = dnnl_primitive_create(&pl->fwd, fpd) != dnnl_success || port_init(d, &pl->src, fpd, dnnl_query_src_md, &x_u, 0, NULL) ||
             port_init(d, &pl->wei, fpd, dnnl_query_weights_md, &w_u, 0, NULL) ||
             port_init(d, &pl->dst, fpd, dnnl_query_dst_md, &y_u, 1, NULL);

    /* backward data */
    dnnl_primitive_desc_t dpd = NULL, wpd = NULL;
    if (!rc) {
        dnnl_convolution_desc_t bd;
        rc = dnnl_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &x_any, &w_any, &y_any, strides,
                                                      pad_l, pad_r) != dnnl_success ||
             dnnl_primitive_desc_create(&dpd, &bd, NULL, d->eng, fpd) != dnnl_success ||
             dnnl_primitive_create(&pl->bwd_d, dpd) != dnnl_success ||
             port_init(d, &pl->dd, dpd, dnnl_query_diff_dst_md, &y_u, 0, NULL) ||
             port_init(d, &pl->wd, dpd, dnnl_query_weights_md, &w_u, 0, &pl->wei) ||
             port_init(d, &pl->ds, dpd, dnnl_query_diff_src_md, &x_u, 1, NULL);
    }
    /* backward weights */
    if (!rc) {
        dnnl_convolution_desc_t bw;
        rc = dnnl_convolution_backward_weights_desc_init(&bw, dnnl_convolution_direct, &x_any, &w_any, bp, &y_any,
                                                         strides, pad_l, pad_r) != dnnl_success ||
             dnnl_primitive_desc_create(&wpd, &bw, NULL, d->eng, fpd) != dnnl_success ||
             dnnl_primitive_create(&pl->bwd_w, wpd) != dnnl_success ||
             port_init(d, &pl->sw, wpd, dnnl_query_src_md, &x_u, 0, &pl->src) ||
             port_init(d, &pl->ddw, wpd, dnnl_query_diff_dst_md, &y_u, 0, &pl->dd) ||
             port_init(d, &pl->dw, wpd, dnnl_query_diff_weights_md, &w_u, 1, NULL);
    }
    if (!rc && d->has_bias) {
        pl->dbias_buf = malloc((size_t)d->oc * sizeof(float));
        rc = !pl->dbias_buf || dnnl_memory_create(&pl->bias, &b_md, d->eng, DNNL_MEMORY_NONE) != dnnl_success ||
             dnnl_memory_create(&pl->dbias, &b_md, d->eng, pl->dbias_buf) != dnnl_success;
    }
    if (!rc && d->relu) {
        pl->mask = malloc((size_t)n * d->oc * conv_geom_cols(g) * sizeof(float));
        rc = !pl->mask;
    }
    dnnl_primitive_desc_destroy(fpd);
    if (dpd)
        dnnl_primitive_desc_destroy(dpd);
    if (wpd)
        dnnl_primitive_desc_destroy(wpd);
    return rc ? -1 : 0;
}

/* The plan for n images on the current thread count in these layouts, built
 * if needed; NULL when oneDNN cannot run this convolution (or, for the
 * tests of the other path, when OCCKD_DNNL_REFUSE=1 is in the environment:
 * the layer then runs by im2col on NCHW copies). */
static Plan *plan_get(ConvDnnl *d, int n, int layout)
{
    const int threads = omp_get_max_threads();
    for (int i = 0; i < CONV_DNNL_PLANS; i++)
        if (d->plans[i].n == n && d->plans[i].threads == threads && d->plans[i].layout == layout)
            return d->plans[i].ok ? &d->plans[i] : NULL;
    Plan *pl = &d->plans[d->next];
    d->next = (d->next + 1) % CONV_DNNL_PLANS;
    plan_free(pl);
    const char *refuse = getenv("OCCKD_DNNL_REFUSE");
    int rc = refuse && strcmp(refuse, "1") == 0 ? -1 : plan_build(d, pl, n, layout);
    if (rc)
        plan_free(pl);
    pl->n = n;
    pl->threads = threads;
    pl->layout = layout;
    pl->ok = !rc;
    return rc ? NULL : pl;
}

ConvDnnl *conv_dnnl_create(const ConvGeom *g, int oc, int has_bias, int relu)
{
    ConvDnnl *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->g = *g;
    d->oc = oc;
    d->has_bias = has_bias;
    d->relu = relu;
    if (dnnl_engine_create(&d->eng, dnnl_cpu, 0) != dnnl_success) {
        free(d);
        return NULL;
    }
    if (dnnl_stream_create(&d->st, d->eng, dnnl_stream_default_flags) != dnnl_success) {
        dnnl_engine_destroy(d->eng);
        free(d);
        return NULL;
    }
    return d;
}

void conv_dnnl_free(ConvDnnl *d)
{
    if (!d)
        return;
    for (int i = 0; i < CONV_DNNL_PLANS; i++)
        plan_free(&d->plans[i]);
    dnnl_stream_destroy(d->st);
    dnnl_engine_destroy(d->eng);
    free(d);
}

static int run(ConvDnnl *d, dnnl_primitive_t prim, int nargs, const dnnl_exec_arg_t *args)
{
    TRY(dnnl_primitive_execute(prim, d->st, nargs, args));
    return 0;
}

static int reorder(ConvDnnl *d, dnnl_primitive_t re, dnnl_memory_t from, dnnl_memory_t to)
{
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    return run(d, re, 2, a);
}

/* An input port bound to the layer's buffer and reordered into the
 * primitive's layout. */
static int port_in(ConvDnnl *d, Port *p, const float *buf)
{
    TRY(dnnl_memory_set_data_handle(p->user, (void *)buf));
    return p->re ? reorder(d, p->re, p->user, p->mem) : 0;
}

/* x (N,C,H,W) -> y (N,OC,OH,OW); 0, or -1 when oneDNN cannot run it (the
 * caller then takes its own path). */
int conv_dnnl_forward(ConvDnnl *d, int n, int layout, const float *x, const float *w, const float *bias, float *y)
{
    Plan *pl = plan_get(d, n, layout);
    if (!pl)
        return -1;
    pl->fwd_x = NULL;
    if (port_in(d, &pl->src, x) || port_in(d, &pl->wei, w))
        return -1;
    TRY(dnnl_memory_set_data_handle(pl->dst.user, y));
    dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, pl->src.mem}, {DNNL_ARG_WEIGHTS, pl->wei.mem}, {DNNL_ARG_DST, pl->dst.mem}};
    int na = 3;
    if (d->has_bias) {
        TRY(dnnl_memory_set_data_handle(pl->bias, (void *)bias));
        a[na++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, pl->bias};
    }
    if (run(d, pl->fwd, na, a) || (pl->dst.re && reorder(d, pl->dst.re, pl->dst.mem, pl->dst.user)))
        return -1;
    TRY(dnnl_stream_wait(d->st));
    pl->fwd_x = x;
    pl->fwd_w = w;
    return 0;
}

/* The memory the primitive writes output port p into: where p's layout is
 * the layer's own and the result is to be added, a separate buffer (made the
 * first time) that port_out_finish then adds; NULL when it cannot be made. */
static dnnl_memory_t port_out_mem(ConvDnnl *d, Port *p, int acc)
{
    if (!p->same || !acc)
        return p->mem;
    if (!p->tmp && dnnl_memory_create(&p->tmp, &p->md, d->eng, DNNL_MEMORY_ALLOCATE) != dnnl_success)
        p->tmp = NULL;
    return p->tmp;
}

/* The result of output port p into the layer's buffer, added when acc: by a
 * reorder where the layouts differ, else by a plain loop (oneDNN's reorder
 * between equal layouts with a sum runs its slow generic kernel). */
static int port_out_finish(ConvDnnl *d, Port *p, int acc)
{
    if (p->same && !acc)
        return 0;
    if (!p->same)
        return reorder(d, acc ? p->re_acc : p->re, p->mem, p->user);
    void *from, *to;
    TRY(dnnl_stream_wait(d->st));
    TRY(dnnl_memory_get_data_handle(p->tmp, &from));
    TRY(dnnl_memory_get_data_handle(p->user, &to));
    const float *restrict a = from;
    float *restrict b = to;
    const size_t n = dnnl_memory_desc_get_size(&p->md) / sizeof(float);
#pragma omp parallel for schedule(static) if (OMP_WORTH(n))
    for (size_t i = 0; i < n; i++)
        b[i] += a[i];
    return 0;
}

/* d_y (N,OC,OH,OW) -> d_x (N,C,H,W) (NULL: none; acc_x adds into it),
 * d_w (OC,C,K,K) and d_b (OC) (NULL: no bias), added into when acc_p. */
int conv_dnnl_backward(ConvDnnl *d, int n, int layout, const float *x, const float *y, const float *d_y,
                       const float *w, float *d_w, float *d_b, int acc_p, float *d_x, int acc_x)
{
    Plan *pl = plan_get(d, n, layout);
    if (!pl)
        return -1;
    const float *dm = d_y;
    if (d->relu) {
        relu_mask(d_y, y, (size_t)n * d->oc * conv_geom_cols(&d->g), pl->mask);
        dm = pl->mask;
    }
    /* the forward's reorders of x and w are still those of this pass */
    const int fresh = pl->fwd_x == x && pl->fwd_w == w;
    if (port_in(d, &pl->dd, dm))
        return -1;
    if (pl->ddw.re && port_in(d, &pl->ddw, dm))
        return -1;
    if (!pl->ddw.re)
        TRY(dnnl_memory_set_data_handle(pl->ddw.user, (void *)dm));

    /* backward weights: the source as the forward reordered it when shared */
    if (!pl->sw.same && pl->sw.re == NULL && fresh) {
        /* borrowed from the forward's src port: already filled */
    } else if (pl->sw.re == NULL && !pl->sw.same) {
        if (port_in(d, &pl->src, x))
            return -1;
    } else if (port_in(d, &pl->sw, x)) {
        return -1;
    }
    TRY(dnnl_memory_set_data_handle(pl->dw.user, d_w));
    dnnl_memory_t dw_mem = port_out_mem(d, &pl->dw, acc_p);
    if (!dw_mem)
        return -1;
    dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, pl->sw.mem}, {DNNL_ARG_DIFF_DST, pl->ddw.mem},
                            {DNNL_ARG_DIFF_WEIGHTS, dw_mem}};
    int na = 3;
    if (d_b)
        a[na++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, pl->dbias};
    if (run(d, pl->bwd_w, na, a) || port_out_finish(d, &pl->dw, acc_p))
        return -1;

    if (d_x) {
        if (!pl->wd.same && pl->wd.re == NULL && fresh) {
            /* borrowed from the forward's weights port */
        } else if (pl->wd.re == NULL && !pl->wd.same) {
            if (port_in(d, &pl->wei, w))
                return -1;
        } else if (port_in(d, &pl->wd, w)) {
            return -1;
        }
        TRY(dnnl_memory_set_data_handle(pl->ds.user, d_x));
        dnnl_memory_t ds_mem = port_out_mem(d, &pl->ds, acc_x);
        if (!ds_mem)
            return -1;
        dnnl_exec_arg_t b[3] = {{DNNL_ARG_DIFF_DST, pl->dd.mem}, {DNNL_ARG_WEIGHTS, pl->wd.mem},
                                {DNNL_ARG_DIFF_SRC, ds_mem}};
        if (run(d, pl->bwd_d, 3, b) || port_out_finish(d, &pl->ds, acc_x))
            return -1;
    }
    TRY(dnnl_stream_wait(d->st));
    if (d_b)
        for (int o = 0; o < d->oc; o++)
            d_b[o] = acc_p ? d_b[o] + pl->dbias_buf[o] : pl->dbias_buf[o];
    return 0;
}

#endif
