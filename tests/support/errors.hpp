// What a call fails with, for tests of error paths: one place for the
// try / catch every such test would otherwise write.
#pragma once

#include <string>

#include "common/error.hpp"

namespace testsupport {

struct Outcome {
    tern_status status = TERN_OK; // TERN_OK when nothing was thrown
    std::string message;
};

template <typename Fn> Outcome outcome_of(Fn &&fn) {
    try {
        fn();
        return {};
    } catch (const ternlm::Failure &e) {
        return {e.status(), e.what()};
    }
}

} // namespace testsupport
