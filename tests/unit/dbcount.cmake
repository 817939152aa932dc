# The DB-query counter, runner side: parsing the (untrusted) counter file, and the
# Session lifecycle against the real preload library on plain programs (no DB
# servers; those are the `db` tier).
cronrun_unit_test(dbcount_parse_test SOURCES dbcount_parse_test.cc LIBS cronrun_dbcount)
cronrun_unit_test(dbcount_session_test SOURCES dbcount_session_test.cc LIBS cronrun_dbcount)
if(TARGET cronrun-db)
  add_dependencies(dbcount_session_test cronrun-db)
endif()
