/* test_sgd.c - the optimiser step and the learning-rate schedules of
 * layers/sgd.c, and the thread setting of layers/threads.c.
 *
 * Steps are compared with values worked by hand and with a double-precision
 * transcription of torch.optim.SGD written here; schedules at chosen steps
 * (inside warm-up, at step-decay boundaries, cosine start, midpoint and end);
 * a buffer long enough to run on several threads gives the same bits on one
 * thread and on two; and parameters and learning rates recorded from PyTorch
 * (torch.optim.SGD and its schedulers) by tests/golden/make_sgd_fixture.py.
 */
#include "gradcheck.h"
#include "golden/sgd_fixture.h"

/* -------------------------------------------------------- defaults */

static void test_default(void)
{
    SgdConfig c = sgd_default();
    CHECK(c.lr == 0.01f && c.momentum == 0.9f && c.nesterov == 0 && c.weight_decay == 5e-4f && c.decoupled == 0,
          "defaults lr %g momentum %g nesterov %d wd %g decoupled %d", c.lr, c.momentum, c.nesterov,
          c.weight_decay, c.decoupled);
    CHECK(c.schedule == SCHED_CONSTANT && c.gamma == 0.1f && c.warmup_steps == 0 && c.total_steps == 0 &&
              c.step_size == 0 && c.min_lr == 0.0f,
          "default schedule %d gamma %g warmup %lld total %lld step_size %lld min_lr %g", (int)c.schedule, c.gamma,
          (long long)c.warmup_steps, (long long)c.total_steps, (long long)c.step_size, c.min_lr);
    CHECK(sgd_lr(&c, 0) == 0.01f && sgd_lr(&c, 123456) == 0.01f, "default schedule is not constant");
}

/* ---------------------------------------------------- steps by hand */

/* One parameter p = 1, gradient 0.5 every step, lr 0.1, momentum 0.9; the
 * expected values below are worked out in the comments. */
static void run_two(SgdConfig c, float out[2])
{
    float p = 1.0f, g = 0.5f, v = 0.0f;
    for (int s = 0; s < 2; s++) {
        sgd_step(&c, 0.1f, &p, &g, &v, 1);
        out[s] = p;
    }
}

/* The default configuration with the momentum and weight decay of a case. */
static SgdConfig sgd_case(float momentum, int nesterov, float weight_decay, int decoupled)
{
    SgdConfig c = sgd_default();
    c.momentum = momentum;
    c.nesterov = nesterov;
    c.weight_decay = weight_decay;
    c.decoupled = decoupled;
    return c;
}

static void test_by_hand(void)
{
    static const struct {
        const char *what;
        float momentum;
        int nesterov;
        float weight_decay;
        int decoupled;
        double p1, p2; /* the parameter after each of the two steps */
    } cases[] = {
        /* v = 0.5, p = 0.95; v = 0.95, p = 0.855 */
        {"momentum", 0.9f, 0, 0.0f, 0, 0.95, 0.855},
        /* v = 0.5, u = 0.5 + 0.45, p = 0.905; v = 0.95, u = 0.5 + 0.855, p = 0.7695 */
        {"nesterov", 0.9f, 1, 0.0f, 0, 0.905, 0.7695},
        /* g = 0.6, v = 0.6, p = 0.94; g = 0.5 + 0.094, v = 0.54 + 0.594, p = 0.8266 */
        {"L2 decay", 0.9f, 0, 0.1f, 0, 0.94, 0.8266},
        /* v = 0.5, p = 1 - 0.05 - 0.01 = 0.94; v = 0.95, p = 0.94 - 0.095 - 0.0094 = 0.8356 */
        {"decoupled decay", 0.9f, 0, 0.1f, 1, 0.94, 0.8356},
        /* no momentum, L2 0.1: p = 1 - 0.1 * 0.6 = 0.94; p = 0.94 - 0.1 * 0.594 = 0.8806 */
        {"plain SGD", 0.0f, 0, 0.1f, 0, 0.94, 0.8806},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        SgdConfig c = sgd_case(cases[i].momentum, cases[i].nesterov, cases[i].weight_decay, cases[i].decoupled);
        float r[2];
        run_two(c, r);
        CHECK(fabs(r[0] - cases[i].p1) < 1e-6 && fabs(r[1] - cases[i].p2) < 1e-6, "%s: %.7g %.7g, expected %g %g",
              cases[i].what, r[0], r[1], cases[i].p1, cases[i].p2);
    }
}

/* ------------------------------------------- against a double reference */

/* torch.optim.SGD's update (dampening 0), and SGDW's decoupled decay, in double. */
static void ref_step(const SgdConfig *c, double lr, double *p, const double *grad, double *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double g = grad[i];
        if (!c->decoupled)
            g += c->weight_decay * p[i];
        v[i] = c->momentum * v[i] + g;
        double u = c->nesterov ? g + c->momentum * v[i] : v[i];
        double decay = c->decoupled ? lr * c->weight_decay * p[i] : 0.0;
        p[i] = p[i] - lr * u - decay;
    }
}

static void test_against_reference(void)
{
    enum { M = 37, STEPS = 6 };
    struct {
        const char *name;
        float momentum, wd;
        int nesterov, decoupled;
    } cases[] = {
        {"momentum", 0.9f, 0.0f, 0, 0},      {"momentum+L2", 0.9f, 0.01f, 0, 0},
        {"nesterov+L2", 0.8f, 0.01f, 1, 0},  {"momentum+decoupled", 0.9f, 0.05f, 0, 1},
        {"nesterov+decoupled", 0.9f, 0.05f, 1, 1}, {"plain+L2", 0.0f, 0.02f, 0, 0},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        SgdConfig c = sgd_case(cases[ci].momentum, cases[ci].nesterov, cases[ci].wd, cases[ci].decoupled);
        c.lr = 0.05f;
        c.warmup_steps = 3;
        float p[M], g[M], v[M] = {0};
        double pd[M], gd[M], vd[M] = {0};
        fill_uniform(p, M, 100 + ci);
        for (int i = 0; i < M; i++)
            pd[i] = p[i];
        double worst = 0, moved = 0;
        for (int s = 0; s < STEPS; s++) {
            fill_uniform(g, M, 200 + (uint64_t)s);
            for (int i = 0; i < M; i++)
                gd[i] = g[i];
            float lr = sgd_lr(&c, s);
            sgd_step(&c, lr, p, g, v, M);
            ref_step(&c, lr, pd, gd, vd, M);
        }
        for (int i = 0; i < M; i++) {
            worst = fmax(worst, fabs(p[i] - pd[i]) + fabs(v[i] - vd[i]));
            moved = fmax(moved, fabs(vd[i]));
        }
        CHECK(worst < 2e-6, "%s: after %d steps the float state is off the double reference by %g", cases[ci].name,
              STEPS, worst);
        CHECK(moved > 1e-3, "%s: the reference velocity stayed ~0 (%g); the test checks nothing", cases[ci].name,
              moved);
    }
}

/* L2 and decoupled decay give different trajectories once momentum carries
 * the decay term; with zero momentum and zero gradients they coincide. */
static void test_decay_forms(void)
{
    SgdConfig c = sgd_default();
    c.weight_decay = 0.1f;
    float p1 = 2.0f, p2 = 2.0f, v1 = 0, v2 = 0, zero = 0.0f;
    for (int s = 0; s < 3; s++) {
        c.decoupled = 0;
        sgd_step(&c, 0.5f, &p1, &zero, &v1, 1);
        c.decoupled = 1;
        sgd_step(&c, 0.5f, &p2, &zero, &v2, 1);
    }
    CHECK(fabs(p1 - p2) > 1e-3, "L2 %g and decoupled %g decay agree under momentum", p1, p2);
    CHECK(v2 == 0.0f && v1 != 0.0f, "decoupled decay leaked into the velocity (%g) or L2 did not (%g)", v2, v1);
    /* decoupled with zero gradient: p *= (1 - lr wd) each step */
    CHECK(fabs(p2 - 2.0 * pow(0.95, 3)) < 1e-6, "decoupled decay alone: %.7g, expected %.7g", p2, 2 * pow(0.95, 3));
    c.momentum = 0;
    p1 = p2 = 2.0f;
    v1 = v2 = 0;
    c.decoupled = 0;
    sgd_step(&c, 0.5f, &p1, &zero, &v1, 1);
    c.decoupled = 1;
    sgd_step(&c, 0.5f, &p2, &zero, &v2, 1);
    CHECK(fabs(p1 - p2) < 1e-7, "without momentum L2 %g and decoupled %g should agree", p1, p2);
}

/* ------------------------------------------------------------ schedules */

static void expect_lr(const SgdConfig *c, int64_t step, double want, const char *what)
{
    float got = sgd_lr(c, step);
    CHECK(fabs(got - want) <= 1e-6 * fmax(fabs(want), 1e-3), "%s: lr at step %lld is %.9g, expected %.9g", what,
          (long long)step, got, want);
}

static void test_schedules(void)
{
    SgdConfig c = sgd_default();
    c.lr = 0.1f;

    /* warm-up of 10 steps, then constant: step s < 10 has lr (s+1)/10 */
    c.warmup_steps = 10;
    expect_lr(&c, 0, 0.01, "warm-up");
    expect_lr(&c, 4, 0.05, "warm-up");
    expect_lr(&c, 9, 0.1, "warm-up");
    expect_lr(&c, 10, 0.1, "after warm-up");
    expect_lr(&c, 1000, 0.1, "after warm-up");
    expect_lr(&c, -3, 0.01, "negative step");

    /* step decay every 30 steps, no warm-up */
    c.warmup_steps = 0;
    c.schedule = SCHED_STEP;
    c.step_size = 30;
    c.gamma = 0.1f;
    expect_lr(&c, 0, 0.1, "step decay");
    expect_lr(&c, 29, 0.1, "step decay");
    expect_lr(&c, 30, 0.1 * 0.1, "step decay");
    expect_lr(&c, 59, 0.1 * 0.1, "step decay");
    expect_lr(&c, 60, 0.1 * 0.01, "step decay");
    /* with 5 warm-up steps the boundaries move by 5 */
    c.warmup_steps = 5;
    expect_lr(&c, 2, 0.1 * 3 / 5, "step decay warm-up");
    expect_lr(&c, 34, 0.1, "step decay after warm-up");
    expect_lr(&c, 35, 0.1 * 0.1, "step decay after warm-up");
    /* step_size 0 means no decay */
    c.step_size = 0;
    expect_lr(&c, 500, 0.1, "step decay without a step size");

    /* cosine from 0.1 to 0.001 over steps 10..110 after 10 warm-up steps */
    c.schedule = SCHED_COSINE;
    c.warmup_steps = 10;
    c.total_steps = 110;
    c.min_lr = 0.001f;
    double lr = 0.1f, lo = 0.001f, pi = acos(-1.0);
    expect_lr(&c, 9, lr, "cosine warm-up end");
    expect_lr(&c, 10, lr, "cosine start");
    expect_lr(&c, 35, lo + (lr - lo) * 0.5 * (1 + cos(pi * 25 / 100)), "cosine quarter");
    expect_lr(&c, 60, (lr + lo) / 2, "cosine midpoint");
    expect_lr(&c, 110, lo, "cosine end");
    expect_lr(&c, 5000, lo, "cosine past the end");
    float prev = sgd_lr(&c, 10);
    for (int64_t s = 11; s <= 120; s++) {
        float cur = sgd_lr(&c, s);
        CHECK(cur <= prev, "cosine rises from %g to %g at step %lld", prev, cur, (long long)s);
        prev = cur;
    }
    /* without warm-up the horizon is total_steps itself */
    c.warmup_steps = 0;
    c.total_steps = 100;
    expect_lr(&c, 0, lr, "cosine without warm-up");
    expect_lr(&c, 50, (lr + lo) / 2, "cosine without warm-up midpoint");
    expect_lr(&c, 100, lo, "cosine without warm-up end");
}

/* -------------------------------------------------------- PyTorch fixture */

static void test_pytorch_fixture(void)
{
    for (size_t ci = 0; ci < sizeof sgdfix_cases / sizeof sgdfix_cases[0]; ci++) {
        const SgdFixture *f = &sgdfix_cases[ci];
        SgdConfig c = sgd_default();
        c.lr = f->lr;
        c.momentum = f->momentum;
        c.weight_decay = f->weight_decay;
        c.nesterov = f->nesterov;
        float p[SGDFIX_N], v[SGDFIX_N] = {0};
        memcpy(p, sgdfix_init, sizeof p);
        for (int s = 0; s < SGDFIX_STEPS; s++) {
            sgd_step(&c, sgd_lr(&c, s), p, sgdfix_grad[s], v, SGDFIX_N);
            for (int i = 0; i < SGDFIX_N; i++) {
                float want = f->after[s][i];
                CHECK(fabs(p[i] - want) <= 2e-6 * fmax(1.0, fabs(want)), "torch %s step %d p[%d] = %.9g, expected %.9g",
                      f->name, s, i, p[i], want);
            }
        }
    }
    SgdConfig c = sgd_default();
    c.lr = 0.1f;
    c.warmup_steps = 5;
    for (int s = 0; s < (int)(sizeof sgdfix_warmup5 / sizeof(double)); s++)
        expect_lr(&c, s, sgdfix_warmup5[s], "torch LinearLR warm-up");
    c.warmup_steps = 0;
    c.schedule = SCHED_STEP;
    c.step_size = 3;
    c.gamma = 0.5f;
    for (int s = 0; s < (int)(sizeof sgdfix_step3 / sizeof(double)); s++)
        expect_lr(&c, s, sgdfix_step3[s], "torch StepLR");
    c.schedule = SCHED_COSINE;
    c.total_steps = 8;
    c.min_lr = 0.001f;
    for (int s = 0; s < (int)(sizeof sgdfix_cos8 / sizeof(double)); s++)
        expect_lr(&c, s, sgdfix_cos8[s], "torch CosineAnnealingLR");
}

/* --------------------------------------------------------------- threads */

static void test_threads_deterministic(void)
{
    const size_t n = (size_t)1 << 18; /* long enough to run in parallel */
    float *p1 = malloc(n * sizeof(float)), *p2 = malloc(n * sizeof(float));
    float *v1 = calloc(n, sizeof(float)), *v2 = calloc(n, sizeof(float)), *g = malloc(n * sizeof(float));
    fill_uniform(p1, n, 300);
    memcpy(p2, p1, n * sizeof(float));
    SgdConfig c = sgd_default();
    c.nesterov = 1;
    c.lr = 0.1f;
    int before = layers_get_threads();
    for (int s = 0; s < 3; s++) {
        fill_uniform(g, n, 400 + (uint64_t)s);
        layers_set_threads(1);
        CHECK(layers_get_threads() == 1, "layers_set_threads(1) left %d threads", layers_get_threads());
        sgd_step(&c, c.lr, p1, g, v1, n);
        layers_set_threads(2);
        CHECK(layers_get_threads() == 2, "layers_set_threads(2) left %d threads", layers_get_threads());
        sgd_step(&c, c.lr, p2, g, v2, n);
    }
    CHECK(memcmp(p1, p2, n * sizeof(float)) == 0 && memcmp(v1, v2, n * sizeof(float)) == 0,
          "one and two threads give different parameters");
    layers_set_threads(0);
    CHECK(layers_get_threads() == 2, "layers_set_threads(0) changed the thread count to %d", layers_get_threads());
    layers_set_threads(before);
    free(p1);
    free(p2);
    free(v1);
    free(v2);
    free(g);
}

int main(void)
{
    test_default();
    test_by_hand();
    test_against_reference();
    test_decay_forms();
    test_schedules();
    test_pytorch_fixture();
    test_threads_deterministic();
    return test_finish("test_sgd");
}
