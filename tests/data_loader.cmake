# Occlusion, augmentation, the distributed sampler and the batch loader of
# data/ (occlude.c, augment.c, sampler.c, loader.c). The tests build their
# tiny data sets in memory, so they need no reader and no files.
if(TARGET occkd_data)
  occkd_test(test_occlusion SOURCES ${OCCKD_TEST_DIR}/test_occlusion.c LIBS occkd_data LABELS unit)
  occkd_test(test_sampler SOURCES ${OCCKD_TEST_DIR}/test_sampler.c LIBS occkd_data LABELS unit)
  occkd_test(test_loader SOURCES ${OCCKD_TEST_DIR}/test_loader.c LIBS occkd_data LABELS unit)
endif()

# occkd_preview: a small sheet of synthetic faces (its size proves the layout:
# 8 expression rows of 32 px, 2 pairs per row), and a clear usage error.
if(TARGET occkd_preview)
  add_test(NAME preview_synth
           COMMAND occkd_preview --data synth --count 96 --side 32 --per-class 2 --occlusion mask --shape outline
                   --fill noise --augment --out ${CMAKE_CURRENT_BINARY_DIR}/preview_synth.png)
  set_tests_properties(preview_synth PROPERTIES LABELS unit TIMEOUT 60
                       PASS_REGULAR_EXPRESSION "wrote [^\n]*preview_synth.png \\(148 x 310\\)")
  add_test(NAME preview_usage COMMAND occkd_preview --data synth --fill grey --out unused.png)
  set_tests_properties(preview_usage PROPERTIES LABELS unit TIMEOUT 60
                       PASS_REGULAR_EXPRESSION "unknown occlusion fill 'grey' \\(known: black, mean, noise\\)")
endif()
