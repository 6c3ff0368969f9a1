/* test_distill_synth.c - the study in miniature on synthetic faces, under
 * mpirun: a teacher trained on clean faces, then `student`, `kd` and
 * `triplet` students on faces whose upper half a VR headset hides.
 *
 * Asserts what the study is about: the teacher is good on clean faces and
 * clearly worse on occluded ones, and every student beats the teacher on
 * occluded faces. Prints the accuracies, McNemar p-values against `student`,
 * images per second and the allreduce wait share.
 *
 * The network is VGG-f at 1/8 width on 64 px grey faces, the quick start's
 * smallest setting: it trains at about 2,000 images/s on two cores, and
 * plain SGD (no batch normalisation) needs a dozen epochs to leave its
 * initial plateau, so the teacher gets 16 short epochs of 2,800 faces.
 *
 *   test_distill_synth [faces] [epochs] [arch] [width] [lr] [side]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "trainer/trainer.h"

static Comm comm;

#define TEACHER_CLEAN_MIN 0.60 /* accuracy over 8 expressions; chance is 0.125 */
#define OCCLUSION_DROP_MIN 0.10 /* the teacher loses at least this much under the headset */

static Arch arch = ARCH_VGG_F;
static float width = 0.125f, lr0 = 0.01f;
static int side = 64; /* VGG-f needs at least 63 px */

static Net *make_net(int batch)
{
    NetSpec s = netspec_default(arch);
    s.input = side;
    s.channels = 1;
    s.width = width;
    s.fc = arch == ARCH_RESNET50 ? 0 : 64;
    s.classes = getenv("DISTILL_IDX") ? 10 : 8;
    s.dropout = arch == ARCH_RESNET50 ? 0 : 0.3f;
    char err[256];
    Net *n = net_create(&s, batch, 0, err, sizeof err);
    if (!n)
        comm_abort_all(&comm, err);
    return n;
}

static void run(TrainConfig *c, Net *net, Net *teacher, const Dataset *d, const LoaderOptions *base)
{
    TrainState st;
    train_state_init(&st, net);
    TrainEnv env = {.comm = &comm, .log = comm.rank == 0 ? stdout : NULL};
    char err[1024];
    if (train_cell(c, &env, net, teacher, d, base, &st, err, sizeof err))
        comm_abort_all(&comm, err);
    if (comm.rank == 0)
        printf("[%s] %.1f images/s, allreduce wait %.1f%% of the time (last epoch), best epoch %lld\n", c->name,
               st.history.rows[st.history.n - 1].images_per_s, 100 * st.history.rows[st.history.n - 1].wait_share,
               (long long)st.run.best_epoch + 1);
    train_state_free(&st);
}

static double test_acc(TrainConfig *c, Net *net, const Dataset *d, const LoaderOptions *base, int occluded,
                       EvalResult *keep)
{
    EvalResult r;
    char err[1024];
    if (evaluate(c, &comm, net, d, base, SPLIT_TEST, occluded, &r, err, sizeof err))
        comm_abort_all(&comm, err);
    double acc = r.metric;
    comm_bcast_bytes(&comm, COMM_SCOPE_GROUP, &acc, sizeof acc, 0);
    if (keep)
        *keep = r;
    else
        eval_result_free(&r);
    return acc;
}

int main(int argc, char **argv)
{
    CommOptions co = {.threads = 0, .watchdog_seconds = 300};
    if (comm_init(&argc, &argv, &co, &comm)) {
        fprintf(stderr, "comm_init: %s\n", comm.error);
        return 1;
    }
    layers_set_threads(comm.threads);
    int faces = argc > 1 ? atoi(argv[1]) : 4000;
    int epochs = argc > 2 ? atoi(argv[2]) : 16;
    if (argc > 3)
        arch_parse(argv[3], &arch);
    if (argc > 4)
        width = (float)atof(argv[4]);
    if (argc > 5)
        lr0 = (float)atof(argv[5]);
    if (argc > 6)
        side = atoi(argv[6]);

    DataOptions o;
    data_options_default(&o);
    if (getenv("DISTILL_IDX")) { /* calibration aid: Fashion-MNIST instead of faces */
        o.source = SOURCE_IDX;
        snprintf(o.path, sizeof o.path, "%s", getenv("DISTILL_IDX"));
        o.limit = faces;
    }
    o.side = side;
    o.channels = 1;
    o.synth_count = faces;
    o.val_fraction = 0.1f;
    o.test_fraction = 0.2f;
    DataComm dc = trainer_datacomm(&comm);
    Dataset d;
    char err[1024];
    char cache[256];
    snprintf(cache, sizeof cache, "%s/occkd-test-distill-cache", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (dataset_load(&o, cache, &dc, &d, err, sizeof err))
        comm_abort_all(&comm, err);
    LoaderOptions base = loader_options_default();
    base.attr = getenv("DISTILL_IDX") ? ATTR_CLASS : ATTR_EXPRESSION;
    base.occ.kind = OCC_VR;
    base.aug.pad = side / 16;
    dataset_channel_stats(&d, SPLIT_TRAIN, base.mean, base.std, err, sizeof err);

    TrainConfig c = train_config_default();
    c.classes = getenv("DISTILL_IDX") ? 10 : 8;
    c.epochs = epochs;
    c.global_batch = 64;
    c.sgd.lr = lr0;
    c.sgd.schedule = SCHED_COSINE;
    c.sgd.warmup_steps = dataset_split_count(&d, SPLIT_TRAIN) / c.global_batch; /* one epoch */
    c.seed = 3;
    c.log_every = 0;
    c.eval_batch = 128;
    Net *teacher = make_net(128);
    net_init(teacher, 1);
    snprintf(c.name, sizeof c.name, "synth/%s/teacher", arch_name(arch));
    c.method = METHOD_TEACHER;
    run(&c, teacher, NULL, &d, &base);
    double t_clean = test_acc(&c, teacher, &d, &base, 0, NULL);
    double t_occ = test_acc(&c, teacher, &d, &base, 1, NULL);
    if (comm.rank == 0)
        printf("teacher: clean %.3f, occluded %.3f\n", t_clean, t_occ);
    CHECK(t_clean >= TEACHER_CLEAN_MIN, "teacher accuracy on clean faces %.3f < %.2f", t_clean, TEACHER_CLEAN_MIN);
    CHECK(t_occ <= t_clean - OCCLUSION_DROP_MIN, "teacher on occluded faces %.3f is not clearly below clean %.3f",
          t_occ, t_clean);

    /* students start from the teacher and fine-tune on occluded faces */
    Method methods[3] = {METHOD_STUDENT, METHOD_KD, METHOD_TRIPLET};
    EvalResult res[3];
    double acc[3];
    c.epochs = epochs / 4 > 0 ? epochs / 4 : 1;
    /* Fine-tuning at half the teacher's peak rate, as the quick start does.
     * At the teacher's own rate the kd student diverges on some BLAS kernels:
     * with a confident teacher (logit spread ~18 against T = 3) the softened
     * distributions stay peaked, so the T^2-scaled KL gradient T (q - p) is up
     * to T times the task loss's and the kd step is about (1 - lambda) +
     * lambda T = 2x the student's; plain VGG-f is at its stability edge at
     * 0.01 and the rounding of the kernels decides whether it recovers. */
    c.sgd.lr = getenv("DISTILL_STUDENT_LR") ? (float)atof(getenv("DISTILL_STUDENT_LR")) : lr0 / 2;
    for (int i = 0; i < 3; i++) {
        Net *s = make_net(128);
        memcpy(s->params, teacher->params, s->n_params * sizeof(float));
        if (s->n_state)
            memcpy(s->state, teacher->state, s->n_state * sizeof(float));
        c.method = methods[i];
        snprintf(c.name, sizeof c.name, "synth/%s/%s", arch_name(arch), method_name(methods[i]));
        run(&c, s, teacher, &d, &base);
        acc[i] = test_acc(&c, s, &d, &base, 1, &res[i]);
        net_free(s);
    }
    if (comm.rank == 0) {
        printf("\n%-10s %10s %12s\n", "method", "occluded", "p vs student");
        printf("%-10s %10.3f %12s\n", "teacher", t_occ, "");
        for (int i = 0; i < 3; i++) {
            double p = i ? paired_p_value(&res[0], &res[i]) : NAN;
            printf("%-10s %10.3f %12.4g\n", method_name(methods[i]), acc[i], p);
        }
    }
    for (int i = 0; i < 3; i++) {
        CHECK(acc[i] > t_occ, "%s (%.3f) does not beat the teacher on occluded faces (%.3f)", method_name(methods[i]),
              acc[i], t_occ);
        eval_result_free(&res[i]);
    }
    net_free(teacher);
    dataset_free(&d);
    int64_t failures = g_failures;
    comm_sum_i64(&comm, COMM_SCOPE_WORLD, &failures, 1);
    comm_finalize(&comm);
    if (failures) {
        fprintf(stderr, "test_distill_synth: %lld failure(s)\n", (long long)failures);
        return 1;
    }
    printf("test_distill_synth: all checks passed\n");
    return 0;
}
