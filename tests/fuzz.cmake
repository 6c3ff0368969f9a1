# Fuzz targets (tests/fuzz/README.md). Every build replays each target's seed
# corpus and regression inputs through the target's own code with a small
# main() (fuzz_replay_<target>, label unit, so the sanitizer build runs them
# too). A build configured with -DOCCKD_FUZZ=ON (clang) also builds the
# libFuzzer programs fuzz_<target> (all of them: `cmake --build <dir>
# --target fuzz`) and runs each for a bounded time (label fuzz).
set(OCCKD_FUZZ_DIR ${OCCKD_TEST_DIR}/fuzz)
set(OCCKD_FUZZ_SECONDS 5 CACHE STRING "Seconds each fuzz_<target> test runs its fuzzer (OCCKD_FUZZ builds)")

# target name, then the library it links
set(fuzz_targets
    job_set occkd_trainer
    ferplus occkd_data
    affectnet occkd_data
    idx occkd_data
    utkface_name occkd_data
    image occkd_data
    checkpoint occkd_checkpoints)

if(TARGET occkd_trainer AND TARGET occkd_checkpoints AND TARGET occkd_data)
  add_executable(fuzz_make_seeds ${OCCKD_FUZZ_DIR}/make_seeds.c)
  target_link_libraries(fuzz_make_seeds PRIVATE occkd_checkpoints occkd_data ${MATH_LIB})
  if(OCCKD_FUZZ)
    add_custom_target(fuzz)
  endif()
  list(LENGTH fuzz_targets n_fuzz)
  math(EXPR last "${n_fuzz} - 1")
  foreach(i RANGE 0 ${last} 2)
    math(EXPR j "${i} + 1")
    list(GET fuzz_targets ${i} t)
    list(GET fuzz_targets ${j} lib)
    # regressions/<target> appears with the target's first crash input
    set(inputs ${OCCKD_FUZZ_DIR}/corpus/${t} ${OCCKD_FUZZ_DIR}/regressions/${t})
    add_executable(fuzz_replay_${t} ${OCCKD_FUZZ_DIR}/fuzz_${t}.c ${OCCKD_FUZZ_DIR}/replay.c)
    target_link_libraries(fuzz_replay_${t} PRIVATE ${lib} ${MATH_LIB})
    add_test(NAME fuzz_replay_${t} COMMAND fuzz_replay_${t} ${inputs})
    set_tests_properties(fuzz_replay_${t} PROPERTIES TIMEOUT 120 LABELS unit)
    if(OCCKD_FUZZ)
      add_executable(fuzz_${t} ${OCCKD_FUZZ_DIR}/fuzz_${t}.c)
      target_link_libraries(fuzz_${t} PRIVATE ${lib} ${MATH_LIB})
      target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer)
      target_compile_definitions(fuzz_${t} PRIVATE OCCKD_FUZZING=1)
      add_dependencies(fuzz fuzz_${t})
      # new inputs go to a corpus in the build tree; the seeds are only read
      set(work ${CMAKE_CURRENT_BINARY_DIR}/fuzz-corpus/${t})
      file(MAKE_DIRECTORY ${work})
      add_test(NAME fuzz_${t}
               COMMAND fuzz_${t} -max_total_time=${OCCKD_FUZZ_SECONDS} -timeout=10 -rss_limit_mb=2048
                       -print_final_stats=1 ${work} ${OCCKD_FUZZ_DIR}/corpus/${t})
      set_tests_properties(fuzz_${t} PROPERTIES TIMEOUT 300 LABELS fuzz
                           ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
    endif()
  endforeach()
endif()
