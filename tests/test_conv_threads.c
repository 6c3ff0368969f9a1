/* test_conv_threads.c - the first convolution pass of a process, with one
 * OpenMP thread and then two, gives the same outputs and gradients (up to
 * the order of sums). It once did not: OpenBLAS started on its default
 * thread count and the first pass computed wrong d_x and weight gradients
 * until a team pass pinned OpenBLAS to one thread. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "gradcheck.h"

static void pass(Layer *l, int n, int threads, const float *x, const float *dy, float *y, float *dx)
{
    omp_set_num_threads(threads);
    Pass p = {.n = n, .training = 1};
    p.work_bytes = l->ops->workspace(l, n, (size_t)1 << 30);
    p.work = malloc(p.work_bytes);
    const float *xs[1] = {x};
    float *dxs[1] = {dx};
    l->ops->forward(l, &p, xs, y);
    l->ops->backward(l, &p, xs, y, dy, dxs, 0);
    free(p.work);
}

int main(void)
{
    int n = 6;
    Shape in = {8, 34, 34};
    Layer *l = conv_create("c", in, 16, 3, 1, 1, 1, 1, NULL, 0);
    size_t nw = l->param[0].count, nb = l->param[1].count;
    float *par = malloc((nw + nb) * sizeof(float)), *g1 = malloc((nw + nb) * sizeof(float)),
          *g2 = malloc((nw + nb) * sizeof(float));
    fill_uniform(par, nw + nb, 1);
    l->param[0].data = par;
    l->param[1].data = par + nw;
    size_t nx = n * shape_size(in), ny = n * shape_size(l->out);
    float *x = malloc(nx * 4), *dy = malloc(ny * 4), *y1 = malloc(ny * 4), *y2 = malloc(ny * 4), *dx1 = malloc(nx * 4),
          *dx2 = malloc(nx * 4);
    fill_uniform(x, nx, 2);
    fill_uniform(dy, ny, 3);
    l->param[0].grad = g1, l->param[1].grad = g1 + nw;
    pass(l, n, 1, x, dy, y1, dx1);
    l->param[0].grad = g2, l->param[1].grad = g2 + nw;
    pass(l, n, 2, x, dy, y2, dx2);
    double ey = 0, ex = 0, eg = 0, mg = 0, mx = 0;
    for (size_t i = 0; i < ny; i++)
        ey = fmax(ey, fabs(y1[i] - y2[i]));
    for (size_t i = 0; i < nx; i++) {
        ex = fmax(ex, fabs(dx1[i] - dx2[i]));
        mx = fmax(mx, fabs(dx1[i]));
    }
    for (size_t i = 0; i < nw + nb; i++) {
        eg = fmax(eg, fabs(g1[i] - g2[i]));
        mg = fmax(mg, fabs(g1[i]));
    }
    printf("first pass, 1 vs 2 threads: y %g, d_x %g of %g, gradients %g of %g\n", ey, ex, mx, eg, mg);
    CHECK(ey < 1e-5, "outputs differ by %g", ey);
    CHECK(ex < 1e-5 * mx, "d_x differs by %g (max %g)", ex, mx);
    CHECK(eg < 1e-5 * mg, "weight gradients differ by %g (max %g)", eg, mg);
    layer_destroy(l);
    free(par), free(g1), free(g2), free(x), free(dy), free(y1), free(y2), free(dx1), free(dx2);
    return test_finish("test_conv_threads");
}
