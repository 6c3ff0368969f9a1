# occkd_train end to end: broken job files, the example jobs, a whole small
# grid, and kill-and-resume.
add_test(NAME train_check_bad_jobs
         COMMAND ${OCCKD_TEST_DIR}/check_bad_jobs.sh $<TARGET_FILE:occkd_train> ${OCCKD_TEST_DIR}/jobs_bad)
set_tests_properties(train_check_bad_jobs PROPERTIES TIMEOUT 120 LABELS unit)

foreach(job quickstart fashion-mnist)
  add_test(NAME train_check_${job} COMMAND occkd_train --check ${CMAKE_SOURCE_DIR}/jobs/${job}.cfg)
  set_tests_properties(train_check_${job} PROPERTIES TIMEOUT 60 LABELS unit)
endforeach()

add_test(NAME grid_tiny
         COMMAND ${OCCKD_TEST_DIR}/test_grid.sh $<TARGET_FILE:occkd_train> $<TARGET_FILE:occkd_report>
                 ${OCCKD_TEST_DIR}/jobs/tiny.cfg ${CMAKE_CURRENT_BINARY_DIR}/grid_tiny)
set_tests_properties(grid_tiny PROPERTIES TIMEOUT 300 LABELS "mpi;e2e")

add_test(NAME grid_kill_and_resume
         COMMAND ${OCCKD_TEST_DIR}/test_resume.sh $<TARGET_FILE:occkd_train> ${OCCKD_TEST_DIR}/jobs/resume.cfg
                 ${CMAKE_CURRENT_BINARY_DIR}/grid_resume)
set_tests_properties(grid_kill_and_resume PROPERTIES TIMEOUT 600 LABELS "mpi;e2e")

# Real images Debian ships: Fashion-MNIST with the upper half hidden.
add_test(NAME grid_fashion_mnist
         COMMAND ${OCCKD_TEST_DIR}/test_fashion.sh $<TARGET_FILE:occkd_train> $<TARGET_FILE:occkd_report>
                 ${OCCKD_TEST_DIR}/jobs/fashion-short.cfg ${CMAKE_CURRENT_BINARY_DIR}/grid_fashion)
set_tests_properties(grid_fashion_mnist PROPERTIES TIMEOUT 600 LABELS "mpi;e2e" SKIP_RETURN_CODE 77)

# A diverging cell fails alone; its students are skipped; exit status 1.
add_test(NAME grid_failing_cell
         COMMAND ${OCCKD_TEST_DIR}/test_failing.sh $<TARGET_FILE:occkd_train> $<TARGET_FILE:occkd_report>
                 ${OCCKD_TEST_DIR}/jobs/failing.cfg ${CMAKE_CURRENT_BINARY_DIR}/grid_failing)
set_tests_properties(grid_failing_cell PROPERTIES TIMEOUT 300 LABELS "mpi;e2e")

# The quick-start grid (3 tasks x 3 networks x 5 methods + a fusion), shrunk
# to fit the CI budget: every cell in /summary, every teacher worse on
# occluded faces. jobs/quickstart.sh runs it at full size.
set(QUICK_SETS)
foreach(t 0 1 2)
  list(APPEND QUICK_SETS --set tasks.${t}.data.count=1200)
endforeach()
foreach(o 0 1 2 3)
  list(APPEND QUICK_SETS --set overrides.${o}.epochs=1)
endforeach()
list(APPEND QUICK_SETS --set overrides.4.epochs=3) # the ResNet-50 teachers: as many as the others
add_test(NAME grid_quickstart
         COMMAND ${OCCKD_TEST_DIR}/test_quickstart.sh $<TARGET_FILE:occkd_train> $<TARGET_FILE:occkd_report>
                 ${CMAKE_SOURCE_DIR}/jobs/quickstart.cfg ${CMAKE_CURRENT_BINARY_DIR}/grid_quickstart
                 --set train.epochs=3 --set train.warmup_epochs=0.5 ${QUICK_SETS})
set_tests_properties(grid_quickstart PROPERTIES TIMEOUT 900 LABELS "mpi;e2e")

# The README's h5py example, on the results of grid_tiny.
add_test(NAME readme_h5py_example
         COMMAND ${OCCKD_TEST_DIR}/test_readme_python.sh ${CMAKE_SOURCE_DIR}/README.md
                 ${CMAKE_CURRENT_BINARY_DIR}/grid_tiny/out/results.h5)
set_tests_properties(readme_h5py_example PROPERTIES TIMEOUT 60 LABELS e2e DEPENDS grid_tiny SKIP_RETURN_CODE 77)

# The data streamed from the cache or held in memory: the same results; each
# rank group loads only the data of its own tasks.
add_test(NAME grid_stream_vs_memory
         COMMAND ${OCCKD_TEST_DIR}/test_stream.sh $<TARGET_FILE:occkd_train> ${OCCKD_TEST_DIR}/jobs/stream.cfg
                 ${CMAKE_CURRENT_BINARY_DIR}/grid_stream)
set_tests_properties(grid_stream_vs_memory PROPERTIES TIMEOUT 300 LABELS "mpi;e2e")

# A data set 4x larger than a rank's memory bound: the ranks stream it.
add_test(NAME grid_stream_memory
         COMMAND ${OCCKD_TEST_DIR}/test_stream_memory.sh $<TARGET_FILE:occkd_train>
                 ${OCCKD_TEST_DIR}/jobs/stream-big.cfg ${CMAKE_CURRENT_BINARY_DIR}/grid_stream_memory)
set_tests_properties(grid_stream_memory PROPERTIES TIMEOUT 300 LABELS "mpi;e2e")

# --check estimates disk and memory from the job alone, without the data:
# the study's grid on 16 ranks, and the streamed data memory of the big
# streaming job far below its cache.
add_test(NAME train_check_estimate
         COMMAND sh -c "OCCKD_RANKS=16 '$<TARGET_FILE:occkd_train>' --check --no-path-check '${CMAKE_SOURCE_DIR}/jobs/paper-grid.cfg' &&
                        OCCKD_RANKS=2 '$<TARGET_FILE:occkd_train>' --check '${OCCKD_TEST_DIR}/jobs/stream-big.cfg'")
set_tests_properties(train_check_estimate PROPERTIES TIMEOUT 60 LABELS unit
  PASS_REGULAR_EXPRESSION "task affectnet +cache 41868 MiB on disk.*largest cell [a-z_/+]+: [0-9]+ MiB per rank.*task gender +cache 938 MiB on disk \\(20000 faces of 3x128x128 bytes\\), data memory [0-9]+\\.[0-9] MiB per rank \\(streamed\\)")

# A checkpoint of 2 ranks resumes on 1, then the grid finishes on 4.
add_test(NAME grid_elastic_resume
         COMMAND ${OCCKD_TEST_DIR}/test_elastic.sh $<TARGET_FILE:occkd_train> $<TARGET_FILE:occkd_report>
                 ${OCCKD_TEST_DIR}/jobs/resume.cfg ${CMAKE_CURRENT_BINARY_DIR}/grid_elastic)
set_tests_properties(grid_elastic_resume PROPERTIES TIMEOUT 300 LABELS "mpi;e2e")

# The output folder: checked before anything trains (a file as output is
# refused by --check and by a run), held by one run at a time (a second run
# is refused naming the holder; a killed run's lock is taken over).
add_test(NAME grid_output_folder
         COMMAND ${OCCKD_TEST_DIR}/test_output.sh $<TARGET_FILE:occkd_train> ${OCCKD_TEST_DIR}/jobs/tiny.cfg
                 ${CMAKE_CURRENT_BINARY_DIR}/grid_output)
set_tests_properties(grid_output_folder PROPERTIES TIMEOUT 300 LABELS "mpi;e2e")

# Nothing stale or foreign reused: a finished run rerun with other settings is
# refused naming them; a new model trains only its own cells; a copied result
# or checkpoint of another cell is refused.
add_test(NAME grid_stale_files
         COMMAND ${OCCKD_TEST_DIR}/test_stale.sh $<TARGET_FILE:occkd_train> ${OCCKD_TEST_DIR}/jobs/tiny.cfg
                 ${CMAKE_CURRENT_BINARY_DIR}/grid_stale)
set_tests_properties(grid_stale_files PROPERTIES TIMEOUT 300 LABELS "mpi;e2e")

# A bad image decoded by rank 1 with on_bad_sample = "fail": its message
# reaches rank 0's output; the run exits 2 (invalid input) before training.
add_test(NAME grid_bad_data
         COMMAND ${OCCKD_TEST_DIR}/test_bad_data.sh $<TARGET_FILE:occkd_train> ${CMAKE_CURRENT_BINARY_DIR}/grid_bad_data)
set_tests_properties(grid_bad_data PROPERTIES TIMEOUT 120 LABELS "mpi;e2e")

# The fault matrix: kills at several points, a stalled rank and the
# watchdog, signals to the launcher and to the ranks, a full disk during a
# checkpoint and during the cache build, a read-only output; each with its
# status and message, no finished result lost, and a rerun equal to an
# uninterrupted run.
add_test(NAME grid_fault_matrix
         COMMAND ${OCCKD_TEST_DIR}/test_faults.sh $<TARGET_FILE:occkd_train> ${OCCKD_TEST_DIR}/jobs/tiny.cfg
                 ${CMAKE_CURRENT_BINARY_DIR}/grid_faults)
set_tests_properties(grid_fault_matrix PROPERTIES TIMEOUT 900 LABELS "mpi;e2e")

# The step after a 2-rank checkpoint resumes on 1 and on 4 ranks agrees with
# the uninterrupted run's; then the grid finishes on 4.
add_test(NAME grid_elastic_step
         COMMAND ${OCCKD_TEST_DIR}/test_elastic_step.sh $<TARGET_FILE:occkd_train> $<TARGET_FILE:occkd_report>
                 ${OCCKD_TEST_DIR}/jobs/elastic_step.cfg ${CMAKE_CURRENT_BINARY_DIR}/grid_elastic_step)
set_tests_properties(grid_elastic_step PROPERTIES TIMEOUT 300 LABELS "mpi;e2e")

# Every example job validates as shipped (their data paths are the user's to
# edit, so only the paths go unchecked). Not a unit test: the estimates of
# the full-size jobs take minutes under the sanitizers.
add_test(NAME jobs_examples_check
         COMMAND sh -c "for j in '${CMAKE_SOURCE_DIR}'/jobs/*.cfg; do '$<TARGET_FILE:occkd_train>' --check --no-path-check \"$j\" >/dev/null || { echo \"$j does not validate\"; exit 1; }; echo \"$j: valid\"; done")
set_tests_properties(jobs_examples_check PROPERTIES TIMEOUT 60 LABELS e2e)
