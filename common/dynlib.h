// System libraries cronrun needs only for some runs (libcurl for --ping and fleet
// mode, libsystemd on systemd hosts), loaded when a run needs them instead of at
// every start. Linking libcurl pulls in about thirty more libraries whose
// relocations and constructors cost every run several times cronrun's own
// start-up (measured in bench/startup.sh), though most runs never ping.
//
// Libraries are opened by soname only (the dynamic loader's trusted search path;
// never a path another user could write), RTLD_NOW so that a missing symbol is an
// error here and not a crash mid-run, and kept for the life of the process.
#pragma once

#include <string>

#include "common/error.h"

namespace cronrun {

class DynLib {
 public:
  // `soname`: e.g. "libcurl.so.4". An error names the library and says what the
  // loader said (not installed, wrong architecture).
  static Result<DynLib> open(const char* soname);

  // The symbol `name` as a pointer of the type of `F` (pass the library's own
  // declaration, `decltype(&::curl_easy_init)`, so the header checks the type).
  template <class F>
  Result<F> symbol(const char* name) const {
    auto p = raw_symbol(name);
    if (!p) return std::unexpected(p.error());
    return reinterpret_cast<F>(*p);
  }

  const std::string& soname() const { return soname_; }

 private:
  Result<void*> raw_symbol(const char* name) const;
  void* handle_ = nullptr;  // never closed: the library's own state outlives any caller
  std::string soname_;
};

}  // namespace cronrun
