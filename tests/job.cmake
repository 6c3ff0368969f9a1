# Job files: parsing, validation, overrides, SHA-256 and the broken files in tests/jobs_bad/.
if(TARGET occkd_trainer)
  occkd_test(test_job SOURCES test_job.c LIBS occkd_trainer ARGS ${CMAKE_SOURCE_DIR} LABELS unit)
  # The same test with one more train key row (JOB_TEST_EXTRA_KEY in trainer/job_keys.c): the job
  # reader's sources are compiled into it with the define, so the row is all that differs.
  file(GLOB job_reader_srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/trainer/job.c ${CMAKE_SOURCE_DIR}/trainer/job_*.c)
  occkd_test(test_job_extra_key SOURCES test_job.c ${job_reader_srcs} LIBS occkd_trainer ARGS ${CMAKE_SOURCE_DIR}
             LABELS unit)
  target_compile_definitions(test_job_extra_key PRIVATE JOB_TEST_EXTRA_KEY)
  # jobs/README.md's key reference is what the key tables print.
  add_executable(test_job_keys test_job_keys.c)
  target_link_libraries(test_job_keys PRIVATE occkd_trainer ${MATH_LIB})
  add_test(NAME job_keys_doc COMMAND ${OCCKD_TEST_DIR}/test_job_keys.sh $<TARGET_FILE:test_job_keys>
                                        ${CMAKE_SOURCE_DIR}/jobs/README.md)
  set_tests_properties(job_keys_doc PROPERTIES TIMEOUT 60 LABELS unit)
endif()
