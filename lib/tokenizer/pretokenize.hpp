// The pre-tokenizers of byte-level BPE vocabularies: text split into the
// words that merges never cross, by the pattern tokenizer.ggml.pre names.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace ternlm {

enum class PreTokenizer {
    // Llama 3's (tokenizer.ggml.pre "llama-bpe"):
    //   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
    //   ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    Llama3,
    // GPT-2's ("gpt2"):
    //   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    Gpt2,
};

// The words of `text` as [begin, end) byte ranges, in order, covering it.
// Matching is the regular expression's: at each position the first
// alternative that matches wins, each as long as its quantifiers allow.
std::vector<std::pair<size_t, size_t>> pretokenize(const std::string &text, PreTokenizer pre);

} // namespace ternlm
