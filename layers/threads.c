/* threads.c - one knob for the threads of OpenBLAS and of the OpenMP loops. */
#include <cblas.h>
#include <omp.h>

#include "layers.h"

/* n > 0: both OpenBLAS and OpenMP use n threads; n <= 0 leaves them as they are. */
void layers_set_threads(int n)
{
    if (n <= 0)
        return;
    openblas_set_num_threads(n);
    omp_set_num_threads(n);
}

/* Threads the element-wise loops would use now (OpenMP's current setting). */
int layers_get_threads(void) { return omp_get_max_threads(); }
