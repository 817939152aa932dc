#include "common/dynlib.h"

#include <dlfcn.h>

namespace cronrun {

Result<DynLib> DynLib::open(const char* soname) {
  void* h = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* why = ::dlerror();
    return fail(std::string("loading ") + soname + ": " + (why ? why : "unknown dynamic loader error") +
                    " (install the package that provides it)",
                ErrorKind::not_found);
  }
  DynLib lib;
  lib.handle_ = h;
  lib.soname_ = soname;
  return lib;
}

Result<void*> DynLib::raw_symbol(const char* name) const {
  ::dlerror();
  void* p = ::dlsym(handle_, name);
  if (!p) {
    const char* why = ::dlerror();
    return fail(soname_ + ": symbol " + name + " missing (" + (why ? why : "null") + "): a library older than cronrun needs");
  }
  return p;
}

}  // namespace cronrun
