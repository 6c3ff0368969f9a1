# occkd_report: the table, CSV and training-curve plot of a results.h5.
# The plot needs PLplot with its cairo driver (libplplot-dev,
# plplot-driver-cairo; jobs/setup-debian.sh installs them); without it the
# program builds and --plot fails with a message saying so.
if(TARGET occkd_report)
  pkg_check_modules(PLPLOT IMPORTED_TARGET plplot)
  if(PLPLOT_FOUND)
    target_link_libraries(occkd_report PRIVATE PkgConfig::PLPLOT)
    target_compile_definitions(occkd_report PRIVATE OCCKD_HAVE_PLPLOT=1)
    set(REPORT_PLOT_ARG plot)
  else()
    message(WARNING "PLplot not found (pkg-config plplot): occkd_report --plot is disabled")
    set(REPORT_PLOT_ARG noplot)
  endif()
endif()

# The test writes small results files (with results_write, and by hand in
# the documented layout), runs the program on them and checks its table,
# CSV, image and error messages.
if(TARGET occkd_report AND TARGET occkd_checkpoints AND EXISTS ${OCCKD_TEST_DIR}/test_report.c)
  occkd_test(test_report SOURCES ${OCCKD_TEST_DIR}/test_report.c LIBS occkd_checkpoints PkgConfig::HDF5 PkgConfig::STB
             ARGS $<TARGET_FILE:occkd_report> ${CMAKE_CURRENT_BINARY_DIR}/report_fixtures ${REPORT_PLOT_ARG}
             LABELS unit)
  add_dependencies(test_report occkd_report)
  # Under the sanitizers: fontconfig's caches and PLplot's loaded drivers
  # (libltdl) live until the process ends; only those are not leaks of ours.
  file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/report_lsan.supp "leak:libfontconfig.so\nleak:libltdl.so\n")
  set_property(TEST test_report APPEND PROPERTY ENVIRONMENT
               "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_BINARY_DIR}/report_lsan.supp")
endif()
