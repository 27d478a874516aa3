#include "common/error.hpp"

#include <vector>

namespace ternlm {

static std::string vformat(const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(nullptr, 0, fmt, ap);
    std::string out;
    if (n > 0) {
        std::vector<char> buf(size_t(n) + 1);
        vsnprintf(buf.data(), buf.size(), fmt, ap2);
        out.assign(buf.data(), size_t(n));
    }
    va_end(ap2);
    return out;
}

std::string strprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::string s = vformat(fmt, ap);
    va_end(ap);
    return s;
}

void fail(tern_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::string s = vformat(fmt, ap);
    va_end(ap);
    throw Failure(status, s);
}

} // namespace ternlm
