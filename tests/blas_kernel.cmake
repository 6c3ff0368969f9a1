# The OpenBLAS kernel check rank by rank under mpirun: each rank runs itself
# again with the best core before MPI_Init (test switch
# OCCKD_BLAS_TREAT_AS_FALLBACK=1); a user's OPENBLAS_CORETYPE is kept on each.
# (blas_kernel_check in trainer_bench.cmake covers occkd_bench and occkd_train.)
add_executable(test_blas_kernel_mpi ${OCCKD_TEST_DIR}/test_blas_kernel_mpi.c)
target_link_libraries(test_blas_kernel_mpi PRIVATE occkd_layers MPI::MPI_C)
add_test(NAME blas_kernel_ranks
         COMMAND ${OCCKD_TEST_DIR}/test_blas_kernel_ranks.sh ${MPIEXEC_EXECUTABLE} $<TARGET_FILE:test_blas_kernel_mpi>)
set_tests_properties(blas_kernel_ranks PROPERTIES TIMEOUT 60 LABELS mpi)
