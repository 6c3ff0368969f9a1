occkd_test(test_stats SOURCES ${OCCKD_TEST_DIR}/test_stats.c ${CMAKE_SOURCE_DIR}/trainer/stats.c LIBS ${MATH_LIB} LABELS unit)
