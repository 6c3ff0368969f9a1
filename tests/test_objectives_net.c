/* test_objectives_net.c - the distillation objectives checked end to end
 * through a small network: the gradient that net_backward gives for
 *   (1 - lambda) CE + lambda T^2 KL(teacher_T || student_T) + beta triplet
 * (the triplet term on the student's embedding layer, positives from a frozen
 * teacher) against central differences of the same objective, summed in
 * double, for a sample of the network's parameters.
 *
 * ReLU and max-pooling kinks (and a mined triple that changes) make the
 * objective non-smooth in places; as in gradcheck.h, elements whose estimates
 * at h and h/2 disagree are stepped around and counted, and the test fails if
 * more than a tenth had to be.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "trainer/trainer.h"

#define N 6
#define K 5

static Net *student, *teacher;
static float *x_s, *x_t;
static int labels[N];
static float T = 3.0f, lambda = 0.6f, beta = 0.8f, margin = 0.5f;

static Net *make(void)
{
    NetSpec s = netspec_default(ARCH_VGG_F);
    s.input = 64;
    s.channels = 1;
    s.width = 0.0625f;
    s.fc = 12;
    s.classes = K;
    s.dropout = 0;
    char err[256];
    Net *n = net_create(&s, N, 0, err, sizeof err);
    if (!n) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return n;
}

/* The objective in double from the networks' float outputs; with grad != 0
 * also runs backward (d_logits and d_embedding from the float losses). */
static double objective(int grad, int use_kd, int use_triplet)
{
    /* the frozen teacher's outputs never change: computed once */
    static float t_copy[N * K], *t_emb;
    size_t e = net_embedding_size(student);
    if (!t_emb) {
        Pass tp = {.n = N, .training = 0};
        memcpy(t_copy, net_forward(teacher, &tp, x_t), sizeof t_copy);
        t_emb = malloc(N * e * sizeof(float));
        memcpy(t_emb, net_embedding(teacher), N * e * sizeof(float));
    }
    float *d_emb = calloc(N * e, sizeof(float));
    char msg[256];
    Pass p = {.n = N, .training = 1, .seed = 4};
    const float *s = net_forward(student, &p, x_s);
    double total = 0, ce = 0, kd = 0;
    for (int i = 0; i < N; i++) {
        double m = -INFINITY, mt = -INFINITY, z = 0, zs = 0, zt = 0;
        for (int k = 0; k < K; k++) {
            m = fmax(m, s[i * K + k]);
            mt = fmax(mt, t_copy[i * K + k] / T);
        }
        double ms = m / T;
        for (int k = 0; k < K; k++) {
            z += exp(s[i * K + k] - m);
            zs += exp(s[i * K + k] / T - ms);
            zt += exp(t_copy[i * K + k] / T - mt);
        }
        ce += m + log(z) - s[i * K + labels[i]];
        for (int k = 0; k < K; k++) {
            double pt = exp(t_copy[i * K + k] / T - mt) / zt;
            double lps = s[i * K + k] / T - ms - log(zs);
            kd += pt * (log(pt) - lps);
        }
    }
    total = (1 - (use_kd ? lambda : 0)) * ce / N + (use_kd ? lambda * T * T * kd / N : 0);
    float tri = 0;
    if (use_triplet)
        triplet_objective(net_embedding(student), t_emb, labels, N, (int)e, MINE_HARDEST, POSITIVE_SAME, margin, 9,
                          grad ? d_emb : NULL, NULL, &tri, msg, sizeof msg);
    total += beta * tri;
    if (grad) {
        float d_out[N * K], d_kd[N * K];
        float v;
        loss_softmax_ce_checked(s, labels, N, K, N, d_out, &v, msg, sizeof msg);
        if (use_kd) {
            loss_kd_checked(s, t_copy, N, K, T, N, d_kd, &v, msg, sizeof msg);
            for (int j = 0; j < N * K; j++)
                d_out[j] = (1 - lambda) * d_out[j] + lambda * d_kd[j];
        }
        for (size_t j = 0; j < N * e; j++)
            d_emb[j] *= beta;
        net_backward(student, &p, d_out, use_triplet ? d_emb : NULL);
    }
    free(d_emb);
    return total;
}

static void check(const char *what, int use_kd, int use_triplet)
{
    objective(1, use_kd, use_triplet);
    float *g = malloc(student->n_params * sizeof(float));
    memcpy(g, student->grads, student->n_params * sizeof(float));
    int checked = 0, skipped = 0, failed = 0;
    for (int t = 0; t < student->n_tensors; t++) {
        Tensor *tn = student->tensors[t];
        for (int k = 0; k < 4; k++) {
            size_t j = (size_t)(k * 2654435761u) % tn->count;
            float *v = &tn->data[j], save = *v;
            double est[2];
            float hs[2] = {4e-4f, 2e-4f};
            for (int r = 0; r < 2; r++) {
                *v = save + hs[r];
                double lp = objective(0, use_kd, use_triplet);
                *v = save - hs[r];
                double lm = objective(0, use_kd, use_triplet);
                est[r] = (lp - lm) / ((double)(save + hs[r]) - (double)(save - hs[r]));
            }
            *v = save;
            double a = g[tn->offset + j], scale = fmax(fmax(fabs(est[1]), fabs(a)), 1e-2);
            checked++;
            if (fabs(est[0] - est[1]) > 0.05 * scale + 1e-4) {
                skipped++;
                continue;
            }
            if (fabs(est[1] - a) > 0.05 * scale + 1e-4) {
                failed++;
                if (failed <= 5)
                    fprintf(stderr, "  %s: tensor %d element %zu: analytic %g, numerical %g\n", what, t, j, a, est[1]);
            }
        }
    }
    printf("%-14s %d parameters checked, %d stepped around, %d failed\n", what, checked, skipped, failed);
    CHECK(failed == 0, "%s: %d gradients disagree with central differences", what, failed);
    CHECK(skipped * 10 <= checked, "%s: %d of %d elements sat on kinks", what, skipped, checked);
    free(g);
}

/* The training step runs the frozen teacher's forward between the student's
 * forward and backward (trainer/train.c micro_step). Nothing the student's
 * backward needs may change by it: the student's gradients must be the same
 * bits with and without the teacher's forward in between, on one thread and
 * on two (conv teams use per-network scratch). */
static void check_teacher_between(int threads)
{
    layers_set_threads(threads);
    size_t e = net_embedding_size(student), nk = (size_t)N * K;
    float *d_out = malloc(nk * sizeof(float)), *g0 = malloc(student->n_params * sizeof(float));
    int same = 1;
    for (int with_teacher = 0; with_teacher < 2; with_teacher++) {
        Pass p = {.n = N, .training = 1, .seed = 4, .step = 7};
        const float *s = net_forward(student, &p, x_s);
        float v;
        char msg[256];
        loss_softmax_ce_checked(s, labels, N, K, N, d_out, &v, msg, sizeof msg);
        if (with_teacher) {
            Pass tp = {.n = N, .training = 0, .seed = 4, .step = 7};
            net_forward(teacher, &tp, x_t);
        }
        float *d_emb = calloc(N * e, sizeof(float));
        for (size_t j = 0; j < N * e; j++)
            d_emb[j] = 0.01f * (float)((j % 7) - 3);
        net_backward(student, &p, d_out, d_emb);
        free(d_emb);
        if (!with_teacher)
            memcpy(g0, student->grads, student->n_params * sizeof(float));
        else
            same = memcmp(g0, student->grads, student->n_params * sizeof(float)) == 0;
    }
    printf("teacher forward between the student's forward and backward (%d thread(s)): gradients %s\n", threads,
           same ? "unchanged" : "CHANGED");
    CHECK(same, "the teacher's forward changed the student's gradients (%d threads)", threads);
    free(d_out);
    free(g0);
    layers_set_threads(1);
}

int main(void)
{
    layers_set_threads(1);
    student = make();
    teacher = make();
    net_init(teacher, 21);
    net_init(student, 22);
    /* biases start at 0, so a hidden (all-zero) region would put every ReLU
     * of the first layer exactly on its kink; move them off it */
    for (int t = 0; t < student->n_tensors; t++)
        if (student->tensors[t]->ndims == 1) {
            fill_uniform(student->tensors[t]->data, student->tensors[t]->count, 100 + t);
            fill_uniform(teacher->tensors[t]->data, teacher->tensors[t]->count, 200 + t);
            for (size_t j = 0; j < student->tensors[t]->count; j++) {
                student->tensors[t]->data[j] *= 0.2f;
                teacher->tensors[t]->data[j] *= 0.2f;
            }
        }
    size_t nx = (size_t)N * shape_size(student->input);
    x_s = malloc(nx * sizeof(float));
    x_t = malloc(nx * sizeof(float));
    fill_uniform(x_t, nx, 5);
    memcpy(x_s, x_t, nx * sizeof(float));
    size_t one = shape_size(student->input);
    /* the student's faces have their upper half hidden under noise (a
     * constant fill would make max pooling choose between exact ties) */
    float *noise = malloc(one / 2 * sizeof(float));
    for (int n = 0; n < N; n++) {
        fill_uniform(noise, one / 2, 300 + n);
        memcpy(x_s + n * one, noise, one / 2 * sizeof(float));
    }
    free(noise);
    for (int i = 0; i < N; i++)
        labels[i] = i % 3;
    double base = objective(1, 1, 1);
    CHECK(isfinite(base) && base > 0, "objective %g", base);
    check("kd", 1, 0);
    check("triplet", 0, 1);
    check("kd+triplet", 1, 1);
    check_teacher_between(1);
    check_teacher_between(2);
    net_free(student);
    net_free(teacher);
    free(x_s);
    free(x_t);
    return test_finish("test_objectives_net");
}
