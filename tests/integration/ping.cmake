# --ping against a real HTTP server on loopback (ping_server.py records every
# request): start/finish signals, run ids, bodies, retries, bounds. No cgroups.
cronrun_integration_test(ping_integration_test SOURCES ping_test.cc harness.cc LIBS cronrun_common)
add_dependencies(ping_integration_test cronrun)
target_compile_definitions(ping_integration_test PRIVATE CRONRUN_BIN="$<TARGET_FILE:cronrun>"
                                                         PING_SERVER="${CMAKE_CURRENT_SOURCE_DIR}/ping_server.py")
