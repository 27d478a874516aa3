// The vocabulary of a model (tokenizer.ggml.* metadata) and the tokenizers
// over it, as llama.cpp implements them: SentencePiece ("llama": spm.cpp)
// and byte-level BPE ("gpt2" with the Llama 3 or GPT-2 pre-tokenizer:
// bpe.cpp, pretokenize.cpp; merges from tokenizer.ggml.merges).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/pretokenize.hpp"

namespace ternlm {
namespace gguf { class File; }

// tokenizer.ggml.token_type values.
enum class TokenType : int32_t { Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

class Vocab {
public:
    // Reads and validates the tokenizer metadata (TERN_ERR_FORMAT on
    // inconsistent arrays, TERN_ERR_UNSUPPORTED for a tokenizer model we lack).
    static Vocab from_gguf(const gguf::File &f);

    int n_tokens() const { return int(text_.size()); }
    const std::string &text(int id) const { return text_[size_t(id)]; }
    TokenType type(int id) const { return type_[size_t(id)]; }
    float score(int id) const { return score_[size_t(id)]; }
    int find(const std::string &s) const; // -1 when absent
    bool valid(int id) const { return id >= 0 && id < n_tokens(); }

    int bos() const { return bos_; }
    int eos() const { return eos_; }
    int eot() const { return eot_; }
    bool add_bos() const { return add_bos_; }
    bool is_eog(int id) const { return id >= 0 && (id == eos_ || id == eot_); }

    // Text to ids. add_bos: prepend BOS when the model asks for it.
    std::vector<int32_t> tokenize(const std::string &text, bool add_bos, bool parse_special) const;
    // The bytes of one token; control tokens render as "" unless `special`.
    std::string piece(int id, bool special) const;
    // Tokens to text: control tokens skipped, the SentencePiece leading space removed.
    std::string detokenize(const int32_t *ids, size_t n) const;

    bool is_bpe() const { return bpe_; }

private:
    void read_bpe_metadata(const gguf::File &f);
    void tokenize_spm(const std::string &text, std::vector<int32_t> &out) const;
    int byte_token(uint8_t b) const;
    void tokenize_bpe(const std::string &text, std::vector<int32_t> &out) const;
    void tokenize_bpe_word(const std::string &spelled, std::vector<int32_t> &out) const;
    int merge_rank(const std::string &left, const std::string &right) const;

    std::vector<std::string> text_;
    std::vector<float> score_;
    std::vector<TokenType> type_;
    std::unordered_map<std::string, int> to_id_;
    std::vector<int> specials_; // control/user-defined/unknown ids, longest text first
    int byte_ids_[256];
    int bos_ = -1, eos_ = -1, eot_ = -1, unk_ = -1;
    bool add_bos_ = true, add_space_prefix_ = true;
    // BPE only
    bool bpe_ = false, ignore_merges_ = false;
    PreTokenizer pre_ = PreTokenizer::Llama3;
    std::unordered_map<std::string, int> merge_rank_; // "left right" -> rank
};

// UTF-8 helpers for streaming.
// Length of the longest prefix of s that ends on a character boundary, where a
// trailing incomplete (but so far valid) sequence is excluded.
size_t utf8_complete_prefix(const std::string &s);
// s with every invalid byte sequence replaced by U+FFFD.
std::string utf8_sanitize(const std::string &s);

} // namespace ternlm
