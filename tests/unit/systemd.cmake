# systemd hosts (DESIGN §9): the scope decision, the unit's properties and the
# start protocol against a fake manager; START/FINISH as journal fields and as
# syslog key=value text. The real scopes and journal run in the host tier.
cronrun_unit_test(systemd_scope_test SOURCES systemd_scope_test.cc LIBS cronrun_runner)
cronrun_unit_test(log_event_test SOURCES log_event_test.cc LIBS cronrun_runner)
