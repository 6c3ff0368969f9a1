# Data readers, synthetic faces and the HDF5 cache.
if(TARGET occkd_data)
  occkd_test(test_synth SOURCES test_synth.c LIBS occkd_data LABELS unit)
endif()
