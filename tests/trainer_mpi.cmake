# Distributed training: the same weights for any number of ranks, and a
# failing rank that brings the whole run down with its message.
add_executable(test_train_mpi ${OCCKD_TEST_DIR}/test_train_mpi.c)
target_link_libraries(test_train_mpi PRIVATE occkd_trainer)
target_include_directories(test_train_mpi PRIVATE ${OCCKD_TEST_DIR})

occkd_mpi_test(train_equivalence_np4 NP 4 COMMAND test_train_mpi ARGS equivalence)
occkd_mpi_test(train_equivalence_np3 NP 3 COMMAND test_train_mpi ARGS equivalence)

set(MPIRUN ${MPIEXEC_EXECUTABLE} --allow-run-as-root --oversubscribe ${MPIEXEC_NUMPROC_FLAG})
foreach(case "bad-sample;label 99|out of range|expression"
              "inject 1 3;injected failure on rank 1 at step 3"
              "crash 1 3;dying at step 3")
  list(GET case 0 args)
  list(GET case 1 regex)
  string(REPLACE " " ";" args "${args}")
  list(GET args 0 mode)
  add_test(NAME train_fails_${mode}
           COMMAND ${OCCKD_TEST_DIR}/expect_fail.sh "${regex}" ${MPIRUN} 2 $<TARGET_FILE:test_train_mpi> ${args})
  set_tests_properties(train_fails_${mode} PROPERTIES TIMEOUT 90 LABELS mpi
                       ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1")
endforeach()

# The study in miniature on synthetic faces: VGG-f at 1/8 width on 4,000
# faces of 64 px, teacher 16 epochs, students 4 (about 45 s on 2 cores;
# prints accuracies, p-values, images/s and the allreduce wait share).
add_executable(test_distill_synth ${OCCKD_TEST_DIR}/test_distill_synth.c)
target_link_libraries(test_distill_synth PRIVATE occkd_trainer)
target_include_directories(test_distill_synth PRIVATE ${OCCKD_TEST_DIR})
occkd_mpi_test(distill_synth_np2 NP 2 COMMAND test_distill_synth)
