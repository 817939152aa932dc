# seccomp filters on real programs (DESIGN §11): the filter loaded in a forked
# child exactly as the runner's spawn does, the listener run by the test as the
# supervisor will. The probe makes single syscalls (keyctl, io_uring_setup,
# ptrace, i386 and x32 entry points) and is never sanitized: it runs under the
# filter, where only its own syscalls should be seen.
add_executable(seccomp-probe seccomp_probe.c)
cronrun_warnings(seccomp-probe)
cronrun_integration_test(seccomp_integration_test SOURCES seccomp_test.cc seccomp_harness.cc LIBS cronrun_seccomp)
add_dependencies(seccomp_integration_test seccomp-probe)
target_compile_definitions(seccomp_integration_test PRIVATE CRONRUN_SECCOMP_PROBE="$<TARGET_FILE:seccomp-probe>")

# seccomp-run: a program under a profile with the test supervisor, for
# bench/seccomp.sh (and by hand) until cronrun itself takes --seccomp.
add_executable(seccomp-run seccomp_run_main.cc seccomp_harness.cc)
cronrun_target(seccomp-run)
target_link_libraries(seccomp-run PRIVATE cronrun_seccomp)

# `cronrun --seccomp` end to end: the real binary, real programs, the run record.
cronrun_integration_test(seccomp_run_test SOURCES seccomp_run_test.cc harness.cc LIBS cronrun_seccomp cronrun_common)
add_dependencies(seccomp_run_test cronrun seccomp-probe)
target_compile_definitions(seccomp_run_test PRIVATE CRONRUN_BIN="$<TARGET_FILE:cronrun>"
                                                    CRONRUN_SECCOMP_PROBE="$<TARGET_FILE:seccomp-probe>")
