// `suggest --write`: setting top-level keys of a job config file (JSON with //
// comments, cronrun.json(5)) without losing what a person wrote in it.
//
// nlohmann::json can read comments but not write them back, so instead of
// re-serializing, the edit is textual: the file is tokenized (strings, // and /* */
// comments, nesting), the spans of the top-level values of the keys being set are
// replaced in place, and missing keys are appended before the closing brace.
// Comments, key order, indentation and every other key survive byte for byte. The
// result is parsed again before it is written, so an edit can never produce a
// file cronrun would reject.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.h"

namespace cronrun::prof {

// Returns `text` with each top-level key of `values` set to that value, written as
// cronrun.json(5) spells it (a string; a flag's true/false as a JSON boolean).
// Keys and values are checked against cronrun's option table
// (common/job_options.h): a key the job config may not carry, or a value cronrun
// would refuse, is an error naming it. Empty `text` (a new file) gives a fresh
// object. Errors when `text` is not a JSON object (comments allowed), naming what
// was found.
Result<std::string> set_config_keys(std::string_view text,
                                    const std::vector<std::pair<std::string, std::string>>& values);

// /etc/cronrun/jobs.d/NAME.json for root, else $XDG_CONFIG_HOME/cronrun/jobs.d/NAME.json
// (~/.config when unset) — the file cronrun reads for job NAME.
std::string default_job_config_path(const std::string& job);

// Replaces `path` atomically: writes a fresh temp file beside it (O_EXCL, random
// name, relative to a checked directory fd), fsyncs, renames over, fsyncs the
// directory. A symlink, FIFO, device or directory at `path` is refused, as is
// another user's file in a shared (sticky) directory. Mode and owner carry over
// from an old file root or the caller owns; another user's file only narrows the
// mode (0644 at most); a new file is 0644. Only the default job config directory
// is created when missing; any other directory must exist. `check`, when given,
// is called with the complete temp file before the rename; its error leaves
// `path` as it was and removes the temp file.
Result<void> write_file_atomically(const std::string& path, const std::string& content,
                                   const std::function<Result<void>(const std::string&)>& check = {});

}  // namespace cronrun::prof
