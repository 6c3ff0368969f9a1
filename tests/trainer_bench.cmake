# occkd_bench prints its figures for each network at a small size.
foreach(model vgg_f vgg_face resnet50)
  if(model STREQUAL "vgg_f")
    set(args --input 64 --width 0.25 --fc 128)
  elseif(model STREQUAL "vgg_face")
    set(args --input 32 --width 0.125 --fc 64 --fc-layers 1 --batchnorm) # the small FER+ network's layout
  else()
    set(args --input 32 --width 0.125)
  endif()
  add_test(NAME bench_${model}
           COMMAND ${OCCKD_TEST_DIR}/bench_smoke.sh $<TARGET_FILE:occkd_bench> --model ${model} ${args}
                   --batch 4 --classes 7 --steps 2 --warmup 1 --threads 2)
  set_tests_properties(bench_${model} PROPERTIES TIMEOUT 120 LABELS unit)
endforeach()

# occkd_databench prints the loader's and the training's figures, streamed and in memory.
add_test(NAME databench_smoke
         COMMAND ${OCCKD_TEST_DIR}/databench_smoke.sh $<TARGET_FILE:occkd_databench> --model vgg_f --input 64 --channels 3
                 --width 0.25 --fc 128 --batch 8 --faces 200 --steps 2 --threads 2
                 --cache ${CMAKE_CURRENT_BINARY_DIR}/databench-cache)
set_tests_properties(databench_smoke PROPERTIES TIMEOUT 120 LABELS unit)

# The OpenBLAS kernel check: a user's choice kept and warned about; the
# automatic correction through its test switch, alone and under mpirun.
add_test(NAME blas_kernel_check
         COMMAND ${OCCKD_TEST_DIR}/test_blas_kernel.sh $<TARGET_FILE:occkd_bench> $<TARGET_FILE:occkd_train>
                 ${OCCKD_TEST_DIR}/jobs/tiny.cfg ${CMAKE_CURRENT_BINARY_DIR}/blas_kernel)
set_tests_properties(blas_kernel_check PROPERTIES TIMEOUT 120 LABELS "mpi;e2e")

# The side-by-side benchmark against PyTorch at tiny sizes: both sides run
# and build networks of equal parameter counts (skipped without python3-torch).
add_test(NAME bench_compare_smoke
         COMMAND ${CMAKE_SOURCE_DIR}/layers/bench/compare.sh --smoke --bench $<TARGET_FILE:occkd_bench>)
set_tests_properties(bench_compare_smoke PROPERTIES TIMEOUT 300 LABELS unit SKIP_RETURN_CODE 77)

# jobs/allreduce-wait.sh on two tiny networks: its jobs train on 2 ranks and
# on one rank of 2 threads, and it finds img/s and the allreduce wait in
# their progress lines (it exits 1 when it does not).
add_test(NAME allreduce_wait_smoke
         COMMAND ${CMAKE_SOURCE_DIR}/jobs/allreduce-wait.sh --smoke --train $<TARGET_FILE:occkd_train> 2
                 ${CMAKE_CURRENT_BINARY_DIR}/allreduce_wait)
set_tests_properties(allreduce_wait_smoke PROPERTIES TIMEOUT 120 LABELS "mpi;e2e")
