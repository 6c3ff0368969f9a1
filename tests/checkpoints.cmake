# checkpoints/: checkpoints, weight files, cell results and results.h5.
occkd_test(test_checkpoints SOURCES ${OCCKD_TEST_DIR}/test_checkpoints.c LIBS occkd_checkpoints PkgConfig::HDF5
           LABELS unit)
# The converted PyTorch fixtures (tests/convert/*.h5, written by
# tests/convert/torchvision_to_occkd.py --make-fixtures, run by hand).
target_compile_definitions(test_checkpoints PRIVATE CONVERT_DIR="${OCCKD_TEST_DIR}/convert")
