// `cronprof fleet [status] [--fleet-config FILE] [--quiet-after 1h]`: registers the
// subcommand, finds the fleet config as cronrun does, gathers (fleet_gather.cc)
// and prints (fleet.cc).
//
// Exit codes (profiler/exit_codes.h): 0; 8 when a run is lost or a host has been
// quiet too long; 4 when etcd or the central history could not be read (what
// could be read is still printed); 3 when there is no fleet config; 2 for a bad
// option or a fleet config that does not parse.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>

#include "profiler/central_history.h"
#include "profiler/cli_support.h"
#include "profiler/command.h"
#include "profiler/exit_codes.h"
#include "profiler/fleet.h"
#include "profiler/fleet_source.h"
#include "profiler/text_escape.h"

namespace cronrun::prof {

Command add_fleet(CLI::App& parent, const Global& g) {
  struct Opts {
    std::string view;
    std::string fleet_config;
    std::string quiet_after = "1h";
  };
  auto opts = std::make_shared<Opts>();
  CLI::App* app = parent.add_subcommand(
      "fleet", "Fleet mode: groups, lock holders, runs in progress across hosts, dead letters, quiet hosts");
  app->add_option("view", opts->view, "What to show: status (the default, and the only view)")
      ->check(CLI::IsMember({"status"}));
  app->add_option("--fleet-config", opts->fleet_config,
                  "The fleet config (default: /etc/cronrun/fleet.json for root, else "
                  "$XDG_CONFIG_HOME/cronrun/fleet.json)")
      ->type_name("FILE");
  app->add_option("--quiet-after", opts->quiet_after,
                  "A host whose newest record is older than this is not heard from (default 1h)")
      ->type_name("DURATION");
  return {app, [opts, &g]() -> int {
            double now = now_unix_s();
            auto cutoff = window_option("--quiet-after", opts->quiet_after, now);
            if (!cutoff) return cutoff.error();
            auto source = fleet::find_source(opts->fleet_config);
            if (!source) return source.error();
            // --history postgresql://... wins over the config's "history".
            if (g.central) source->history_uri = g.history_path;
            fleet::FleetView v = fleet::gather(*source, now, now - *cutoff);
            if (g.json) {
              std::printf("%s\n", json_text(fleet::to_json(v), 2).c_str());
            } else {
              std::fputs(fleet::render(v, output_width(g)).c_str(), stdout);
            }
            if (v.etcd_error) print_error("fleet: etcd (" + source->config_path + "): " + *v.etcd_error);
            if (v.history_error) print_error("fleet: central history: " + *v.history_error);
            if (v.etcd_error || v.history_error) return kExitUnreadable;
            return fleet::alerts(v) ? kExitStatusAlert : kExitOk;
          }};
}

}  // namespace cronrun::prof
