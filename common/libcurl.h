// libcurl's function table, loaded through common/dynlib when a run first needs
// HTTP (--ping, fleet mode's etcd client). Linked into cronrun, libcurl and what it
// pulls in (TLS, HTTP/2, IDN, LDAP, SSH, ...) would be loaded and relocated by
// every run; loaded here, only the runs that use it pay. The function types are
// the header's own, so a mismatch is a build error.
//
// The first successful load() also runs curl_global_init, once per process; it
// must happen on the main thread before any thread that uses libcurl exists
// (libcurl's rule). The library and its global state are kept for the life of
// the process (no curl_global_cleanup: a second user could still hold handles).
#pragma once

// The functions are called through pointers, not the type-checking macros.
#ifndef CURL_DISABLE_TYPECHECK
#define CURL_DISABLE_TYPECHECK
#endif
#include <curl/curl.h>

#include "common/error.h"

namespace cronrun::libcurl {

struct Api {
  decltype(&::curl_global_init) global_init;
  decltype(&::curl_easy_init) easy_init;
  decltype(&::curl_easy_setopt) easy_setopt;
  decltype(&::curl_easy_perform) easy_perform;
  decltype(&::curl_easy_cleanup) easy_cleanup;
  decltype(&::curl_easy_getinfo) easy_getinfo;
  decltype(&::curl_easy_strerror) easy_strerror;
  decltype(&::curl_slist_append) slist_append;
  decltype(&::curl_slist_free_all) slist_free_all;
  decltype(&::curl_url) url;
  decltype(&::curl_url_cleanup) url_cleanup;
  decltype(&::curl_url_set) url_set;
  decltype(&::curl_url_get) url_get;
  decltype(&::curl_url_strerror) url_strerror;
  decltype(&::curl_free) free;
};

// The table, loading libcurl (libcurl.so.4, else libcurl-gnutls.so.4) and running
// curl_global_init on the first call. An error names the library and what failed;
// it is the same on every later call.
Result<const Api*> load();

// Whether load() has mapped libcurl into this process (tests: a run that does not
// need HTTP must not map it).
bool loaded();

}  // namespace cronrun::libcurl
