/* test_blas_kernel_mpi - every rank's OpenBLAS kernels after the kernel check.
 *
 * Each start prints "start pid P" on stderr, then the check runs before
 * MPI_Init as in occkd's programs (a rank may run itself again there: then
 * its pid starts twice, the process and its place under mpirun kept). After
 * MPI_Init rank 0 prints one line per rank, "rank R pid P: <description>",
 * for test_blas_kernel_ranks.sh to judge.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "layers/layers.h"

#define LINE 320

int main(int argc, char **argv)
{
    fprintf(stderr, "start pid %ld\n", (long)getpid());
    blas_kernel_select(argv);
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    char line[LINE] = {0};
    snprintf(line, sizeof line, "pid %ld: %s", (long)getpid(), blas_kernel_describe());
    char *all = rank == 0 ? calloc((size_t)size, LINE) : NULL;
    if (rank == 0 && !all) {
        fprintf(stderr, "test_blas_kernel_mpi: out of memory for %d lines\n", size);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Gather(line, LINE, MPI_CHAR, all, LINE, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (rank == 0)
        for (int r = 0; r < size; r++)
            printf("rank %d %s\n", r, all + (size_t)r * LINE);
    free(all);
    MPI_Finalize();
    return 0;
}
