occkd_test(test_net SOURCES ${OCCKD_TEST_DIR}/test_net.c LIBS occkd_layers LABELS unit)
