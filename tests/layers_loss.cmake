# Losses, optimiser and thread setting of layers/ (loss.c, sgd.c, threads.c).
if(TARGET occkd_layers)
  occkd_test(test_loss SOURCES ${OCCKD_TEST_DIR}/test_loss.c LIBS occkd_layers LABELS unit)
  occkd_test(test_sgd SOURCES ${OCCKD_TEST_DIR}/test_sgd.c LIBS occkd_layers LABELS unit)
endif()
