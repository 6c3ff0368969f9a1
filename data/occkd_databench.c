/* occkd_databench - what streaming the data costs a training step.
 *
 *   occkd_databench [--model vgg_f] [--input 224] [--channels 3] [--width 1]
 *                   [--fc 4096] [--batch 32] [--faces 2000] [--stored 48]
 *                   [--steps 10] [--threads 2] [--cache DIR]
 *
 * Builds (once) a cache of synthetic faces stored at --stored px grey, the
 * way a FER+ cache is stored, and trains --model on batches resized to
 * --input px with --channels channels, on one process. Prints, in one run:
 * the loader's images/s alone (streamed from the cache, resize included),
 * the resize's share of a training step, training images/s with the images
 * streamed and with them held in memory, and the ratio streamed / in memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "layers/layers.h"

typedef struct {
    const char *model, *cache;
    int input, channels, batch, faces, stored, steps, threads, fc;
    float width;
} Args;

static int parse(int argc, char **argv, Args *a)
{
    *a = (Args){"vgg_f", "/tmp/occkd-databench-cache", 224, 3, 32, 2000, 48, 10, 2, 4096, 1.0f};
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "occkd_databench: %s needs a value\n", k);
            return -1;
        }
        i++;
        if (!strcmp(k, "--model")) a->model = v;
        else if (!strcmp(k, "--cache")) a->cache = v;
        else if (!strcmp(k, "--input")) a->input = atoi(v);
        else if (!strcmp(k, "--channels")) a->channels = atoi(v);
        else if (!strcmp(k, "--batch")) a->batch = atoi(v);
        else if (!strcmp(k, "--faces")) a->faces = atoi(v);
        else if (!strcmp(k, "--stored")) a->stored = atoi(v);
        else if (!strcmp(k, "--steps")) a->steps = atoi(v);
        else if (!strcmp(k, "--threads")) a->threads = atoi(v);
        else if (!strcmp(k, "--fc")) a->fc = atoi(v);
        else if (!strcmp(k, "--width")) a->width = (float)atof(v);
        else {
            fprintf(stderr, "occkd_databench: unknown option %s (see the comment at the top of the source)\n", k);
            return -1;
        }
    }
    if (a->input < 16 || a->batch < 1 || a->steps < 1 || a->faces < 10 * a->batch / 7 + 1 || a->stored < 16 ||
        (a->channels != 1 && a->channels != 3)) {
        fprintf(stderr, "occkd_databench: expected input >= 16, batch >= 1, steps >= 1, stored >= 16, channels 1 or 3,"
                        " and enough faces for a batch\n");
        return -1;
    }
    return 0;
}

static LoaderOptions loader_opts(const Args *a, int side, int channels)
{
    LoaderOptions o = loader_options_default();
    o.sampler.global_batch = a->batch;
    o.side = side;
    o.channels = channels;
    o.aug.pad = side / 16;
    o.max_epochs = 0; /* endless */
    for (int c = 0; c < 4; c++)
        o.mean[c] = 0.5f, o.std[c] = 0.25f;
    return o;
}

/* Images per second of the loader alone over `steps` batches. */
static double loader_rate(const Dataset *d, const LoaderOptions *o, int steps)
{
    Loader *l;
    char err[512];
    if (loader_create(d, o, &l, err, sizeof err)) {
        fprintf(stderr, "occkd_databench: %s\n", err);
        exit(1);
    }
    Batch b;
    loader_next(l, &b, err, sizeof err); /* the first batch: thread start-up */
    double t = clock_seconds();
    int64_t n = 0;
    for (int s = 0; s < steps; s++) {
        if (loader_next(l, &b, err, sizeof err) != LOADER_OK) {
            fprintf(stderr, "occkd_databench: %s\n", err);
            exit(1);
        }
        n += b.n;
    }
    t = clock_seconds() - t;
    loader_destroy(l);
    return (double)n / t;
}

/* Images per second of whole training steps (load, forward, loss, backward, SGD). */
static double train_rate(Net *net, const Dataset *d, const LoaderOptions *o, int steps, int classes)
{
    Loader *l;
    char err[512];
    if (loader_create(d, o, &l, err, sizeof err)) {
        fprintf(stderr, "occkd_databench: %s\n", err);
        exit(1);
    }
    SgdConfig sc = sgd_default();
    float *vel = calloc(net->n_params, sizeof(float)), *d_out = malloc((size_t)net->max_batch * classes * sizeof(float));
    double t = 0;
    int64_t n = 0;
    for (int s = -1; s < steps; s++) { /* step -1 warms up */
        double t0 = clock_seconds();
        Batch b;
        if (loader_next(l, &b, err, sizeof err) != LOADER_OK) {
            fprintf(stderr, "occkd_databench: %s\n", err);
            exit(1);
        }
        Pass p = {.n = b.n, .training = 1, .seed = 1, .step = (uint64_t)(s + 1), .sample_id = b.ids};
        const float *y = net_forward(net, &p, b.clean);
        float loss;
        if (loss_softmax_ce_checked(y, b.label, b.n, classes, (float)b.n, d_out, &loss, err, sizeof err)) {
            fprintf(stderr, "occkd_databench: %s\n", err);
            exit(1);
        }
        net_backward(net, &p, d_out, NULL);
        sgd_step(&sc, 0.001f, net->params, net->grads, vel, net->n_params);
        if (s >= 0) {
            t += clock_seconds() - t0;
            n += b.n;
        }
    }
    free(vel);
    free(d_out);
    loader_destroy(l);
    return (double)n / t;
}

int main(int argc, char **argv)
{
    blas_kernel_select(argv);
    Args a;
    if (parse(argc, argv, &a))
        return 2;
    layers_set_threads(a.threads);
    DataOptions o;
    data_options_default(&o);
    o.synth_count = a.faces;
    o.side = a.stored;
    o.channels = 1;
    Dataset d;
    char err[1024];
    if (dataset_load(&o, a.cache, NULL, &d, err, sizeof err)) {
        fprintf(stderr, "occkd_databench: %s\n", err);
        return 1;
    }
    Arch arch;
    if (arch_parse(a.model, &arch)) {
        fprintf(stderr, "occkd_databench: unknown model %s (vgg_f, vgg_face, resnet50)\n", a.model);
        return 2;
    }
    NetSpec s = netspec_default(arch);
    s.input = a.input;
    s.channels = a.channels;
    s.width = a.width;
    s.fc = arch == ARCH_RESNET50 ? 0 : a.fc;
    s.classes = 8;
    Net *net = net_create(&s, a.batch, 0, err, sizeof err);
    if (!net) {
        fprintf(stderr, "occkd_databench: %s\n", err);
        return 1;
    }
    net_init(net, 1);
    LoaderOptions lo = loader_opts(&a, a.input, a.channels);
    lo.attr = ATTR_EXPRESSION;
    LoaderOptions same = loader_opts(&a, a.stored, 1); /* no resize */
    int steps = a.steps;
    printf("workload %s %dpx x%d batch %d, faces stored at %dpx grey (%d faces), %d thread(s); %s\n", a.model, a.input,
           a.channels, a.batch, a.stored, a.faces, a.threads, blas_kernel_describe());
    lo.background = 0;
    same.background = 0;
    double load_resize = loader_rate(&d, &lo, steps * 4), load_plain = loader_rate(&d, &same, steps * 4);
    lo.background = 1;
    double streamed = train_rate(net, &d, &lo, steps, 8);
    if (dataset_load_pixels(&d, err, sizeof err)) {
        fprintf(stderr, "occkd_databench: %s\n", err);
        return 1;
    }
    double memory = train_rate(net, &d, &lo, steps, 8);
    double resize_s = 1.0 / load_resize - 1.0 / load_plain; /* per image */
    printf("loader_images_per_s %.0f (one thread, streamed, resize to %dpx included)\n", load_resize, a.input);
    printf("loader_images_per_s_without_resize %.0f\n", load_plain);
    printf("resize_share_of_step %.2f%% (resize %.3f ms an image; a training step %.3f ms an image)\n",
           100.0 * resize_s * memory, 1e3 * resize_s, 1e3 / memory);
    printf("train_images_per_s_streamed %.2f\n", streamed);
    printf("train_images_per_s_in_memory %.2f\n", memory);
    printf("streamed_over_in_memory %.3f\n", streamed / memory);
    net_free(net);
    dataset_free(&d);
    return 0;
}
