// The core's error type. Every failure inside ternlm is a ternlm::Failure carrying
// the C status it maps to; the C ABI catches it at the boundary and stores the
// message for tern_last_error().
#pragma once

#include <cstdarg>
#include <stdexcept>
#include <string>

#include "ternlm/ternlm.h"

namespace ternlm {

class Failure : public std::runtime_error {
public:
    Failure(tern_status status, const std::string &message)
        : std::runtime_error(message), status_(status) {}
    tern_status status() const { return status_; }

private:
    tern_status status_;
};

// printf-style message, then throw.
[[noreturn]] void fail(tern_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

std::string strprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

} // namespace ternlm
