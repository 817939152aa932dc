#include "common/libcurl.h"

#include <fmt/format.h>

#include <atomic>
#include <optional>

#include "common/dynlib.h"

namespace cronrun::libcurl {
namespace {

std::atomic<bool> g_mapped{false};

Result<Api> open_api() {
  // The OpenSSL build, else the GnuTLS one (same ABI, another soname).
  auto lib = DynLib::open("libcurl.so.4");
  if (!lib) {
    auto gnutls = DynLib::open("libcurl-gnutls.so.4");
    if (!gnutls) return std::unexpected(std::move(lib.error()).context("libcurl could not be loaded; install libcurl4"));
    lib = std::move(gnutls);
  }
  g_mapped = true;
  Api a{};
  std::optional<Error> missing;
  auto sym = [&](auto& fn, const char* name) {
    auto s = lib->symbol<std::remove_reference_t<decltype(fn)>>(name);
    if (s)
      fn = *s;
    else if (!missing)
      missing = std::move(s.error());
  };
  sym(a.global_init, "curl_global_init");
  sym(a.easy_init, "curl_easy_init");
  sym(a.easy_setopt, "curl_easy_setopt");
  sym(a.easy_perform, "curl_easy_perform");
  sym(a.easy_cleanup, "curl_easy_cleanup");
  sym(a.easy_getinfo, "curl_easy_getinfo");
  sym(a.easy_strerror, "curl_easy_strerror");
  sym(a.slist_append, "curl_slist_append");
  sym(a.slist_free_all, "curl_slist_free_all");
  sym(a.url, "curl_url");
  sym(a.url_cleanup, "curl_url_cleanup");
  sym(a.url_set, "curl_url_set");
  sym(a.url_get, "curl_url_get");
  sym(a.url_strerror, "curl_url_strerror");
  sym(a.free, "curl_free");
  if (missing) return std::unexpected(std::move(*missing));
  if (CURLcode rc = a.global_init(CURL_GLOBAL_DEFAULT); rc != CURLE_OK)
    return fail(fmt::format("{}: curl_global_init: {}", lib->soname(), a.easy_strerror(rc)));
  return a;
}

}  // namespace

Result<const Api*> load() {
  static const Result<Api> api = open_api();
  if (!api) return std::unexpected(api.error());
  return &*api;
}

bool loaded() { return g_mapped; }

}  // namespace cronrun::libcurl
