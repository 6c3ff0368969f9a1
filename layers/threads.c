/* threads.c - one knob for the threads of OpenBLAS and of the OpenMP loops. */
#include <cblas.h>
#include <omp.h>

#include "layers.h"

/* n > 0: the layers use n threads. Parallelism comes from OpenMP teams
 * (the convolution splits images over a team, each member calling a
 * single-threaded sgemm; the fully connected layer splits columns), so
 * OpenBLAS itself stays on one thread: its own worker threads would compete
 * with the team for the cores, and changing OpenBLAS's thread count while a
 * team member may be inside a GEMM is not safe. n <= 0 leaves OpenMP as it is
 * but still keeps OpenBLAS on one thread. oneDNN (the convolutions of
 * conv_dnnl.c) is built on the same OpenMP runtime and takes its thread
 * count from omp_get_max_threads(), so this one setting governs it too; its
 * primitives are planned per thread count. */
void layers_set_threads(int n)
{
    openblas_set_num_threads(1);
    if (n > 0)
        omp_set_num_threads(n);
}

/* Threads the element-wise loops would use now (OpenMP's current setting). */
int layers_get_threads(void) { return omp_get_max_threads(); }
