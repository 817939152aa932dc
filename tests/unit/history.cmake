# Run record JSON and the SQLite history store (common/run_record.cc, common/history*.cc).
cronrun_unit_test(history_test SOURCES history_test.cc LIBS cronrun_history)
