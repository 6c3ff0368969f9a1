/* occkd_bench - training throughput of one network on this machine.
 *
 *   occkd_bench --model vgg_f --input 224 --batch 32 [--width 1] [--fc 4096]
 *               [--classes 1000] [--steps 10] [--warmup 2] [--threads 2]
 *
 * Runs full training steps (forward, softmax cross-entropy, backward, SGD
 * update) on random images and labels, and prints one figure per line:
 * params, train_images_per_s, train_gflops_per_s, train_cpu_ms_per_step (CPU
 * time of all threads), sgemm_gflops_per_s (a
 * large OpenBLAS sgemm measured in the same run, the machine's reference),
 * peak_memory_mb, then the time per layer with the layer's settings.
 * Forward+backward is counted as three times the forward flops.
 */
#include <cblas.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "layers/layers.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: occkd_bench --model vgg_f|vgg_face|resnet50 --input SIDE --batch N [--width W] [--fc F]\n"
               "                   [--fc-layers L] [--batchnorm] [--classes K] [--channels C] [--steps N]\n"
               "                   [--warmup N] [--threads T]\n"
               "--fc-layers and --batchnorm are the model keys fc_layers and batchnorm of the VGG networks.\n"
               "The convolutions run by oneDNN where the build has it; OCCKD_DNNL=0 in the environment\n"
               "runs them by im2col + sgemm instead.\n");
}

static int parse_int(const char *opt, const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) {
        fprintf(stderr, "occkd_bench: --%s expects an integer in [%d, %d], got '%s'\n", opt, lo, hi, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* GFLOP/s of an n x n x n sgemm on `threads` OpenBLAS threads, best of a
 * few repetitions (the layers keep OpenBLAS on one thread; the reference uses
 * the same cores the training used). */
static double sgemm_rate(int n, int threads)
{
    openblas_set_num_threads(threads);
    float *a = malloc((size_t)n * n * sizeof(float)), *b = malloc((size_t)n * n * sizeof(float));
    float *c = malloc((size_t)n * n * sizeof(float));
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
        b[i] = (float)((i * 40503u) % 1000) / 1000.0f - 0.5f;
    }
    double best = 1e30;
    for (int r = 0; r < 4; r++) {
        double t0 = clock_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double t = clock_seconds() - t0;
        if (r > 0 && t < best) /* the first call warms up threads and caches */
            best = t;
    }
    free(a);
    free(b);
    free(c);
    openblas_set_num_threads(1);
    return 2.0 * n * n * (double)n / best / 1e9;
}

typedef struct {
    NetSpec spec;
    int batch, steps, warmup, threads;
} BenchArgs;

/* The options into a->spec and the run's sizes: 0, 1 after --help (usage
 * printed), -1 with a message on stderr. */
static int parse_args(int argc, char **argv, BenchArgs *a)
{
    NetSpec spec = netspec_default(ARCH_VGG_F);
    int batch = 0, steps = 10, warmup = 2, threads = 0, have_model = 0, have_input = 0;
    int fc = -1, fc_layers = -1, batchnorm = -1;
    float width = 1.0f;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"input", required_argument, 0, 'i'},
        {"batch", required_argument, 0, 'b'},   {"width", required_argument, 0, 'w'},
        {"fc", required_argument, 0, 'f'},      {"classes", required_argument, 0, 'k'},
        {"channels", required_argument, 0, 'c'}, {"steps", required_argument, 0, 's'},
        {"warmup", required_argument, 0, 'u'},  {"threads", required_argument, 0, 't'},
        {"fc-layers", required_argument, 0, 'l'}, {"batchnorm", no_argument, 0, 'n'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    int ch, classes = 1000, channels = 3;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (ch) {
        case 'm':
            if (arch_parse(optarg, &spec.arch)) {
                fprintf(stderr, "occkd_bench: unknown model '%s' (known: vgg_f, vgg_face, resnet50)\n", optarg);
                return -1;
            }
            have_model = 1;
            break;
        case 'i': bad = parse_int("input", optarg, 16, 4096, &spec.input), have_input = 1; break;
        case 'b': bad = parse_int("batch", optarg, 1, 4096, &batch); break;
        case 'f': bad = parse_int("fc", optarg, 0, 1 << 20, &fc); break;
        case 'k': bad = parse_int("classes", optarg, 1, 1 << 20, &classes); break;
        case 'c': bad = parse_int("channels", optarg, 1, 4, &channels); break;
        case 's': bad = parse_int("steps", optarg, 1, 1000000, &steps); break;
        case 'u': bad = parse_int("warmup", optarg, 0, 1000000, &warmup); break;
        case 't': bad = parse_int("threads", optarg, 1, 1024, &threads); break;
        case 'l': bad = parse_int("fc-layers", optarg, 0, 2, &fc_layers); break;
        case 'n': batchnorm = 1; break;
        case 'w': {
            char *end;
            width = strtof(optarg, &end);
            if (*end || !(width > 0 && width <= 16)) {
                fprintf(stderr, "occkd_bench: --width expects a number in (0, 16], got '%s'\n", optarg);
                bad = 1;
            }
            break;
        }
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return -1;
        }
        if (bad)
            return -1;
    }
    if (!have_model || !have_input || batch < 1) {
        fprintf(stderr, "occkd_bench: --model, --input and --batch are required\n");
        usage(stderr);
        return -1;
    }
    a->spec = netspec_default(spec.arch);
    a->spec.input = spec.input;
    a->spec.width = width;
    a->spec.classes = classes;
    a->spec.channels = channels;
    if (fc >= 0)
        a->spec.fc = fc;
    if ((fc_layers >= 0 || batchnorm >= 0) && spec.arch == ARCH_RESNET50) {
        fprintf(stderr, "occkd_bench: --fc-layers and --batchnorm apply to vgg_f and vgg_face (resnet50 always has "
                        "batch norm and one optional hidden layer, --fc)\n");
        return -1;
    }
    if (fc_layers >= 0)
        a->spec.fc_layers = fc_layers;
    if (batchnorm >= 0)
        a->spec.batchnorm = batchnorm;
    a->batch = batch;
    a->steps = steps;
    a->warmup = warmup;
    a->threads = threads;
    return 0;
}

/* Seconds of CPU time used by all threads of the process: on a machine
 * shared with other jobs, a one-thread run's CPU time per step is what the
 * others disturb least. */
static double cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* a->warmup + a->steps training steps on random images and labels (forward,
 * cross-entropy, backward, SGD), the last a->steps timed and profiled
 * per layer. 0 with the seconds of the timed steps and the last loss, or -1
 * with a message on stderr. */
static int train_steps(Net *net, const BenchArgs *a, double *elapsed, double *cpu, float *loss)
{
    const int batch = a->batch, classes = a->spec.classes;
    size_t nx = (size_t)batch * shape_size(net->input);
    float *x = malloc(nx * sizeof(float));
    int *y = malloc((size_t)batch * sizeof(int));
    float *d_out = malloc((size_t)batch * classes * sizeof(float));
    float *velocity = calloc(net->n_params, sizeof(float));
    int64_t *ids = malloc((size_t)batch * sizeof(int64_t));
    for (size_t i = 0; i < nx; i++) {
        RngBlock r = philox4x32(3, (uint32_t)i, (uint32_t)(i >> 32), 0, 0);
        x[i] = 2.0f * rng_u01(r.v[0]) - 1.0f;
    }
    for (int i = 0; i < batch; i++) {
        y[i] = (int)(philox4x32(4, (uint32_t)i, 0, 0, 0).v[0] % (uint32_t)classes);
        ids[i] = i;
    }
    SgdConfig opt = sgd_default();
    opt.lr = 1e-3f;
    Pass p = {.n = batch, .training = 1, .seed = 1, .sample_id = ids};
    double t_start = 0, cpu_start = 0;
    char err[256];
    int rc = 0;
    for (int s = 0; s < a->warmup + a->steps && !rc; s++) {
        if (s == a->warmup) {
            net_profile(net, 1);
            t_start = clock_seconds();
            cpu_start = cpu_seconds();
        }
        p.step = (uint64_t)s;
        const float *logits = net_forward(net, &p, x);
        rc = loss_softmax_ce_checked(logits, y, batch, classes, (float)batch, d_out, loss, err, sizeof err);
        if (rc) {
            fprintf(stderr, "occkd_bench: %s\n", err);
            break;
        }
        net_backward(net, &p, d_out, NULL);
        sgd_step(&opt, opt.lr, net->params, net->grads, velocity, net->n_params);
    }
    *elapsed = clock_seconds() - t_start;
    *cpu = cpu_seconds() - cpu_start;
    free(x);
    free(y);
    free(d_out);
    free(velocity);
    free(ids);
    return rc;
}

/* The time of each layer per step, its share, its rate and its settings. */
static void print_layers(const Net *net, int steps, int batch, double elapsed)
{
    printf("\n%-24s %-10s %14s %10s %10s %8s %9s  %s\n", "layer", "type", "out", "fwd_ms", "bwd_ms", "share",
           "GFLOP/s", "settings");
    double total = 0;
    for (int i = 0; i < net->n_layers; i++)
        total += net->time_fwd[i] + net->time_bwd[i];
    for (int i = 0; i < net->n_layers; i++) {
        const Layer *l = net->layers[i];
        double f = net->time_fwd[i] / steps, b = net->time_bwd[i] / steps;
        char shape[32];
        snprintf(shape, sizeof shape, "%dx%dx%d", l->out.c, l->out.h, l->out.w);
        double rate = (f + b) > 0 ? 3.0 * l->flops * batch / (f + b) / 1e9 : 0;
        char settings[160] = "";
        if (l->ops->describe)
            l->ops->describe(l, settings, sizeof settings);
        printf("%-24s %-10s %14s %10.2f %10.2f %7.1f%% %9.1f  %s\n", l->name, l->ops->type, shape, 1e3 * f, 1e3 * b,
               100.0 * (net->time_fwd[i] + net->time_bwd[i]) / total, rate, settings);
    }
    printf("%-24s %-10s %14s %10.2f ms per step in layers, %.2f ms per step in all\n", "total", "", "",
           1e3 * total / steps, 1e3 * elapsed / steps);
}

/* The convolution layers' rate over their own time (forward and backward,
 * from the per-layer profile of the timed steps). */
static double conv_rate(const Net *net, int steps, int batch)
{
    double flops = 0, seconds = 0;
    for (int i = 0; i < net->n_layers; i++)
        if (strcmp(net->layers[i]->ops->type, "conv") == 0) {
            flops += 3.0 * net->layers[i]->flops * batch * steps;
            seconds += net->time_fwd[i] + net->time_bwd[i];
        }
    return seconds > 0 ? flops / seconds / 1e9 : 0;
}

int main(int argc, char **argv)
{
    blas_kernel_select(argv); /* may run the program again with better kernels */
    BenchArgs a;
    int parsed = parse_args(argc, argv, &a);
    if (parsed)
        return parsed > 0 ? 0 : 2;
    if (a.threads)
        layers_set_threads(a.threads);
    char err[256];
    Net *net = net_create(&a.spec, a.batch, 0, err, sizeof err);
    if (!net) {
        fprintf(stderr, "occkd_bench: %s\n", err);
        return 2;
    }
    net_init(net, 1);
    printf("model: %s input %d channels %d width %g fc %d fc_layers %d batchnorm %d classes %d batch %d threads %d\n",
           arch_name(a.spec.arch), a.spec.input, a.spec.channels, a.spec.width, a.spec.fc, a.spec.fc_layers,
           a.spec.batchnorm, a.spec.classes, a.batch, layers_get_threads());
    double elapsed, cpu;
    float loss = 0;
    if (train_steps(net, &a, &elapsed, &cpu, &loss)) {
        net_free(net);
        return 1;
    }
    double ips = (double)a.steps * a.batch / elapsed;
    double gflops = 3.0 * net_flops(net) * ips / 1e9;
    double sgemm = sgemm_rate(2048, layers_get_threads());
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);

    printf("params: %zu\n", net->n_params);
    printf("train_images_per_s: %.2f\n", ips);
    printf("train_gflops_per_s: %.1f\n", gflops);
    printf("train_cpu_ms_per_step: %.1f\n", 1e3 * cpu / a.steps);
    printf("conv_gflops_per_s: %.1f\n", conv_rate(net, a.steps, a.batch));
    printf("sgemm_gflops_per_s: %.1f\n", sgemm);
    printf("blocked_layers: %d of %d\n", net_blocked_layers(net), net->n_layers);
    printf("blas_core: %s\n", blas_kernel_describe());
    printf("peak_memory_mb: %.1f\n", (double)ru.ru_maxrss / 1024.0);
    printf("forward_gflop_per_image: %.3f\n", net_flops(net) / 1e9);
    printf("final_loss: %.4f\n", loss);
    print_layers(net, a.steps, a.batch, elapsed);
    net_free(net);
    return 0;
}
