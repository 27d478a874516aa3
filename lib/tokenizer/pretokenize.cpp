// Hand-written matchers for the two patterns in pretokenize.hpp, over code
// points (as llama.cpp's unicode_regex_split_custom_* are: no regex engine).
#include "tokenizer/pretokenize.hpp"

#include "tokenizer/unicode.hpp"

namespace ternlm {

namespace {

using unicode::is_letter;
using unicode::is_number;
using unicode::is_whitespace;

struct Matcher {
    const std::vector<uint32_t> &cp;
    size_t n;

    bool letter(size_t i) const { return i < n && is_letter(cp[i]); }
    bool number(size_t i) const { return i < n && is_number(cp[i]); }
    bool space(size_t i) const { return i < n && is_whitespace(cp[i]); }
    bool newline(size_t i) const { return i < n && (cp[i] == '\r' || cp[i] == '\n'); }
    // [^\s\p{L}\p{N}]
    bool other(size_t i) const { return i < n && !is_whitespace(cp[i]) && !is_letter(cp[i]) && !is_number(cp[i]); }

    template <class Pred> size_t run(size_t i, Pred p) const {
        while (p(i)) ++i;
        return i;
    }
    size_t letters(size_t i) const { return run(i, [&](size_t j) { return letter(j); }); }
    size_t spaces(size_t i) const { return run(i, [&](size_t j) { return space(j); }); }

    // 's|'t|'re|'ve|'m|'ll|'d (ASCII letters; either case when `any_case`).
    size_t contraction(size_t i, bool any_case) const {
        if (cp[i] != '\'' || i + 1 >= n) return 0;
        auto lower = [&](size_t j) -> uint32_t {
            if (j >= n) return 0;
            const uint32_t c = cp[j];
            return any_case && c >= 'A' && c <= 'Z' ? c + 32 : c;
        };
        const uint32_t a = lower(i + 1), b = lower(i + 2);
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
        return 0;
    }

    // \s+(?!\S) then \s+: a run of whitespace followed by a non-space keeps
    // its last character for the next word (" world").
    size_t whitespace(size_t i) const {
        const size_t e = spaces(i);
        if (e < n && e - i >= 2) return e - 1 - i;
        return e - i;
    }

    size_t llama3(size_t i) const {
        if (const size_t len = contraction(i, true)) return len;
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if (letter(i)) return letters(i) - i;
        if (!newline(i) && !number(i) && letter(i + 1)) return letters(i + 1) - i;
        // \p{N}{1,3}
        if (number(i)) return number(i + 1) ? (number(i + 2) ? 3 : 2) : 1;
        //  ?[^\s\p{L}\p{N}]+[\r\n]*
        const size_t o = cp[i] == ' ' ? i + 1 : i;
        if (other(o)) {
            const size_t e = run(o, [&](size_t j) { return other(j); });
            return run(e, [&](size_t j) { return newline(j); }) - i;
        }
        // \s*[\r\n]+: up to the last line break of the whitespace run
        const size_t e = spaces(i);
        for (size_t k = e; k > i; --k)
            if (newline(k - 1)) return k - i;
        if (e > i) return whitespace(i);
        return 1; // not reached: every code point is in one of the classes
    }

    size_t gpt2(size_t i) const {
        if (const size_t len = contraction(i, false)) return len;
        const size_t s = cp[i] == ' ' ? i + 1 : i; // the optional leading space
        if (letter(s)) return letters(s) - i;
        if (number(s)) return run(s, [&](size_t j) { return number(j); }) - i;
        if (other(s)) return run(s, [&](size_t j) { return other(j); }) - i;
        if (space(i)) return whitespace(i);
        return 1;
    }
};

} // namespace

std::vector<std::pair<size_t, size_t>> pretokenize(const std::string &text, PreTokenizer pre) {
    const unicode::Decoded d = unicode::decode_utf8(text);
    const Matcher m{d.cps, d.cps.size()};
    std::vector<std::pair<size_t, size_t>> words;
    for (size_t i = 0; i < m.n;) {
        const size_t len = pre == PreTokenizer::Llama3 ? m.llama3(i) : m.gpt2(i);
        words.push_back({d.offsets[i], d.offsets[i + len]});
        i += len;
    }
    return words;
}

} // namespace ternlm
