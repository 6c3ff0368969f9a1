# comm/: the MPI layer, run under mpirun with 1 to 4 ranks, plus its failure
# modes (a rank that never arrives, a fatal error on one rank), which must end
# the whole job with a non-zero status and a message within seconds.
if(TARGET occkd_comm)
  add_executable(test_comm ${OCCKD_TEST_DIR}/test_comm.c)
  target_link_libraries(test_comm PRIVATE occkd_comm ${MATH_LIB})
  target_include_directories(test_comm PRIVATE ${OCCKD_TEST_DIR})

  # Two ranks also run in the sanitizer build (label unit); the other sizes
  # run in the optimised build only.
  foreach(np 1 2 3 4)
    if(np EQUAL 2)
      occkd_mpi_test(comm_np${np} NP ${np} COMMAND test_comm LABELS unit)
    else()
      occkd_mpi_test(comm_np${np} NP ${np} COMMAND test_comm)
    endif()
    set_tests_properties(comm_np${np} PROPERTIES TIMEOUT 120)
  endforeach()

  # name, ranks, mode, expected message
  set(comm_failure_modes
      "comm_watchdog_polled_np2|2|--watchdog-polled|watchdog: rank 0 waited .* in gradient allreduce at step 7, bucket 1 of 10"
      "comm_watchdog_polled_np3|3|--watchdog-polled|watchdog: rank [01] waited .* in gradient allreduce at step 7, bucket 1 of 10"
      "comm_watchdog_blocking_np2|2|--watchdog-blocking|watchdog: rank 0 waited .* in blocking gradient allreduce at step 7"
      "comm_abort_np3|3|--abort|fatal error on rank 1: injected fatal error: checkpoint unreadable")
  foreach(mode ${comm_failure_modes})
    string(REPLACE "|" ";" fields "${mode}")
    list(GET fields 0 name)
    list(GET fields 1 np)
    list(GET fields 2 flag)
    list(GET fields 3 regex)
    add_test(NAME ${name}
             COMMAND sh ${OCCKD_TEST_DIR}/comm_watchdog.sh ${MPIEXEC_EXECUTABLE} ${np} $<TARGET_FILE:test_comm>
                     ${flag} "${regex}")
    set_tests_properties(${name} PROPERTIES TIMEOUT 60 LABELS mpi
                         ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1")
  endforeach()
endif()
