// The job's environment: cronrun's own, then --env, then cronrun's variables.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cronrun {

// "NAME=value" strings in the order their names first appeared. Setting a name
// again replaces its value in place (the last setting wins, as for a map),
// a new name is appended. Built straight into the vector execve gets: no map,
// no copy per variable beyond the one string it ends up as.
class JobEnv {
 public:
  // Every "NAME=value" of `envp` (entries without '=' are not variables: dropped).
  static JobEnv from(char** envp);

  void set(std::string_view name, std::string_view value);
  // "NAME=value" (as --env gives them); without '=': ignored.
  void set_entry(std::string_view entry);
  void erase(std::string_view name);
  std::optional<std::string_view> get(std::string_view name) const;

  const std::vector<std::string>& entries() const { return entries_; }
  std::vector<std::string> take() && { return std::move(entries_); }

 private:
  // Index of the entry for `name`, or entries_.size().
  size_t find(std::string_view name) const;
  std::vector<std::string> entries_;
};

}  // namespace cronrun
