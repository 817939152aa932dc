# Root's runner against a hostile neighbour (uid 65534) who plants symlinks, FIFOs
# and setgid directories where root's cronrun writes, and a job that replaces its
# own counter files: each attack is refused or defeated, the victim unchanged.
cronrun_integration_test(hostile_integration_test SOURCES hostile_test.cc harness.cc LIBS cronrun_common)
add_dependencies(hostile_integration_test cronrun)
if(TARGET cronrun-db)
  add_dependencies(hostile_integration_test cronrun-db)
endif()
target_compile_definitions(hostile_integration_test PRIVATE CRONRUN_BIN="$<TARGET_FILE:cronrun>")
