# checkpoints/: checkpoints, weight files, cell results and results.h5.
occkd_test(test_checkpoints SOURCES ${OCCKD_TEST_DIR}/test_checkpoints.c LIBS occkd_checkpoints PkgConfig::HDF5
           LABELS unit)
