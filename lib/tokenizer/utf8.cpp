// UTF-8 validation for streaming detokenization.
#include "tokenizer/vocab.hpp"

namespace ternlm {

namespace {

// Expected sequence length from the lead byte; 0 when it cannot start one.
int seq_len(uint8_t c) {
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

// Whether byte k (k >= 1) of a sequence led by `lead` may be b.
bool cont_ok(uint8_t lead, int k, uint8_t b) {
    if (k == 1) {
        if (lead == 0xE0) return b >= 0xA0 && b <= 0xBF; // no overlongs
        if (lead == 0xED) return b >= 0x80 && b <= 0x9F; // no surrogates
        if (lead == 0xF0) return b >= 0x90 && b <= 0xBF;
        if (lead == 0xF4) return b >= 0x80 && b <= 0x8F; // <= U+10FFFF
    }
    return b >= 0x80 && b <= 0xBF;
}

// At position i: >0 = length of a valid sequence, 0 = invalid byte,
// -1 = valid so far but cut off by the end of s.
int classify(const std::string &s, size_t i) {
    const uint8_t lead = uint8_t(s[i]);
    const int len = seq_len(lead);
    if (len == 0) return 0;
    for (int k = 1; k < len; ++k) {
        if (i + size_t(k) >= s.size()) return -1;
        if (!cont_ok(lead, k, uint8_t(s[i + size_t(k)]))) return 0;
    }
    return len;
}

} // namespace

size_t utf8_complete_prefix(const std::string &s) {
    size_t i = 0;
    while (i < s.size()) {
        const int c = classify(s, i);
        if (c < 0) return i;
        i += c == 0 ? 1 : size_t(c);
    }
    return i;
}

std::string utf8_sanitize(const std::string &s) {
    std::string out;
    out.reserve(s.size());
    size_t i = 0;
    while (i < s.size()) {
        const int c = classify(s, i);
        if (c > 0) {
            out.append(s, i, size_t(c));
            i += size_t(c);
        } else {
            out += "\xEF\xBF\xBD"; // one per invalid byte; one for a cut-off tail
            if (c < 0) break;
            ++i;
        }
    }
    return out;
}

} // namespace ternlm
