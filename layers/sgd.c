/* sgd.c - stochastic gradient descent with momentum over the flat parameter
 * buffer, and its learning-rate schedules.
 *
 * The update follows PyTorch's torch.optim.SGD (dampening 0):
 *     g = grad + wd * p            (L2 decay; skipped when decoupled)
 *     v = momentum * v + g         (v starts at 0, so the first step has v = g)
 *     u = nesterov ? g + momentum * v : v
 *     p = p - lr * u - (decoupled ? lr * wd * p : 0)
 * The decoupled form is SGDW (Loshchilov & Hutter): decay is applied to the
 * old p, apart from the momentum. Every element is independent, so the loop
 * runs on any number of threads with identical results.
 */
#include <math.h>

#include "layers.h"

/* Shorter buffers stay on one thread: waking the team costs more. */
#define SGD_OMP_MIN ((size_t)1 << 15)

static const double PI = 3.14159265358979323846;

SgdConfig sgd_default(void)
{
    SgdConfig c = {0};
    c.lr = 0.01f;
    c.momentum = 0.9f;
    c.nesterov = 0;
    c.weight_decay = 5e-4f;
    c.decoupled = 0;
    c.schedule = SCHED_CONSTANT;
    c.gamma = 0.1f;
    return c;
}

/* The schedule after warm-up, t steps past its end. */
static double lr_after_warmup(const SgdConfig *c, int64_t t)
{
    double lr = c->lr;
    switch (c->schedule) {
    case SCHED_STEP:
        if (c->step_size > 0)
            return lr * pow((double)c->gamma, (double)(t / c->step_size));
        return lr;
    case SCHED_COSINE: {
        int64_t horizon = c->total_steps - (c->warmup_steps > 0 ? c->warmup_steps : 0);
        if (horizon <= 0)
            return c->min_lr;
        double frac = t >= horizon ? 1.0 : (double)t / (double)horizon;
        return c->min_lr + (lr - c->min_lr) * 0.5 * (1.0 + cos(PI * frac));
    }
    case SCHED_CONSTANT:
    default:
        return lr;
    }
}

/* Learning rate of optimiser step `step` (0-based). With W = warmup_steps > 0,
 * steps 0..W-1 ramp linearly: lr * (step + 1) / W, so step W-1 reaches the
 * base rate. From step W on, with t = step - W:
 *   constant: lr
 *   step:     lr * gamma^floor(t / step_size)      (step_size <= 0: constant)
 *   cosine:   min_lr + (lr - min_lr) * (1 + cos(pi * t / (total - W))) / 2,
 *             t clamped to total - W, so min_lr from step `total` on.
 * Negative steps count as step 0. */
float sgd_lr(const SgdConfig *c, int64_t step)
{
    if (step < 0)
        step = 0;
    if (c->warmup_steps > 0 && step < c->warmup_steps)
        return (float)((double)c->lr * (double)(step + 1) / (double)c->warmup_steps);
    int64_t t = step - (c->warmup_steps > 0 ? c->warmup_steps : 0);
    return (float)lr_after_warmup(c, t);
}

/* params, grads, velocity (n) -> params and velocity updated in place.
 * The update direction is u = a * g + b * v with (a, b) = (1, momentum) for
 * Nesterov and (0, 1) otherwise, which keeps the loop free of branches. */
void sgd_step(const SgdConfig *c, float lr, float *params, const float *grads, float *velocity, size_t n)
{
    const float mu = c->momentum;
    const float l2 = c->decoupled ? 0.0f : c->weight_decay;
    const float shrink = c->decoupled ? lr * c->weight_decay : 0.0f;
    const float a = c->nesterov ? 1.0f : 0.0f;
    const float b = c->nesterov ? mu : 1.0f;
#pragma omp parallel for simd schedule(static) if (n >= SGD_OMP_MIN)
    for (size_t i = 0; i < n; i++) {
        float p = params[i];
        float g = grads[i] + l2 * p;
        float v = mu * velocity[i] + g;
        velocity[i] = v;
        params[i] = p - lr * (a * g + b * v) - shrink * p;
    }
}
