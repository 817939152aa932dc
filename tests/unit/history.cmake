# Run record JSON and the SQLite history store (common/run_record.cc, common/history*.cc).
cronrun_unit_test(history_test SOURCES history_test.cc LIBS cronrun_history)
# The run journal: format, reader, fold, rotation, read-only merge (common/journal.cc).
cronrun_unit_test(journal_test SOURCES journal_test.cc LIBS cronrun_history)
# A journal consumer beside the fold (the fleet forwarder's cursor): order, resume, rotation.
cronrun_unit_test(journal_consumer_test SOURCES journal_consumer_test.cc LIBS cronrun_history)
