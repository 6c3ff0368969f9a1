# Data readers, synthetic faces and the HDF5 cache.
if(TARGET occkd_data)
  occkd_test(test_data_readers SOURCES test_data_readers.c LIBS occkd_data LABELS unit)
  occkd_test(test_synth SOURCES test_synth.c LIBS occkd_data LABELS unit)
  occkd_test(test_cache SOURCES test_cache.c LIBS occkd_data LABELS unit)
  occkd_test(test_fashion_mnist SOURCES test_fashion_mnist.c LIBS occkd_data)
  set_tests_properties(test_fashion_mnist PROPERTIES SKIP_RETURN_CODE 77)
endif()
