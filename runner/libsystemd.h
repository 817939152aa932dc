// libsystemd (sd-bus for transient scopes, sd-journal for START/FINISH), opened
// with dlopen by the runs that use it: on a host without systemd, or a run that
// neither places through systemd nor writes to the journal, it is never loaded.
// Linked, its relocations and constructors (and those of the compression and
// crypto libraries it pulls in) were part of every run's start-up
// (bench/startup.sh counts them).
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-journal.h>

#include "common/error.h"

namespace cronrun::sd {

// The functions cronrun calls, typed by libsystemd's own declarations.
struct Api {
  decltype(&::sd_bus_new) bus_new;
  decltype(&::sd_bus_set_address) bus_set_address;
  decltype(&::sd_bus_set_bus_client) bus_set_bus_client;
  decltype(&::sd_bus_start) bus_start;
  decltype(&::sd_bus_unref) bus_unref;
  decltype(&::sd_bus_flush_close_unref) bus_flush_close_unref;
  decltype(&::sd_bus_process) bus_process;
  decltype(&::sd_bus_wait) bus_wait;
  decltype(&::sd_bus_call) bus_call;
  decltype(&::sd_bus_match_signal_async) bus_match_signal_async;
  decltype(&::sd_bus_slot_unref) bus_slot_unref;
  decltype(&::sd_bus_error_free) bus_error_free;
  decltype(&::sd_bus_message_new_method_call) bus_message_new_method_call;
  decltype(&::sd_bus_message_append) bus_message_append;
  decltype(&::sd_bus_message_append_array) bus_message_append_array;
  decltype(&::sd_bus_message_open_container) bus_message_open_container;
  decltype(&::sd_bus_message_close_container) bus_message_close_container;
  decltype(&::sd_bus_message_read) bus_message_read;
  decltype(&::sd_bus_message_unref) bus_message_unref;
  decltype(&::sd_journal_sendv) journal_sendv;
};

// Loads libsystemd.so.0 once per process; later calls return the same table (or
// the same error).
Result<const Api*> api();

}  // namespace cronrun::sd
