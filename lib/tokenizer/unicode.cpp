#include "tokenizer/unicode.hpp"

#include <algorithm>
#include <array>

namespace ternlm::unicode {

namespace {

bool in_ranges(const CodepointRange *r, size_t n, uint32_t cp) {
    const CodepointRange *end = r + n;
    const CodepointRange *it =
        std::upper_bound(r, end, cp, [](uint32_t c, const CodepointRange &x) { return c < x.first; });
    return it != r && cp <= (it - 1)->last;
}

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes keep their value; the
// other 68 take U+0100 + k in byte order.
struct ByteAlphabet {
    std::array<uint32_t, 256> to_cp{};
    std::array<int16_t, 324> to_byte{}; // code points below 256 + 68
    ByteAlphabet() {
        to_byte.fill(-1);
        uint32_t next = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            to_cp[size_t(b)] = printable ? uint32_t(b) : next++;
            to_byte[to_cp[size_t(b)]] = int16_t(b);
        }
    }
};
const ByteAlphabet &alphabet() {
    static const ByteAlphabet a;
    return a;
}

// Length of the valid UTF-8 sequence at s[i], 0 if there is none.
size_t sequence_at(const std::string &s, size_t i, uint32_t &cp) {
    const uint8_t c = uint8_t(s[i]);
    if (c < 0x80) {
        cp = c;
        return 1;
    }
    size_t len;
    uint32_t min;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1Fu, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0Fu, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07u, min = 0x10000;
    else return 0;
    if (i + len > s.size()) return 0;
    for (size_t k = 1; k < len; ++k) {
        const uint8_t b = uint8_t(s[i + k]);
        if ((b & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (b & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

} // namespace

bool is_letter(uint32_t cp) { return in_ranges(kLetterRanges, kLetterRanges_count, cp); }
bool is_number(uint32_t cp) { return in_ranges(kNumberRanges, kNumberRanges_count, cp); }

bool is_whitespace(uint32_t cp) {
    switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000: return true;
    default: return cp >= 0x2000 && cp <= 0x200A;
    }
}

Decoded decode_utf8(const std::string &s) {
    Decoded d;
    d.cps.reserve(s.size());
    d.offsets.reserve(s.size() + 1);
    for (size_t i = 0; i < s.size();) {
        uint32_t cp = 0;
        size_t len = sequence_at(s, i, cp);
        if (len == 0) cp = 0xFFFD, len = 1;
        d.cps.push_back(cp);
        d.offsets.push_back(i);
        i += len;
    }
    d.offsets.push_back(s.size());
    return d;
}

void append_utf8(uint32_t cp, std::string &out) {
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xF0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3F));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}

uint32_t byte_to_cp(uint8_t b) { return alphabet().to_cp[b]; }

int cp_to_byte(uint32_t cp) { return cp < alphabet().to_byte.size() ? alphabet().to_byte[cp] : -1; }

std::string spell_bytes(const std::string &bytes) {
    std::string s;
    s.reserve(bytes.size() * 2);
    for (char c : bytes) append_utf8(byte_to_cp(uint8_t(c)), s);
    return s;
}

std::string unspell(const std::string &spelled) {
    const Decoded d = decode_utf8(spelled);
    std::string out;
    for (size_t i = 0; i < d.cps.size(); ++i) {
        const int b = cp_to_byte(d.cps[i]);
        if (b >= 0) out += char(b);
        else out.append(spelled, d.offsets[i], d.offsets[i + 1] - d.offsets[i]);
    }
    return out;
}

} // namespace ternlm::unicode
