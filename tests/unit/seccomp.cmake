# seccomp profiles: the built-in lists, the profile file parser, the compiled
# filter's shape, the record summary and the learned profile (DESIGN §11).
cronrun_unit_test(seccomp_test SOURCES seccomp_test.cc LIBS cronrun_seccomp cronrun_runner)
