# The fuzzers' saved inputs (tests/fixtures/fuzz/<name>/: seeds and every crash the
# fuzzers found), replayed through the same harness code in the normal g++
# sanitized build, one test per file (tests/fuzz/README.md).
include(${CMAKE_SOURCE_DIR}/tests/fuzz/harnesses.cmake)
set(fuzz_sources fuzz_regression_test.cc)
set(fuzz_libs "")
foreach(name ${CRONRUN_FUZZ_HARNESSES})
  list(APPEND fuzz_sources ${CRONRUN_FUZZ_DIR}/${name}_fuzz.cc)
  list(APPEND fuzz_libs ${CRONRUN_FUZZ_LIBS_${name}})
endforeach()
list(REMOVE_DUPLICATES fuzz_libs)
if(TARGET cronrun_planner AND TARGET cronrun_history)
  cronrun_unit_test(fuzz_regression_test SOURCES ${fuzz_sources} LIBS ${fuzz_libs})
  target_compile_definitions(fuzz_regression_test PRIVATE ${CRONRUN_FUZZ_DEFINES})
  # Each saved input is its own test; a new file is picked up at the next build.
  file(GLOB_RECURSE fuzz_fixture_files CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fixtures/fuzz/*)
  set_property(TARGET fuzz_regression_test APPEND PROPERTY OBJECT_DEPENDS ${fuzz_fixture_files})
endif()
