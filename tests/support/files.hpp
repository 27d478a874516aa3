// Paths of the shared models and goldens, and file reading, for the tests.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#ifndef TERNLM_SHARED_DIR
#define TERNLM_SHARED_DIR "../shared"
#endif

namespace testsupport {

inline std::string shared_path(const std::string &rel) { return std::string(TERNLM_SHARED_DIR) + "/" + rel; }

inline std::string read_text(const std::string &path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot read " + path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

inline std::vector<float> read_f32(const std::string &path) {
    const std::string s = read_text(path);
    std::vector<float> v(s.size() / 4);
    std::memcpy(v.data(), s.data(), v.size() * 4);
    return v;
}

// A path in the temporary directory ($TMPDIR or /tmp), unique to this
// process and `name`; the file is removed at scope exit.
struct TempPath {
    std::string path;
    explicit TempPath(const std::string &name)
        : path(std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + "/ternlm-test-" +
               std::to_string(getpid()) + "-" + name) {}
    ~TempPath() { std::remove(path.c_str()); }
    TempPath(const TempPath &) = delete;
    TempPath &operator=(const TempPath &) = delete;
};

} // namespace testsupport
