// SentencePiece tokenization as llama.cpp does it: start from single UTF-8
// characters, repeatedly merge the adjacent pair whose concatenation is the
// highest-scoring vocabulary entry (leftmost first on ties), then emit each
// remaining symbol as its token, or as byte tokens when it has none.
#include <queue>

#include "tokenizer/vocab.hpp"

namespace ternlm {

namespace {

struct Symbol {
    int prev, next;
    size_t begin, len; // len 0: merged into its left neighbour
};

struct Bigram {
    int left, right;
    float score;
    size_t len;
};

struct BigramOrder {
    bool operator()(const Bigram &a, const Bigram &b) const {
        return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
};

size_t utf8_char_len(uint8_t c) {
    static const size_t lens[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lens[c >> 4];
}

} // namespace

void Vocab::tokenize_spm(const std::string &text, std::vector<int32_t> &out) const {
    if (text.empty()) return;
    std::vector<Symbol> sym;
    for (size_t off = 0; off < text.size();) {
        const size_t len = std::min(utf8_char_len(uint8_t(text[off])), text.size() - off);
        const int idx = int(sym.size());
        sym.push_back({idx - 1, off + len == text.size() ? -1 : idx + 1, off, len});
        off += len;
    }

    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
    auto try_pair = [&](int l, int r) {
        if (l < 0 || r < 0) return;
        const size_t len = sym[size_t(l)].len + sym[size_t(r)].len;
        const int id = find(text.substr(sym[size_t(l)].begin, len));
        if (id < 0) return;
        queue.push({l, r, score_[size_t(id)], len});
    };
    for (int i = 1; i < int(sym.size()); ++i) try_pair(i - 1, i);

    while (!queue.empty()) {
        const Bigram b = queue.top();
        queue.pop();
        Symbol &l = sym[size_t(b.left)], &r = sym[size_t(b.right)];
        // Stale entry: one side was merged away since it was queued.
        if (l.len == 0 || r.len == 0 || l.len + r.len != b.len) continue;
        l.len += r.len;
        r.len = 0;
        l.next = r.next;
        if (r.next >= 0) sym[size_t(r.next)].prev = b.left;
        try_pair(l.prev, b.left);
        try_pair(b.left, l.next);
    }

    for (int i = 0; i != -1; i = sym[size_t(i)].next) {
        const Symbol &s = sym[size_t(i)];
        const std::string piece = text.substr(s.begin, s.len);
        const int id = find(piece);
        if (id >= 0) {
            out.push_back(id);
            continue;
        }
        for (char c : piece) { // byte fallback
            const int bt = byte_token(uint8_t(c));
            if (bt >= 0) out.push_back(bt);
        }
    }
}

} // namespace ternlm
