occkd_test(test_objectives SOURCES ${OCCKD_TEST_DIR}/test_objectives.c ${CMAKE_SOURCE_DIR}/trainer/objectives.c
           LIBS occkd_layers LABELS unit)
occkd_test(test_objectives_net SOURCES ${OCCKD_TEST_DIR}/test_objectives_net.c ${CMAKE_SOURCE_DIR}/trainer/objectives.c
           LIBS occkd_layers LABELS unit)
