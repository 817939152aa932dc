#include "runner/job_env.h"

namespace cronrun {

JobEnv JobEnv::from(char** envp) {
  JobEnv env;
  size_t n = 0;
  for (char** e = envp; e && *e; ++e) ++n;
  env.entries_.reserve(n + 8);  // room for cronrun's own variables
  for (char** e = envp; e && *e; ++e) env.set_entry(*e);
  return env;
}

size_t JobEnv::find(std::string_view name) const {
  for (size_t i = 0; i < entries_.size(); ++i) {
    const std::string& e = entries_[i];
    if (e.size() > name.size() && e[name.size()] == '=' && std::string_view(e).starts_with(name)) return i;
  }
  return entries_.size();
}

void JobEnv::set(std::string_view name, std::string_view value) {
  std::string entry;
  entry.reserve(name.size() + 1 + value.size());
  entry.append(name).append(1, '=').append(value);
  size_t i = find(name);
  if (i == entries_.size())
    entries_.push_back(std::move(entry));
  else
    entries_[i] = std::move(entry);
}

void JobEnv::set_entry(std::string_view entry) {
  size_t eq = entry.find('=');
  if (eq == std::string_view::npos) return;
  size_t i = find(entry.substr(0, eq));
  if (i == entries_.size())
    entries_.emplace_back(entry);
  else
    entries_[i].assign(entry);
}

void JobEnv::erase(std::string_view name) {
  size_t i = find(name);
  if (i != entries_.size()) entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(i));
}

std::optional<std::string_view> JobEnv::get(std::string_view name) const {
  size_t i = find(name);
  if (i == entries_.size()) return std::nullopt;
  return std::string_view(entries_[i]).substr(name.size() + 1);
}

}  // namespace cronrun
