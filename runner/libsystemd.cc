#include "runner/libsystemd.h"

#include <optional>
#include <type_traits>

#include "common/dynlib.h"

namespace cronrun::sd {

namespace {

Result<Api> load() {
  auto lib = DynLib::open("libsystemd.so.0");
  if (!lib) return std::unexpected(lib.error());
  Api a{};
  std::optional<Error> missing;
  auto get = [&](auto& fn, const char* name) {
    auto s = lib->symbol<std::remove_reference_t<decltype(fn)>>(name);
    if (s)
      fn = *s;
    else if (!missing)
      missing = s.error();
  };
  get(a.bus_new, "sd_bus_new");
  get(a.bus_set_address, "sd_bus_set_address");
  get(a.bus_set_bus_client, "sd_bus_set_bus_client");
  get(a.bus_start, "sd_bus_start");
  get(a.bus_unref, "sd_bus_unref");
  get(a.bus_flush_close_unref, "sd_bus_flush_close_unref");
  get(a.bus_process, "sd_bus_process");
  get(a.bus_wait, "sd_bus_wait");
  get(a.bus_call, "sd_bus_call");
  get(a.bus_match_signal_async, "sd_bus_match_signal_async");
  get(a.bus_slot_unref, "sd_bus_slot_unref");
  get(a.bus_error_free, "sd_bus_error_free");
  get(a.bus_message_new_method_call, "sd_bus_message_new_method_call");
  get(a.bus_message_append, "sd_bus_message_append");
  get(a.bus_message_append_array, "sd_bus_message_append_array");
  get(a.bus_message_open_container, "sd_bus_message_open_container");
  get(a.bus_message_close_container, "sd_bus_message_close_container");
  get(a.bus_message_read, "sd_bus_message_read");
  get(a.bus_message_unref, "sd_bus_message_unref");
  get(a.journal_sendv, "sd_journal_sendv");
  if (missing) return std::unexpected(*missing);
  return a;
}

}  // namespace

Result<const Api*> api() {
  static const Result<Api> loaded = load();
  if (!loaded) return std::unexpected(loaded.error());
  return &*loaded;
}

}  // namespace cronrun::sd
