# Slurm: merging the results files of an array job (occkd_merge), and a real
# one-node Slurm started by the test itself (tests/test_slurm.sh: installs
# slurm-wlm and munge with apt-get when missing, needs root, otherwise skips
# with status 77).
if(TARGET occkd_merge AND TARGET occkd_report AND TARGET occkd_checkpoints)
  occkd_test(test_merge SOURCES ${OCCKD_TEST_DIR}/test_merge.c LIBS occkd_checkpoints PkgConfig::HDF5
             ARGS $<TARGET_FILE:occkd_merge> $<TARGET_FILE:occkd_report> ${CMAKE_CURRENT_BINARY_DIR}/merge_work
             LABELS unit)
  add_dependencies(test_merge occkd_merge occkd_report)
endif()

if(TARGET occkd_train AND TARGET occkd_merge AND TARGET occkd_report)
  add_test(NAME slurm_grid
           COMMAND ${OCCKD_TEST_DIR}/test_slurm.sh ${CMAKE_SOURCE_DIR} $<TARGET_FILE_DIR:occkd_train>
                   ${OCCKD_TEST_DIR}/jobs/tiny.cfg ${CMAKE_CURRENT_BINARY_DIR}/slurm_work)
  set_tests_properties(slurm_grid PROPERTIES TIMEOUT 420 LABELS "slurm;e2e" SKIP_RETURN_CODE 77)
endif()
