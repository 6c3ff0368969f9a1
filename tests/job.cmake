# Job files: parsing, validation, overrides, SHA-256 and the broken files in tests/jobs_bad/.
if(TARGET occkd_trainer)
  occkd_test(test_job SOURCES test_job.c LIBS occkd_trainer ARGS ${CMAKE_SOURCE_DIR} LABELS unit)
endif()
