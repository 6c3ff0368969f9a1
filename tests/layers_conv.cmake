# Convolution and fully connected layers (layers/conv.c, layers/fc.c,
# layers/gemm_util.c) against plain references and the gradient checker.
occkd_test(test_conv SOURCES ${OCCKD_TEST_DIR}/test_conv.c LIBS occkd_layers LABELS unit)
occkd_test(test_fc SOURCES ${OCCKD_TEST_DIR}/test_fc.c LIBS occkd_layers LABELS unit)
occkd_test(test_conv_threads SOURCES ${OCCKD_TEST_DIR}/test_conv_threads.c LIBS occkd_layers LABELS unit)
