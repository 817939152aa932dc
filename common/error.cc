// Formatting of Error values; nothing here allocates more than the message needs.
#include "common/error.h"

#include <cstring>

namespace cronrun {

const char* to_string(ErrorKind k) {
  switch (k) {
    case ErrorKind::other: return "other";
    case ErrorKind::usage: return "usage";
    case ErrorKind::config: return "config";
    case ErrorKind::system: return "system";
    case ErrorKind::history: return "history";
    case ErrorKind::not_found: return "not found";
    case ErrorKind::permission: return "permission";
    case ErrorKind::busy: return "busy";
    case ErrorKind::corrupt: return "corrupt";
    case ErrorKind::newer: return "newer";
  }
  return "other";
}

Error Error::sys(std::string op, std::string path, int err) {
  Error e;
  e.kind_ = ErrorKind::system;
  e.errno_ = err;
  e.op_ = std::move(op);
  e.path_ = std::move(path);
  return e;
}

Error&& Error::context(std::string what) && {
  context_.push_back(std::move(what));
  return std::move(*this);
}

Error& Error::context(std::string what) & {
  context_.push_back(std::move(what));
  return *this;
}

std::string Error::message() const {
  std::string out;
  for (auto it = context_.rbegin(); it != context_.rend(); ++it) {
    out += *it;
    out += ": ";
  }
  if (!op_.empty()) {
    out += op_;
    if (!path_.empty()) {
      out += ' ';
      out += path_;
    }
    if (errno_ != 0) {
      out += ": ";
      out += std::strerror(errno_);
    }
    if (!message_.empty()) {
      out += ": ";
      out += message_;
    }
  } else {
    out += message_;
    if (errno_ != 0) {
      out += ": ";
      out += std::strerror(errno_);
    }
  }
  return out;
}

}  // namespace cronrun
