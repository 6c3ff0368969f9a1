/* test_train_mpi.c - distributed training under mpirun.
 *
 *   test_train_mpi equivalence   every method trained with the world split
 *                                into groups of every size (1 rank, 2, ...,
 *                                all); the weights must agree across group
 *                                sizes and be identical within a group;
 *                                bucketed-overlapped vs blocking allreduce.
 *                                Then networks with batch norm (a small
 *                                ResNet-50, VGG-face with batch norm and one
 *                                hidden layer), teacher and kd, synchronised
 *                                batch norm on: the same agreement; and off
 *                                (each rank normalises its slice): a larger
 *                                disagreement, which the measure must see.
 *   test_train_mpi bad-sample    one sample's label is out of range: the rank
 *                                that meets it fails, all ranks leave with its
 *                                message, exit status 1.
 *   test_train_mpi inject R S    rank R reports an error after step S.
 *   test_train_mpi crash R S     rank R dies (no MPI goodbye) after step S.
 *   test_train_mpi bn-cost [N]   what synchronised batch norm adds to a step
 *                                of ResNet-50 at its published widths: the
 *                                forward and backward allreduces of all its
 *                                batch-norm layers, N steps (default 200),
 *                                timed alone; prints ms per step (by hand,
 *                                not a ctest: a test never asserts a time).
 *
 * Small VGG-face (no batch norm) with dropout on, synthetic faces.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gradcheck.h"
#include "trainer/trainer.h"

/* Two runs may disagree by the rounding of differently ordered sums, which
 * shows up as ~1e-6 of how far training moved the weights; now and then a
 * rounding difference also flips a discrete choice (a ReLU or a max-pooling
 * winner within rounding of a tie), which moves a run by ~1e-2 of its
 * motion. A systematic error moves it by far more: the test checks that a
 * 10% change of the learning rate is flagged. */
#define TOL 0.05

static Comm comm;

/* The network of the test's cells: kind 0 the small VGG-face with dropout,
 * 1 a small ResNet-50 (started with zero_init_residual), 2 VGG-face with
 * batch norm, one hidden layer and dropout. */
static int net_kind = 0;
static int sync_bn = 1;

static Net *small_net(int batch)
{
    NetSpec s = netspec_default(net_kind == 1 ? ARCH_RESNET50 : ARCH_VGG_FACE);
    s.input = 32;
    s.channels = 1;
    s.width = 0.0625f;
    s.fc = net_kind == 1 ? 0 : 32;
    s.classes = 8;
    s.dropout = net_kind == 0 ? 0.5f : net_kind == 2 ? 0.3f : 0.0f;
    if (net_kind == 2) {
        s.batchnorm = 1;
        s.fc_layers = 1;
    }
    char err[256];
    Net *n = net_create(&s, batch, 0, err, sizeof err);
    if (!n)
        comm_abort_all(&comm, err);
    return n;
}

static void load_faces(Dataset *d, const char *cache)
{
    DataOptions o;
    data_options_default(&o);
    o.side = 32;
    o.channels = 1;
    o.synth_count = 240;
    o.val_fraction = 0.1f;
    o.test_fraction = 0.1f;
    DataComm dc = trainer_datacomm(&comm);
    char err[1024];
    if (dataset_load(&o, cache, &dc, d, err, sizeof err))
        comm_abort_all(&comm, err);
}

static LoaderOptions base_options(const Dataset *d)
{
    LoaderOptions o = loader_options_default();
    o.attr = ATTR_EXPRESSION;
    o.occ.kind = OCC_VR;
    char err[256];
    dataset_channel_stats(d, SPLIT_TRAIN, o.mean, o.std, err, sizeof err);
    o.background = 1;
    return o;
}

static TrainConfig config(Method m)
{
    TrainConfig c = train_config_default();
    snprintf(c.name, sizeof c.name, "faces/vgg_face/%s", method_name(m));
    c.method = m;
    c.classes = 8;
    c.epochs = 1;
    c.global_batch = 12;
    c.eval_batch = 32;
    c.sgd.lr = 0.01f;
    c.sgd.weight_decay = 5e-4f;
    c.seed = 11;
    c.margin = 0.5f;
    c.log_every = -1;
    c.sync.bucket_bytes = 8192; /* many buckets */
    /* Hardest and semi-hard mining take an argmin over distances: when two
     * candidates are within rounding of each other, the last bits of the
     * weights (which depend on the order of the gradient sums, hence on the
     * number of ranks) decide, and the runs part ways. Random mining keeps
     * the whole distributed path (gather, shared loss, own-slice backward)
     * while making the choice independent of rounding; the mining rules
     * themselves are checked against brute force in test_objectives. */
    c.mining = MINE_RANDOM;
    c.positive = m == METHOD_KD_TRIPLET ? POSITIVE_CLASS : POSITIVE_SAME;
    return c;
}

/* torchvision's zero_init_residual: the last batch norm of every bottleneck
 * starts with gamma 0, so that each block starts as the identity. From
 * net_init alone the small ResNet is too ill-conditioned to compare
 * weights after 16 steps: a 1e-4 change of the learning rate moves them by
 * about half their motion within 4 steps, rounding as much. Started so, the
 * same change moves them by 0.08 of their motion after 16 steps. */
static void zero_init_residual(Net *net)
{
    for (int i = 0; i < net->n_layers; i++) {
        Layer *l = net->layers[i];
        size_t len = strlen(l->name);
        if (len > 4 && strcmp(l->name + len - 4, ".bn3") == 0)
            memset(l->param[0].data, 0, l->param[0].count * sizeof(float));
    }
}

/* Trains one cell; returns its final weights (malloc'ed). A cell starting
 * from teacher_params takes start_state as its batch-norm statistics when
 * set; the statistics it ends with go to trained_state (malloc'ed, the
 * caller frees) when the network has any. */
static float lr_scale = 1.0f;
static const float *start_state;
static float *trained_state;

static float *train(Method m, const float *teacher_params, Net *teacher, const Dataset *d, int blocking, int accum,
                    TrainEnv *env)
{
    TrainConfig c = config(m);
    c.sgd.lr *= lr_scale;
    c.sync_bn = sync_bn;
    c.sync.blocking = blocking;
    c.accum = accum;
    Net *net = small_net(c.global_batch);
    if (teacher_params) {
        memcpy(net->params, teacher_params, net->n_params * sizeof(float));
        if (start_state && net->n_state)
            memcpy(net->state, start_state, net->n_state * sizeof(float));
    } else {
        net_init(net, 5);
        if (net_kind == 1)
            zero_init_residual(net);
    }
    LoaderOptions base = base_options(d);
    TrainState st;
    train_state_init(&st, net);
    char err[1024];
    TrainEnv e = {.comm = &comm, .log = NULL};
    if (!env)
        env = &e;
    int rc = train_cell(&c, env, net, teacher, d, &base, &st, err, sizeof err);
    if (rc) {
        fprintf(stderr, "rank %d: %s\n", comm.rank, err);
        comm_finalize(&comm);
        exit(1);
    }
    if (comm_check_same(&comm, COMM_SCOPE_GROUP, net->params, net->n_params, "trained weights"))
        comm_abort_all(&comm, comm.error);
    float *w = malloc(net->n_params * sizeof(float));
    memcpy(w, net->params, net->n_params * sizeof(float));
    if (net->n_state) {
        free(trained_state);
        trained_state = malloc(net->n_state * sizeof(float));
        memcpy(trained_state, net->state, net->n_state * sizeof(float));
    }
    train_state_free(&st);
    net_free(net);
    return w;
}

static double rel_diff(const float *a, const float *b, size_t n)
{
    double worst = 0, big = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)a[i] - b[i]));
        big = fmax(big, fabs((double)a[i]));
    }
    return worst / big;
}

/* |a - b| / |b - start| in the Euclidean norm: the disagreement between two
 * runs measured against how far training moved the weights. */
static double rel_to_motion(const float *a, const float *b, const float *start, size_t n)
{
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        m += ((double)b[i] - start[i]) * ((double)b[i] - start[i]);
    }
    return sqrt(d / m);
}

static const char *cache_dir(void)
{
    static char dir[256];
    snprintf(dir, sizeof dir, "%s/occkd-test-train-cache", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return dir;
}

static void equivalence_bn(const Dataset *d);

static void equivalence(void)
{
    Dataset d;
    load_faces(&d, cache_dir());
    Net *probe = small_net(12);
    size_t np = probe->n_params;
    net_init(probe, 5); /* the teacher's starting point, as in train() */
    float *ref_init = malloc(np * sizeof(float));
    memcpy(ref_init, probe->params, np * sizeof(float));
    net_free(probe);
    enum { NM = METHOD_COUNT };
    float *ref[NM] = {0};
    int ref_size = 0;
    for (int groups = comm.size; groups >= 1; groups--) {
        if (comm.size % groups)
            continue;
        if (comm_split_groups(&comm, groups))
            comm_abort_all(&comm, comm.error);
        float *w[NM] = {0};
        w[METHOD_TEACHER] = train(METHOD_TEACHER, NULL, NULL, &d, 0, 1, NULL);
        /* students start from the reference teacher, so that each method is
         * compared from the same weights */
        float *start = malloc(np * sizeof(float));
        memcpy(start, comm.rank == 0 && ref[0] ? ref[METHOD_TEACHER] : w[METHOD_TEACHER], np * sizeof(float));
        int have_ref = ref[0] != NULL;
        comm_bcast_bytes(&comm, COMM_SCOPE_WORLD, &have_ref, sizeof have_ref, 0);
        if (have_ref)
            comm_bcast_bytes(&comm, COMM_SCOPE_WORLD, start, np * sizeof(float), 0);
        Net *teacher = small_net(12);
        memcpy(teacher->params, start, np * sizeof(float));
        for (int m = METHOD_STUDENT; m < METHOD_COUNT; m++)
            w[m] = train((Method)m, start, teacher, &d, 0, 1, NULL);
        if (groups == comm.size) {
            /* the measure notices a 10% error in the step size */
            lr_scale = 1.1f;
            float *off = train(METHOD_STUDENT, start, teacher, &d, 0, 1, NULL);
            lr_scale = 1.0f;
            double r = rel_to_motion(off, w[METHOD_STUDENT], start, np);
            if (comm.rank == 0)
                printf("a 10%% larger learning rate moves the student by %.3g of its motion\n", r);
            CHECK(r > 2 * TOL, "the tolerance %g cannot tell a 10%% learning-rate error (%g)", TOL, r);
            free(off);
        }
        if (groups == 1) {
            /* overlapped buckets vs one blocking allreduce over all ranks */
            float *blocking = train(METHOD_KD_TRIPLET, start, teacher, &d, 1, 1, NULL);
            double r = rel_to_motion(blocking, w[METHOD_KD_TRIPLET], start, np);
            if (comm.rank == 0)
                printf("blocking vs bucketed allreduce on %d ranks: %.3g of the motion\n", comm.size, r);
            CHECK(r < TOL, "blocking vs bucketed allreduce differ by %g of the motion", r);
            free(blocking);
        }
        net_free(teacher);
        free(start);
        if (comm.rank == 0) {
            if (!ref[0]) {
                memcpy(ref, w, sizeof w);
                ref_size = comm.group_size;
                printf("reference: groups of %d rank(s)\n", ref_size);
                continue;
            }
            for (int m = 0; m < NM; m++) {
                double r = rel_diff(ref[m], w[m], np);
                double rm = rel_to_motion(w[m], ref[m], m == METHOD_TEACHER ? ref_init : ref[METHOD_TEACHER], np);
                printf("%-10s %d rank(s) per group vs %d: %.3g of the motion (max difference %.3g of the largest "
                       "weight)\n",
                       method_name((Method)m), comm.group_size, ref_size, rm, r);
                CHECK(rm < TOL, "%s: %d vs %d ranks differ by %g of the motion (tolerance %g)",
                      method_name((Method)m), comm.group_size, ref_size, rm, TOL);
                double moved = rel_diff(ref[METHOD_TEACHER], w[m], np);
                if (m != METHOD_TEACHER) {
                    printf("%-10s moved %.3g from its teacher\n", method_name((Method)m), moved);
                    CHECK(moved > 1e-3, "%s did not move away from its teacher (%g)", method_name((Method)m),
                          moved);
                }
            }
        }
        for (int m = 0; m < NM; m++)
            if (comm.rank != 0 || ref[m] != w[m])
                free(w[m]);
    }
    for (int m = 0; m < NM; m++)
        free(ref[m]);
    free(ref_init);
    equivalence_bn(&d);
    dataset_free(&d);
}

/* The networks with batch norm: a teacher from the same initialisation and
 * a kd student taught by the reference teacher, for every group size,
 * against groups of one rank; with sync_bn on they agree as the network
 * without batch norm does. The teacher once more on all ranks with sync_bn
 * off, where each rank normalises its own slice (3 or 4 of the 12 samples):
 * the measure must show that larger difference. */
static void equivalence_bn(const Dataset *d)
{
    static const char *const kind_names[] = {"vgg_face", "resnet50", "vgg_face+bn"};
    for (net_kind = 1; net_kind <= 2; net_kind++) {
        Net *probe = small_net(12);
        size_t np = probe->n_params, ns = probe->n_state;
        net_init(probe, 5); /* the teacher's starting point, as in train() */
        if (net_kind == 1)
            zero_init_residual(probe);
        float *init = malloc(np * sizeof(float));
        memcpy(init, probe->params, np * sizeof(float));
        net_free(probe);
        float *ref_t = NULL, *ref_k = NULL, *ref_state = NULL;
        int ref_size = 0;
        for (int groups = comm.size; groups >= 1; groups--) {
            if (comm.size % groups)
                continue;
            if (comm_split_groups(&comm, groups))
                comm_abort_all(&comm, comm.error);
            sync_bn = 1;
            float *w_t = train(METHOD_TEACHER, NULL, NULL, d, 0, 1, NULL);
            float *st_t = trained_state;
            trained_state = NULL;
            /* kd starts from the reference teacher (weights and statistics) */
            float *start = malloc(np * sizeof(float)), *sst = malloc(ns * sizeof(float));
            int have_ref = ref_t != NULL;
            comm_bcast_bytes(&comm, COMM_SCOPE_WORLD, &have_ref, sizeof have_ref, 0);
            memcpy(start, comm.rank == 0 && have_ref ? ref_t : w_t, np * sizeof(float));
            memcpy(sst, comm.rank == 0 && have_ref ? ref_state : st_t, ns * sizeof(float));
            if (have_ref) {
                comm_bcast_bytes(&comm, COMM_SCOPE_WORLD, start, np * sizeof(float), 0);
                comm_bcast_bytes(&comm, COMM_SCOPE_WORLD, sst, ns * sizeof(float), 0);
            }
            Net *teacher = small_net(12);
            memcpy(teacher->params, start, np * sizeof(float));
            memcpy(teacher->state, sst, ns * sizeof(float));
            start_state = sst;
            /* The small ResNet's kd student started from its trained teacher
             * is too ill-conditioned to compare across rank counts: on one
             * rank a learning rate 1e-6 larger moves its weights after 16
             * steps by 0.013 of their motion, 1e-4 larger by 0.22, so the
             * order of float sums alone parts 2 and 4 ranks from 1 by 0.1 to
             * 0.4 of the motion. Started as its teacher did (zero-initialised
             * residuals), it learns from the trained teacher through the same
             * distributed kd path and agrees to about 1e-7. */
            if (net_kind == 1) {
                start_state = NULL;
                memcpy(start, init, np * sizeof(float));
            }
            float *w_k = train(METHOD_KD, start, teacher, d, 0, 1, NULL);
            start_state = NULL;
            float *w_local = NULL;
            if (groups == 1) { /* all ranks in one group: the smallest slices */
                sync_bn = 0;
                w_local = train(METHOD_TEACHER, NULL, NULL, d, 0, 1, NULL);
                sync_bn = 1;
            }
            net_free(teacher);
            free(start);
            free(sst);
            if (comm.rank == 0 && !ref_t) {
                ref_t = w_t, ref_k = w_k, ref_state = st_t, ref_size = comm.group_size;
                printf("%s: reference: groups of %d rank(s)\n", kind_names[net_kind], ref_size);
                continue;
            }
            if (comm.rank == 0) {
                double rt = rel_to_motion(w_t, ref_t, init, np);
                double rk = rel_to_motion(w_k, ref_k, net_kind == 1 ? init : ref_t, np); /* from where kd started */
                double rs = rel_diff(ref_state, st_t, ns);
                printf("%s sync_bn: %d rank(s) per group vs %d: teacher %.3g, kd %.3g of the motion; batch-norm "
                       "statistics %.3g of the largest\n", kind_names[net_kind], comm.group_size, ref_size, rt, rk, rs);
                CHECK(rt < TOL && rk < TOL, "%s: with sync_bn, %d vs %d ranks differ by %g (teacher), %g (kd) of "
                      "the motion (tolerance %g)", kind_names[net_kind], comm.group_size, ref_size, rt, rk, TOL);
                CHECK(rs < TOL, "%s: with sync_bn, the batch-norm statistics of %d vs %d ranks differ by %g",
                      kind_names[net_kind], comm.group_size, ref_size, rs);
                if (w_local) {
                    double rl = rel_to_motion(w_local, ref_t, init, np);
                    printf("%s per-rank batch norm: %d rank(s) per group vs %d: teacher %.3g of the motion\n",
                           kind_names[net_kind], comm.group_size, ref_size, rl);
                    CHECK(rl > 2 * TOL, "%s: per-rank batch norm on %d ranks differs by only %g from one rank: the "
                          "tolerance %g cannot tell it", kind_names[net_kind], comm.group_size, rl, TOL);
                }
            }
            free(w_t), free(w_k), free(st_t), free(w_local);
        }
        free(ref_t), free(ref_k), free(ref_state), free(init);
    }
    net_kind = 0;
}

static void bad_sample(void)
{
    Dataset d;
    load_faces(&d, cache_dir());
    /* a training sample whose expression label no class has */
    for (int i = 0; i < d.n; i++)
        if (d.split[i] == SPLIT_TRAIN) {
            d.attr_class[ATTR_EXPRESSION][i] = 99;
            break;
        }
    free(train(METHOD_TEACHER, NULL, NULL, &d, 0, 1, NULL));
    dataset_free(&d);
}

typedef struct {
    int rank, step, crash;
} Inject;

static int inject_step(void *user, const TrainState *s, int epoch_end, char *msg, size_t len)
{
    Inject *in = user;
    if (comm.rank == in->rank && s->run.step == in->step) {
        if (in->crash) {
            fprintf(stderr, "rank %d: dying at step %d without a word to MPI\n", comm.rank, in->step);
            fflush(stderr);
            _exit(3);
        }
        snprintf(msg, len, "injected failure on rank %d at step %d", comm.rank, in->step);
        return -1;
    }
    return 0;
}

/* The batch-norm reductions of one ResNet-50 training step, without the
 * compute between them: per layer 2C + 1 doubles in forward order, then 2C
 * in backward order, as Pass.reduce gets them. */
static void bn_cost(int steps)
{
    NetSpec s = netspec_default(ARCH_RESNET50);
    s.input = 32; /* the channels do not depend on the input */
    char err[256];
    Net *net = net_create(&s, 1, 0, err, sizeof err);
    if (!net)
        comm_abort_all(&comm, err);
    int n_bn = 0, most = 0, *ch = malloc((size_t)net->n_layers * sizeof(int));
    double floats = 0;
    for (int i = 0; i < net->n_layers; i++)
        if (strcmp(net->layers[i]->ops->type, "batchnorm") == 0) {
            ch[n_bn] = net->layers[i]->out.c;
            most = ch[n_bn] > most ? ch[n_bn] : most;
            floats += 4.0 * ch[n_bn] + 1;
            n_bn++;
        }
    net_free(net);
    double *v = calloc(2 * (size_t)most + 1, sizeof(double));
    double t[2] = {0, 0}; /* forward, backward */
    for (int k = -10; k < steps; k++) { /* 10 rounds of warm-up */
        comm_barrier(&comm, COMM_SCOPE_WORLD);
        double t0 = comm_now();
        for (int i = 0; i < n_bn; i++)
            if (comm_sum_f64(&comm, COMM_SCOPE_WORLD, v, 2 * ch[i] + 1))
                comm_abort_all(&comm, comm.error);
        double t1 = comm_now();
        for (int i = n_bn - 1; i >= 0; i--)
            if (comm_sum_f64(&comm, COMM_SCOPE_WORLD, v, 2 * ch[i]))
                comm_abort_all(&comm, comm.error);
        double t2 = comm_now();
        if (k >= 0)
            t[0] += t1 - t0, t[1] += t2 - t1;
    }
    double worst[2] = {t[0] / comm.size, t[1] / comm.size}; /* the mean over ranks */
    comm_sum_f64(&comm, COMM_SCOPE_WORLD, worst, 2);
    if (comm.rank == 0)
        printf("bn-cost: resnet50, %d ranks: %d batch-norm layers, %d allreduces of %.0f doubles in all per step: "
               "%.3f ms forward + %.3f ms backward = %.3f ms per step (mean over ranks and %d steps)\n",
               comm.size, n_bn, 2 * n_bn, floats, 1e3 * worst[0] / steps, 1e3 * worst[1] / steps,
               1e3 * (worst[0] + worst[1]) / steps, steps);
    free(v);
    free(ch);
}

int main(int argc, char **argv)
{
    CommOptions co = {.threads = 1, .watchdog_seconds = 60};
    if (comm_init(&argc, &argv, &co, &comm)) {
        fprintf(stderr, "comm_init: %s\n", comm.error);
        return 1;
    }
    layers_set_threads(1);
    const char *mode = argc > 1 ? argv[1] : "equivalence";
    if (strcmp(mode, "equivalence") == 0) {
        equivalence();
    } else if (strcmp(mode, "bn-cost") == 0) {
        bn_cost(argc > 2 ? atoi(argv[2]) : 200);
    } else if (strcmp(mode, "bad-sample") == 0) {
        bad_sample();
    } else if ((strcmp(mode, "inject") == 0 || strcmp(mode, "crash") == 0) && argc == 4) {
        Inject in = {atoi(argv[2]), atoi(argv[3]), strcmp(mode, "crash") == 0};
        Dataset d;
        load_faces(&d, cache_dir());
        TrainEnv env = {.comm = &comm, .after_step = inject_step, .user = &in};
        free(train(METHOD_TEACHER, NULL, NULL, &d, 0, 1, &env));
        dataset_free(&d);
    } else {
        fprintf(stderr, "usage: test_train_mpi equivalence | bad-sample | inject RANK STEP | crash RANK STEP | bn-cost "
                        "[STEPS]\n");
        comm_finalize(&comm);
        return 2;
    }
    /* every rank reports its failures; the group's verdict decides */
    int64_t failures = g_failures;
    comm_sum_i64(&comm, COMM_SCOPE_WORLD, &failures, 1);
    comm_finalize(&comm);
    if (failures) {
        fprintf(stderr, "test_train_mpi %s: %lld failure(s)\n", mode, (long long)failures);
        return 1;
    }
    printf("test_train_mpi %s: all checks passed\n", mode);
    return 0;
}
