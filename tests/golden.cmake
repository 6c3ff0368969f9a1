# Golden tests: occkd's networks and losses against fixtures written by
# tests/golden/make_fixtures.py (PyTorch, run by hand; the .h5 files are committed).
occkd_test(test_golden SOURCES ${OCCKD_TEST_DIR}/test_golden.c LIBS occkd_layers PkgConfig::HDF5 LABELS unit)
target_compile_definitions(test_golden PRIVATE GOLDEN_DIR="${OCCKD_TEST_DIR}/golden")
