/* layers.h - tensors, layers, losses, the three networks and the optimiser.
 *
 * Everything here is NCHW float32 and knows nothing of MPI, files or
 * configuration. A network owns three flat buffers: all trainable parameters
 * (`params`), their gradients (`grads`, same order) and the non-trainable
 * state such as batch-normalisation running statistics (`state`). Layers hold
 * views into them. Parameters are laid out in reverse layer order, so the
 * gradients that backward finishes first sit at the start of `grads`: a prefix
 * of the buffer is complete as soon as backward has passed a layer, which is
 * what a bucketed allreduce needs.
 *
 * Conventions: `x` is a layer input, `y` its output, `d_x` means dLoss/dx.
 * Shapes are written as (N,C,H,W); a Shape holds one sample (C,H,W).
 */
#ifndef OCCKD_LAYERS_H
#define OCCKD_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"

/* ------------------------------------------------------------------ shapes */

typedef struct {
    int c, h, w;
} Shape;

static inline size_t shape_size(Shape s) { return (size_t)s.c * (size_t)s.h * (size_t)s.w; }

/* ------------------------------------------------------------------ passes */

/* One forward or backward pass over a batch. Filled by the caller (the network
 * fills `work`). Nothing in it is owned by the pass. */
typedef struct {
    int n;                     /* samples in this batch (<= the network's max_batch) */
    int training;              /* 1: dropout active, batch norm uses batch statistics */
    uint64_t seed;             /* run seed: dropout masks are keyed by it */
    uint64_t step;             /* optimiser step: dropout masks are keyed by it */
    const int64_t *sample_id;  /* global index of each sample (n entries); NULL means 0..n-1 */
    int accumulate_grads;      /* 1: add parameter gradients to grads, 0: overwrite them */
    float *work;               /* scratch shared by all layers */
    size_t work_bytes;
    /* Called by net_backward after each layer whose parameter gradients are
     * final: grads[0, n_ready) will not change any more in this pass. */
    void (*grads_ready)(void *user, size_t n_ready);
    void *user;
    /* Synchronised batch normalisation (NULL: each caller's batch is
     * normalised on its own). When set, a training pass is one slice of a
     * batch shared with other callers (the ranks of a group): reduce sums
     * v[0, n) in place over all of them, and every one of them must call it
     * in the same order. Batch norm calls it once per layer in forward (the
     * sums of x and x^2 per channel and the sample count) and once in
     * backward (the sums of d_y and d_y * (x - mean)), so the statistics and
     * the input gradients are those of the whole batch. Parameter gradients
     * stay each slice's own (the gradient allreduce adds them). It returns 0;
     * on failure the layer goes on with whatever v holds and the callback's
     * owner reports the error after the pass. A forward and its backward
     * must use the same setting. */
    int (*reduce)(void *reduce_user, double *v, int n);
    void *reduce_user;
} Pass;

/* -------------------------------------------------------- layers and views */

/* A named view into one of the network's flat buffers. */
typedef struct {
    char name[16];    /* "weight", "bias", "running_mean", ... */
    int ndims;
    int dims[4];      /* PyTorch order: conv (OC,C,KH,KW), fc (OUT,IN), vectors (C) */
    size_t count;
    size_t offset;    /* in params (trainable) or in state (non-trainable) */
    float *data;      /* set when the network allocates its buffers */
    float *grad;      /* NULL for state tensors */
    int fan_in;       /* for initialisation; 0 for vectors */
    float init_value; /* vectors: constant initial value (BN gamma 1, others 0) */
} Tensor;

#define LAYER_MAX_INPUTS 2
#define LAYER_MAX_PARAMS 2
#define LAYER_MAX_STATE 2

typedef struct Layer Layer;

typedef struct {
    const char *type;
    /* x[i] (N, in_shape[i]) -> y (N, out) */
    void (*forward)(Layer *l, const Pass *p, const float *const *x, float *y);
    /* d_y (N, out) -> d_x[i] (N, in_shape[i]) and the layer's parameter
     * gradients. d_x[i] may be NULL: no gradient wanted for that input. Bit i
     * of `accumulate` set: add into d_x[i] instead of overwriting it. */
    void (*backward)(Layer *l, const Pass *p, const float *const *x, const float *y,
                     const float *d_y, float *const *d_x, unsigned accumulate);
    /* Scratch bytes for a batch of n within a budget (NULL: none). */
    size_t (*workspace)(const Layer *l, int n, size_t budget);
    void (*destroy)(Layer *l); /* frees what the type added (NULL: nothing) */
    /* The type's own settings as text, e.g. "64 out, kernel 11, stride 4,
     * pad 0, bias, relu" (NULL: none to tell). */
    void (*describe)(const Layer *l, char *buf, size_t len);
    /* Whether the layer can read and write the channel-blocked layout (NULL:
     * never): LAYOUT_SAME, its inputs and output in one layout, either one;
     * LAYOUT_FREE, each input and the output in either. */
    int (*layouts)(const Layer *l);
} LayerOps;

/* The channel-blocked layout ("nChw16c"): a tensor (N,C,H,W) with C a
 * multiple of 16 stored as (N, C/16, H, W, 16), element (n,c,h,w) at
 * ((n * C/16 + c/16) * H * W + h * W + w) * 16 + c % 16. It is the layout
 * oneDNN's convolutions run in on AVX-512 (and AVX2) CPUs; the network keeps
 * activations in it between the layers that accept it, so that those
 * convolutions do not convert their inputs and outputs on every pass. */
#define LAYOUT_BLOCK 16
enum { LAYOUT_SAME = 1, LAYOUT_FREE = 2 };

struct Layer {
    const LayerOps *ops;
    char name[40];               /* "conv1", "layer1.0.bn2", "fc8" */
    int index;                   /* position in the network, a key for dropout */
    int n_in;
    int in[LAYER_MAX_INPUTS];    /* producing layer of each input; -1: the network input */
    Shape in_shape[LAYER_MAX_INPUTS];
    Shape out;
    int n_params;
    Tensor param[LAYER_MAX_PARAMS];
    int n_state;
    Tensor state[LAYER_MAX_STATE];
    double flops;                /* forward floating-point operations per sample */
    int needs_input_grad;        /* set by the network: some input carries a gradient */
    /* Set by the network (net.c), 0 unless LayerOps.layouts allows: bit j of
     * in_blocked, input j (and its gradient) is channel-blocked; out_blocked,
     * the output (and its gradient) is. */
    unsigned in_blocked;
    int out_blocked;
};

/* Constructors. Each returns a layer whose in_shape/out are set and whose
 * tensors have sizes but no storage yet; on invalid arguments NULL, with
 * "<type> layer <name>: <what is wrong>" in err (err may be NULL). `relu`
 * fuses a ReLU on the output. */
Layer *conv_create(const char *name, Shape in, int out_c, int k, int stride, int pad, int bias, int relu, char *err,
                   size_t errlen);
Layer *fc_create(const char *name, Shape in, int out, int relu, char *err, size_t errlen); /* flattens its input */
typedef enum { POOL_MAX, POOL_AVG } PoolKind;
/* Padding may be asymmetric (top, bottom, left, right); ceil_mode adds the
 * bottom/right padding needed to cover the input (as PyTorch's ceil_mode). Avg
 * pooling divides by the window area inside the padded input minus padding. */
Layer *pool_create(const char *name, Shape in, PoolKind kind, int k, int stride, int pad_t, int pad_b,
                   int pad_l, int pad_r, int ceil_mode, char *err, size_t errlen);
/* Across-channel LRN: y = x / (k + alpha/size * sum_{window} x^2)^beta (PyTorch's form). */
Layer *lrn_create(const char *name, Shape in, int size, float alpha, float beta, float k, char *err, size_t errlen);
Layer *relu_create(const char *name, Shape in, char *err, size_t errlen);
Layer *dropout_create(const char *name, Shape in, float rate, char *err, size_t errlen);
/* Batch normalisation over (N,H,W) per channel; momentum as PyTorch (0.1). */
Layer *batchnorm_create(const char *name, Shape in, float eps, float momentum, int relu, char *err, size_t errlen);
Layer *gap_create(const char *name, Shape in, char *err, size_t errlen);           /* global average pool */
Layer *add_create(const char *name, Shape in, int relu, char *err, size_t errlen); /* y = x0 + x1 */
Layer *flatten_create(const char *name, Shape in, char *err, size_t errlen);

void layer_destroy(Layer *l);

/* "conv1 conv (3,224,224) -> (64,54,54): 64 out, kernel 11, stride 4, pad 0,
 * bias, relu": the name, type, shapes and the type's settings. */
void layer_describe(const Layer *l, char *buf, size_t len);

/* ---------------------------------------------------------------- registry
 * Type names ("conv", "pool", ...) to operation tables and constructors,
 * for building layers from names (the network builder of net.c). */

/* The settings of any layer type by name. Each type reads the fields it
 * uses and ignores the others, so a designated initialiser names exactly
 * the settings of one layer: (LayerArgs){.out = 64, .k = 3, .pad = {1, 1, 1, 1}}. */
typedef struct {
    int out;               /* conv: output channels; fc: outputs */
    int k, stride;         /* conv, pool: square window and its step (stride 0 means 1) */
    int pad[4];            /* conv, pool: top, bottom, left, right (conv: all four equal) */
    int bias;              /* conv: add a bias */
    int relu;              /* conv, fc, batchnorm, add: fuse a ReLU on the output */
    PoolKind pool;         /* pool: max or average */
    int ceil_mode;         /* pool */
    int size;              /* lrn: channels in the window */
    float alpha, beta, lrn_k; /* lrn */
    float eps, momentum;   /* batchnorm */
    float rate;            /* dropout */
} LayerArgs;

/* Builds a layer of the named type; NULL with a message in err when the
 * type is unknown (the message lists the known ones) or the settings are
 * invalid. a may be NULL for types without settings. */
Layer *layer_create(const char *type, const char *name, Shape in, const LayerArgs *a, char *err, size_t errlen);
const LayerOps *layer_ops_find(const char *type); /* NULL when unknown */
const char *layer_type_names(void); /* "conv, fc, pool, ..." in registry order */

/* ---------------------------------------------------------------- losses
 * Each returns sum over the batch of the per-sample loss divided by `norm`
 * (the global batch size, so that shards add up), and writes d_input scaled
 * the same way when d_ is not NULL (overwriting). Logits are (n, k). */

/* Cross-entropy against target distributions (n, k), e.g. FER+ vote shares. */
float loss_softmax_ce_soft(const float *logits, const float *target, int n, int k, float norm, float *d_logits);
/* Regression over (n, d): sum |p - t| or 1/2 sum (p - t)^2. */
float loss_l1(const float *pred, const float *target, int n, int d, float norm, float *d_pred);
float loss_l2(const float *pred, const float *target, int n, int d, float norm, float *d_pred);

typedef struct {
    int a, p, n; /* rows of the embedding matrix */
} Triple;

/* The losses whose arguments can be broken return a status, as the rest of
 * occkd does: 0 with the loss in *loss, or -1 with a message in err naming
 * the first bad sample (a label outside [0,k), a temperature <= 0, a
 * triple's row outside [0,rows), or no memory for the triplet loss' rows),
 * *loss NaN and the bad sample's gradient zero.
 *   loss_softmax_ce_checked: cross-entropy against class labels.
 *   loss_kd_checked: T^2 * KL(softmax(t/T) || softmax(s/T)); gradient for
 *     the student only.
 *   loss_triplet_checked: embeddings e (rows, d) are L2-normalised inside;
 *     for each triple max(0, |a-p|^2 - |a-n|^2 + margin), summed over the
 *     triples / norm. d_e (rows, d) receives the gradient for every row
 *     (overwritten); `active` (n_triples, optional) 1 where the hinge is
 *     positive. */
int loss_softmax_ce_checked(const float *logits, const int *label, int n, int k, float norm, float *d_logits,
                            float *loss, char *err, size_t errlen);
int loss_kd_checked(const float *student, const float *teacher, int n, int k, float T, float norm, float *d_student,
                    float *loss, char *err, size_t errlen);
int loss_triplet_checked(const float *e, int rows, int d, const Triple *t, int n_triples, float margin, float norm,
                         float *d_e, uint8_t *active, float *loss, char *err, size_t errlen);

/* Accuracy helpers. */
int argmax(const float *v, int k);

/* ---------------------------------------------------------------- networks */

typedef enum { ARCH_VGG_F, ARCH_VGG_FACE, ARCH_RESNET50 } Arch;

typedef struct {
    Arch arch;
    int input;       /* square side in pixels */
    int channels;    /* input channels (3 colour, 1 grey) */
    float width;     /* channel multiplier (1 = published) */
    int fc;          /* hidden fully connected width (4096 published; resnet50: 0 = none) */
    int classes;     /* outputs; 1 for regression */
    float dropout;   /* rate after hidden fc layers (0.5 published) */
    int batchnorm;   /* vgg_f, vgg_face: batch norm after every convolution, before its ReLU
                        (0 published); resnet50 always has it (1, nothing else accepted) */
    int fc_layers;   /* vgg_f, vgg_face: hidden fully connected layers, 0 to 2 (2 published; 0: the
                        classifier reads pool5); resnet50: 0, its hidden layer comes from fc */
} NetSpec;

/* Fills the published defaults for an architecture. */
NetSpec netspec_default(Arch arch);
int arch_parse(const char *name, Arch *out); /* 0 on success */
const char *arch_name(Arch a);

typedef struct {
    NetSpec spec;
    int n_layers;
    Layer **layers;          /* topological order; the last one is the output */
    int embedding;           /* index of the embedding (penultimate) layer */
    int max_batch;
    Shape input;
    size_t n_params;         /* floats in params and grads */
    size_t n_state;
    float *params, *grads, *state;
    int n_tensors;           /* trainable tensors in buffer order */
    Tensor **tensors;
    float **act;             /* output of each layer (max_batch x out), in its layout */
    float **d_act;           /* gradient of each layer's output, the same layout */
    /* For a channel-blocked output that some consumer reads in NCHW: that
     * copy and its gradient (NULL otherwise); see net.c. */
    float **act_nchw, **d_act_nchw;
    int *consumers;          /* number of layers reading each layer's output */
    float *work;
    size_t work_bytes;
    size_t work_budget;      /* bytes layers may use for batching GEMMs */
    const float *last_input; /* the input of the last forward (kept by the caller) */
    size_t *ready_after;     /* gradient prefix final after each layer's backward */
    unsigned char *written;  /* backward bookkeeping */
    double *time_fwd;        /* seconds per layer, summed while net_profile is on (NULL: off) */
    double *time_bwd;
} Net;

/* Builds a network for batches of up to max_batch; NULL and a message in err
 * on invalid settings. work_budget 0 picks a default (256 MiB). */
Net *net_create(const NetSpec *spec, int max_batch, size_t work_budget, char *err, size_t errlen);
void net_free(Net *net);
/* Deterministic He initialisation keyed by seed (independent of ranks). */
void net_init(Net *net, uint64_t seed);
/* x (n, input) -> returns the output (n, classes), valid until the next pass.
 * x must stay valid until the matching net_backward. */
const float *net_forward(Net *net, Pass *p, const float *x);
/* d_out (n, classes) -> grads (overwritten or accumulated per p->accumulate_grads).
 * d_embedding, if not NULL, is added to the gradient at the embedding layer's
 * output (for the triplet loss). */
void net_backward(Net *net, Pass *p, const float *d_out, const float *d_embedding);
const float *net_embedding(const Net *net); /* (n, embedding size) of the last forward */
/* Layer i's output of the last forward for n samples, in NCHW whatever its
 * layout, copied into out (n x its output size). */
void net_act_nchw(const Net *net, int i, int n, float *out);
/* Layers whose output is kept channel-blocked (0 with OCCKD_BLOCKED=0 in the
 * environment, or where no convolution runs by oneDNN). */
int net_blocked_layers(const Net *net);
size_t net_embedding_size(const Net *net);
int net_find_layer(const Net *net, const char *name);
/* Index of the first layer whose output holds a NaN or Inf for the first n
 * samples, or -1. */
int net_first_nonfinite(const Net *net, int n);
/* Per-layer timing (net->time_fwd / time_bwd) on or off; turning it on zeroes it. */
void net_profile(Net *net, int on);
/* Total forward flops per sample. */
double net_flops(const Net *net);
/* Bytes held by activations, gradients, parameters and scratch. */
size_t net_memory_bytes(const Net *net);

/* ---------------------------------------------------------------- optimiser */

typedef enum { SCHED_CONSTANT, SCHED_STEP, SCHED_COSINE } Schedule;

typedef struct {
    float lr;            /* base learning rate */
    float momentum;      /* 0.9 */
    int nesterov;
    float weight_decay;
    int decoupled;       /* 1: p -= lr*wd*p apart from the gradient; 0: L2 added to the gradient */
    Schedule schedule;
    int64_t warmup_steps;  /* linear warm-up from 0 */
    int64_t total_steps;   /* cosine horizon */
    int64_t step_size;     /* SCHED_STEP: multiply by gamma every step_size steps */
    float gamma;
    float min_lr;          /* cosine floor */
} SgdConfig;

SgdConfig sgd_default(void);
float sgd_lr(const SgdConfig *c, int64_t step);
/* One step over flat buffers: velocity has n floats (zeroed at start). */
void sgd_step(const SgdConfig *c, float lr, float *params, const float *grads, float *velocity, size_t n);

/* ---------------------------------------------------------------- threads */

/* Threads of the layers' OpenMP teams and loops (n <= 0: leave OpenMP's
 * setting as it is). OpenBLAS is set to one thread either way and stays
 * there: the convolution and fully connected layers call its sgemm from
 * each member of their own team (layers/threads.c). layers_get_threads:
 * the threads a team would have now. */
void layers_set_threads(int n);
int layers_get_threads(void);

/* Seconds on the monotonic clock (layers/clock.c): differences time a pass
 * or a run; the origin means nothing. */
double clock_seconds(void);

/* OpenBLAS's kernels (layers/blas_kernel.c). blas_kernel_select runs first
 * in main, before MPI: where OpenBLAS fell back to kernels weaker than the
 * CPU allows (and the user set no OPENBLAS_CORETYPE), it runs the program
 * again with the right OPENBLAS_CORETYPE and does not return. Test switch:
 * OCCKD_BLAS_TREAT_AS_FALLBACK=1. blas_kernel_describe: one line on the
 * kernels in use, for printing and results.h5 (e.g. "OpenBLAS 0.3.21 core
 * SkylakeX (chosen by OpenBLAS)"). */
void blas_kernel_select(char **argv);
const char *blas_kernel_describe(void);

#endif
