# Occlusion, augmentation, the distributed sampler and the batch loader of
# data/ (occlude.c, augment.c, sampler.c, loader.c). The tests build their
# tiny data sets in memory, so they need no reader and no files.
if(TARGET occkd_data)
  occkd_test(test_occlusion SOURCES ${OCCKD_TEST_DIR}/test_occlusion.c LIBS occkd_data LABELS unit)
  occkd_test(test_sampler SOURCES ${OCCKD_TEST_DIR}/test_sampler.c LIBS occkd_data LABELS unit)
  occkd_test(test_loader SOURCES ${OCCKD_TEST_DIR}/test_loader.c LIBS occkd_data LABELS unit)
endif()
