// Vocabulary loading, special-token partitioning and (de)tokenization.
#include "tokenizer/vocab.hpp"

#include <algorithm>
#include <cstdio>

#include "common/error.hpp"
#include "gguf/gguf.hpp"
#include "tokenizer/unicode.hpp"

namespace ternlm {

namespace {

const char *kSpace = "\xE2\x96\x81"; // U+2581, SentencePiece's visible space

std::string escape_spaces(const std::string &s) {
    std::string out;
    out.reserve(s.size() * 3);
    for (char c : s) {
        if (c == ' ') out += kSpace;
        else out += c;
    }
    return out;
}

std::string unescape_spaces(const std::string &s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        if (s.compare(i, 3, kSpace) == 0) {
            out += ' ';
            i += 3;
        } else {
            out += s[i++];
        }
    }
    return out;
}

int token_id_or_none(const gguf::File &f, const char *key, int n_tokens) {
    const gguf::Value *v = f.find(key);
    if (!v) return -1;
    if (!v->is_integer()) fail(TERN_ERR_FORMAT, "GGUF: %s should be an integer", key);
    const int64_t id = v->as_int();
    // llama.cpp writes 0xFFFFFFFF (as u32) for "none".
    if (id < 0 || id >= n_tokens) return -1;
    return int(id);
}

// Parses "<0xAB>"; -1 if the text is not a byte token's.
int parse_byte_token(const std::string &t) {
    unsigned v;
    char tail;
    if (t.size() == 6 && std::sscanf(t.c_str(), "<0x%2X>%c", &v, &tail) == 1) return int(v);
    return -1;
}

} // namespace

Vocab Vocab::from_gguf(const gguf::File &f) {
    Vocab v;
    const std::string model = f.get_string("tokenizer.ggml.model", "");
    if (model.empty()) fail(TERN_ERR_FORMAT, "GGUF: tokenizer.ggml.model is missing");
    if (model != "llama" && model != "gpt2")
        fail(TERN_ERR_UNSUPPORTED, "tokenizer '%s' is not supported (supported: 'llama' SentencePiece, 'gpt2' BPE)",
             model.c_str());
    v.bpe_ = model == "gpt2";
    const gguf::Value *tokens = f.find("tokenizer.ggml.tokens");
    if (!tokens || tokens->type != gguf::ValueType::ARRAY || tokens->elem_type != gguf::ValueType::STRING)
        fail(TERN_ERR_FORMAT, "GGUF: tokenizer.ggml.tokens must be an array of strings");
    const size_t n = tokens->strs.size();
    if (n == 0 || n > (1u << 24)) fail(TERN_ERR_FORMAT, "GGUF: vocabulary of %zu tokens", n);
    v.text_ = tokens->strs;
    v.score_.assign(n, 0.0f);
    v.type_.assign(n, TokenType::Normal);
    if (const gguf::Value *s = f.find("tokenizer.ggml.scores")) {
        if (s->type != gguf::ValueType::ARRAY || s->count != n || s->raw.empty())
            fail(TERN_ERR_FORMAT, "GGUF: tokenizer.ggml.scores must hold %zu numbers", n);
        for (size_t i = 0; i < n; ++i) v.score_[i] = float(s->array_double(i));
    }
    if (const gguf::Value *t = f.find("tokenizer.ggml.token_type")) {
        if (t->type != gguf::ValueType::ARRAY || t->count != n || t->raw.empty())
            fail(TERN_ERR_FORMAT, "GGUF: tokenizer.ggml.token_type must hold %zu integers", n);
        for (size_t i = 0; i < n; ++i) {
            const int64_t ty = t->array_int(i);
            v.type_[i] = (ty >= 0 && ty <= 6) ? TokenType(ty) : TokenType::Normal;
        }
    }
    const int nt = int(n);
    for (int i = 0; i < nt; ++i) v.to_id_.emplace(v.text_[size_t(i)], i);
    v.bos_ = token_id_or_none(f, "tokenizer.ggml.bos_token_id", nt);
    v.eos_ = token_id_or_none(f, "tokenizer.ggml.eos_token_id", nt);
    v.eot_ = token_id_or_none(f, "tokenizer.ggml.eot_token_id", nt);
    v.unk_ = token_id_or_none(f, "tokenizer.ggml.unknown_token_id", nt);
    if (v.bpe_) v.read_bpe_metadata(f);
    // llama.cpp's defaults: SentencePiece adds BOS and a leading space;
    // BPE adds BOS for Llama 3 only and never a space.
    v.add_bos_ = f.get_bool("tokenizer.ggml.add_bos_token", !v.bpe_ || v.pre_ == PreTokenizer::Llama3);
    v.add_space_prefix_ = f.get_bool("tokenizer.ggml.add_space_prefix", !v.bpe_);
    if (v.eot_ < 0) // chat templates' end-of-turn tokens, found by text as llama.cpp does
        for (const char *t : {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>"})
            if (const int id = v.find(t); id >= 0 && v.type_[size_t(id)] == TokenType::Control) {
                v.eot_ = id;
                break;
            }

    for (int i = 0; i < nt; ++i) {
        const TokenType ty = v.type_[size_t(i)];
        if ((ty == TokenType::Control || ty == TokenType::UserDefined || ty == TokenType::Unknown) &&
            !v.text_[size_t(i)].empty())
            v.specials_.push_back(i);
    }
    std::stable_sort(v.specials_.begin(), v.specials_.end(),
                     [&](int a, int b) { return v.text_[size_t(a)].size() > v.text_[size_t(b)].size(); });
    for (int b = 0; b < 256; ++b) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "<0x%02X>", b);
        v.byte_ids_[b] = v.find(buf);
    }
    return v;
}

void Vocab::read_bpe_metadata(const gguf::File &f) {
    const gguf::Value *merges = f.find("tokenizer.ggml.merges");
    if (!merges || merges->type != gguf::ValueType::ARRAY || merges->elem_type != gguf::ValueType::STRING)
        fail(TERN_ERR_FORMAT, "GGUF: a 'gpt2' tokenizer needs tokenizer.ggml.merges, an array of strings");
    for (size_t i = 0; i < merges->strs.size(); ++i) {
        const std::string &m = merges->strs[i];
        const size_t sp = m.find(' ', 1); // "left right"; left may itself be a space
        if (sp == std::string::npos || sp + 1 >= m.size())
            fail(TERN_ERR_FORMAT, "GGUF: tokenizer.ggml.merges[%zu] = '%s' is not two symbols", i, m.c_str());
        merge_rank_.emplace(m, int(i)); // the first listing of a pair ranks it
    }
    const std::string pre = f.get_string("tokenizer.ggml.pre", "");
    if (pre == "llama-bpe" || pre == "llama3") {
        pre_ = PreTokenizer::Llama3;
        ignore_merges_ = true;
    } else if (pre == "gpt2") {
        pre_ = PreTokenizer::Gpt2;
    } else {
        fail(TERN_ERR_UNSUPPORTED, "BPE pre-tokenizer '%s' is not supported (supported: llama-bpe, gpt2)",
             pre.empty() ? "(tokenizer.ggml.pre missing)" : pre.c_str());
    }
}

int Vocab::find(const std::string &s) const {
    auto it = to_id_.find(s);
    return it == to_id_.end() ? -1 : it->second;
}

int Vocab::byte_token(uint8_t b) const {
    if (byte_ids_[b] >= 0) return byte_ids_[b];
    const int id = find(std::string(1, char(b)));
    return id >= 0 ? id : unk_;
}

std::vector<int32_t> Vocab::tokenize(const std::string &text, bool add_bos, bool parse_special) const {
    // Split the text at special tokens, longest first (llama.cpp's order).
    struct Fragment {
        int token; // -1 for raw text
        size_t begin, end;
    };
    std::vector<Fragment> frags{{-1, 0, text.size()}};
    for (int id : specials_) {
        const TokenType ty = type_[size_t(id)];
        if (!parse_special && (ty == TokenType::Control || ty == TokenType::Unknown)) continue;
        const std::string &sp = text_[size_t(id)];
        std::vector<Fragment> next;
        for (const Fragment &fr : frags) {
            if (fr.token >= 0) {
                next.push_back(fr);
                continue;
            }
            size_t pos = fr.begin;
            for (;;) {
                const size_t hit = text.find(sp, pos);
                if (hit == std::string::npos || hit + sp.size() > fr.end) break;
                if (hit > pos) next.push_back({-1, pos, hit});
                next.push_back({id, hit, hit + sp.size()});
                pos = hit + sp.size();
            }
            if (pos < fr.end) next.push_back({-1, pos, fr.end});
        }
        frags.swap(next);
    }

    std::vector<int32_t> out;
    if (add_bos && add_bos_ && bos_ >= 0) out.push_back(bos_);
    bool prev_special = true; // the first text fragment gets the space prefix
    for (const Fragment &fr : frags) {
        if (fr.token >= 0) {
            out.push_back(fr.token);
            prev_special = true;
            continue;
        }
        std::string raw = (add_space_prefix_ && prev_special) ? " " : "";
        raw.append(text, fr.begin, fr.end - fr.begin);
        if (bpe_) tokenize_bpe(raw, out);
        else tokenize_spm(escape_spaces(raw), out);
        prev_special = false;
    }
    return out;
}

std::string Vocab::piece(int id, bool special) const {
    if (!valid(id)) return "";
    const std::string &t = text_[size_t(id)];
    switch (type_[size_t(id)]) {
    case TokenType::Normal:
    case TokenType::Undefined: return bpe_ ? unicode::unspell(t) : unescape_spaces(t);
    case TokenType::Byte: {
        const int b = parse_byte_token(t);
        return b >= 0 ? std::string(1, char(b)) : std::string();
    }
    case TokenType::UserDefined: return t;
    case TokenType::Unknown: return "\xE2\x96\x85"; // as llama.cpp renders <unk>
    case TokenType::Control: return special ? t : std::string();
    case TokenType::Unused: return "";
    }
    return "";
}

std::string Vocab::detokenize(const int32_t *ids, size_t n) const {
    std::string out;
    for (size_t i = 0; i < n; ++i) out += piece(ids[i], false);
    if (add_space_prefix_ && !out.empty() && out[0] == ' ') out.erase(0, 1);
    return out;
}

} // namespace ternlm
