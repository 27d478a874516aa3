// Byte-level BPE as llama.cpp does it (llm_tokenizer_bpe): a pre-tokenized
// word's bytes are spelled in GPT-2's byte alphabet, then the adjacent pair
// with the lowest merge rank (leftmost on ties) is merged until no listed
// merge applies; each symbol is emitted as its token.
#include <queue>

#include "tokenizer/pretokenize.hpp"
#include "tokenizer/unicode.hpp"
#include "tokenizer/vocab.hpp"

namespace ternlm {

namespace {

struct Symbol {
    int prev, next;
    size_t begin, len; // a byte range of the spelled word; len 0: merged away
};

struct Pair {
    int left, right;
    int rank;
    size_t len; // the merged length, to recognise entries made stale by other merges
};

struct PairOrder {
    bool operator()(const Pair &a, const Pair &b) const {
        return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
    }
};

size_t utf8_len(uint8_t c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

} // namespace

int Vocab::merge_rank(const std::string &left, const std::string &right) const {
    auto it = merge_rank_.find(left + ' ' + right);
    return it == merge_rank_.end() ? -1 : it->second;
}

void Vocab::tokenize_bpe_word(const std::string &word, std::vector<int32_t> &out) const {
    if (ignore_merges_) { // Llama 3: a word that is a token is taken whole
        const int id = find(word);
        if (id >= 0) {
            out.push_back(id);
            return;
        }
    }
    std::vector<Symbol> sym;
    for (size_t off = 0; off < word.size();) {
        const size_t len = std::min(utf8_len(uint8_t(word[off])), word.size() - off);
        const int idx = int(sym.size());
        sym.push_back({idx - 1, off + len == word.size() ? -1 : idx + 1, off, len});
        off += len;
    }
    std::priority_queue<Pair, std::vector<Pair>, PairOrder> queue;
    auto try_pair = [&](int l, int r) {
        if (l < 0 || r < 0) return;
        const Symbol &a = sym[size_t(l)], &b = sym[size_t(r)];
        const int rank = merge_rank(word.substr(a.begin, a.len), word.substr(b.begin, b.len));
        if (rank >= 0) queue.push({l, r, rank, a.len + b.len});
    };
    for (int i = 1; i < int(sym.size()); ++i) try_pair(i - 1, i);

    while (!queue.empty()) {
        const Pair p = queue.top();
        queue.pop();
        Symbol &l = sym[size_t(p.left)], &r = sym[size_t(p.right)];
        if (l.len == 0 || r.len == 0 || l.len + r.len != p.len || l.next != p.right) continue; // stale
        l.len += r.len;
        r.len = 0;
        l.next = r.next;
        if (r.next >= 0) sym[size_t(r.next)].prev = p.left;
        try_pair(l.prev, p.left);
        try_pair(p.left, l.next);
    }

    for (int i = 0; i != -1; i = sym[size_t(i)].next) {
        const std::string piece = word.substr(sym[size_t(i)].begin, sym[size_t(i)].len);
        const int id = find(piece);
        if (id >= 0) {
            out.push_back(id);
            continue;
        }
        // No token: each byte of the spelling that is a token of its own
        // (llama.cpp's fallback; a complete byte-level vocabulary never gets here).
        for (char c : piece)
            if (const int b = find(std::string(1, c)); b >= 0) out.push_back(b);
    }
}

void Vocab::tokenize_bpe(const std::string &text, std::vector<int32_t> &out) const {
    for (const auto &w : pretokenize(text, pre_))
        tokenize_bpe_word(unicode::spell_bytes(text.substr(w.first, w.second - w.first)), out);
}

} // namespace ternlm
