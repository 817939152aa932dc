# cronprof logic: percentiles, summary, suggest, config edit, export formats, show.
# Export's Prometheus test runs `promtool check metrics` when promtool is installed
# (Debian package `prometheus`) and skips otherwise.
cronrun_unit_test(profiler_test SOURCES profiler_test.cc LIBS cronrun_planner)
# Files another user may control: cronprof's atomic replace and user-named reads.
if(TARGET cronrun_planner)
  cronrun_unit_test(profiler_files_test SOURCES profiler_files_test.cc LIBS cronrun_planner)
endif()
# Streamed cronprof (one job at a time, listings printed as read) equals the
# whole-history forms on a small real history; memory is measured by
# bench/history_1m.sh, not asserted.
if(TARGET cronrun_planner)
  cronrun_unit_test(profiler_stream_test SOURCES profiler_stream_test.cc LIBS cronrun_planner)
endif()
# `suggest --seccomp`: the proposed profile from learned runs, checked with the
# runner's own profile parser.
cronrun_unit_test(seccomp_suggest_test SOURCES seccomp_suggest_test.cc LIBS cronrun_profiler cronrun_seccomp)
# What cronprof prints: tables fitted to the terminal, JSON schema/time/integer
# forms, and the Prometheus export of a real history (labels, skips, gc counter).
cronrun_unit_test(profiler_output_test SOURCES profiler_output_test.cc LIBS cronrun_planner)
# cronprof on the fleet without servers: the private copy of the central history
# (PostgreSQL rows -> SQLite), gc refused there, `cronprof fleet`'s lost marking,
# groups, quiet hosts, JSON and fitted tables (the servers: tests/fleet/cronprof_*).
cronrun_unit_test(fleet_profiler_test SOURCES fleet_profiler_test.cc LIBS cronrun_profiler)
