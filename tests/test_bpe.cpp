// Byte-level BPE: the pre-tokenizer patterns, merges by rank, Llama 3's
// whole-word rule, special tokens and lossless round trips, on a small
// vocabulary written here (no BPE model is among the shared files).
#include <catch2/catch.hpp>

#include <random>

#include "gguf/gguf.hpp"
#include "support/errors.hpp"
#include "tokenizer/pretokenize.hpp"
#include "tokenizer/unicode.hpp"
#include "tokenizer/vocab.hpp"

using namespace ternlm;
using testsupport::outcome_of;

namespace {

std::vector<std::string> words_of(const std::string &text, PreTokenizer pre) {
    std::vector<std::string> out;
    for (const auto &w : pretokenize(text, pre)) out.push_back(text.substr(w.first, w.second - w.first));
    return out;
}

using Words = std::vector<std::string>;

// Text in GPT-2's byte alphabet, as BPE vocabularies write tokens.
const auto spelled = unicode::spell_bytes;

struct BpeVocab {
    std::vector<uint8_t> bytes;
    Vocab vocab;
};

// Every byte as a token (ids 0-255 in byte order), then merged tokens, two
// control tokens and "whole", which no merge reaches.
BpeVocab make_vocab(const std::string &pre, const std::vector<std::string> &merges) {
    std::vector<std::string> tokens;
    for (int b = 0; b < 256; ++b) tokens.push_back(spelled(std::string(1, char(b))));
    for (const char *t : {"he", "ll", "hell", "hello", " w", " wo", "ab", "bc", "whole", "wh"})
        tokens.push_back(spelled(t));
    tokens.push_back("<|begin_of_text|>");
    tokens.push_back("<|eot_id|>");
    std::vector<int32_t> types(tokens.size(), 1);
    types[types.size() - 2] = types[types.size() - 1] = 3;
    gguf::Writer w;
    w.set_str("tokenizer.ggml.model", "gpt2");
    if (!pre.empty()) w.set_str("tokenizer.ggml.pre", pre);
    w.set_str_array("tokenizer.ggml.tokens", tokens);
    w.set_i32_array("tokenizer.ggml.token_type", types);
    w.set_str_array("tokenizer.ggml.merges", merges);
    w.set_u32("tokenizer.ggml.bos_token_id", uint32_t(tokens.size() - 2));
    BpeVocab v;
    v.bytes = w.to_bytes();
    v.vocab = Vocab::from_gguf(*gguf::File::from_memory(v.bytes.data(), v.bytes.size()));
    return v;
}

std::string merge(const std::string &left, const std::string &right) { return spelled(left) + " " + spelled(right); }

const std::vector<std::string> kMerges = {merge("h", "e"), merge("l", "l"),  merge("he", "ll"), merge("hell", "o"),
                                          merge(" ", "w"), merge(" w", "o"), merge("w", "h")};

std::vector<std::string> pieces(const Vocab &v, const std::vector<int32_t> &ids) {
    std::vector<std::string> out;
    for (int32_t id : ids) out.push_back(v.piece(id, true));
    return out;
}

} // namespace

TEST_CASE("the Llama 3 pre-tokenizer splits as its pattern does", "[tokenizer][bpe]") {
    const auto L3 = PreTokenizer::Llama3;
    CHECK(words_of("Hello world", L3) == Words{"Hello", " world"});
    CHECK(words_of("I'm here, you're THERE'S", L3) ==
          Words{"I", "'m", " here", ",", " you", "'re", " THERE", "'S"});
    CHECK(words_of("12345 abc", L3) == Words{"123", "45", " abc"});
    CHECK(words_of("3.14", L3) == Words{"3", ".", "14"});
    CHECK(words_of("a  b", L3) == Words{"a", " ", " b"});
    CHECK(words_of("  trailing  ", L3) == Words{" ", " trailing", "  "});
    CHECK(words_of("line\n\nnext", L3) == Words{"line", "\n\n", "next"});
    CHECK(words_of("x \n y", L3) == Words{"x", " \n", " y"});
    CHECK(words_of("a\r\nb", L3) == Words{"a", "\r\n", "b"});
    CHECK(words_of("hello!!! world", L3) == Words{"hello", "!!!", " world"});
    CHECK(words_of("?!\n\nx", L3) == Words{"?!\n\n", "x"});
    CHECK(words_of("(test)", L3) == Words{"(test", ")"});
    CHECK(words_of("\tindent", L3) == Words{"\tindent"});
    CHECK(words_of("h\xC3\xA9llo w\xC3\xB6rld", L3) == Words{"h\xC3\xA9llo", " w\xC3\xB6rld"});
    CHECK(words_of("\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", L3) == Words{"\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"});
    CHECK(words_of("hi \xF0\x9F\x99\x82\xF0\x9F\x99\x82", L3) == Words{"hi", " \xF0\x9F\x99\x82\xF0\x9F\x99\x82"});
    CHECK(words_of("x\xE2\x85\xA7y", L3) == Words{"x", "\xE2\x85\xA7", "y"}); // U+2167 ROMAN NUMERAL EIGHT is a number
    CHECK(words_of("", L3).empty());
}

TEST_CASE("the GPT-2 pre-tokenizer splits as its pattern does", "[tokenizer][bpe]") {
    const auto G = PreTokenizer::Gpt2;
    CHECK(words_of("Hello world", G) == Words{"Hello", " world"});
    CHECK(words_of("I'm I'M", G) == Words{"I", "'m", " I", "'", "M"}); // contractions are lower case only
    CHECK(words_of("12345 678", G) == Words{"12345", " 678"});
    CHECK(words_of("(test)", G) == Words{"(", "test", ")"});
    CHECK(words_of("a  b", G) == Words{"a", " ", " b"});
    CHECK(words_of("line\n\nnext", G) == Words{"line", "\n", "\n", "next"});
    CHECK(words_of("end  ", G) == Words{"end", "  "});
}

TEST_CASE("an invalid UTF-8 byte is a unit of its own and kept", "[tokenizer][bpe]") {
    const std::string s = "ab\xFF" "cd \xC3";
    const auto w = words_of(s, PreTokenizer::Llama3);
    std::string joined;
    for (const auto &x : w) joined += x;
    CHECK(joined == s);
    CHECK(w.size() >= 3);
}

TEST_CASE("BPE merges the lowest-ranked pair first", "[tokenizer][bpe]") {
    const BpeVocab bv = make_vocab("gpt2", kMerges);
    const Vocab &v = bv.vocab;
    REQUIRE(v.is_bpe());
    CHECK(pieces(v, v.tokenize("hello world", false, false)) == Words{"hello", " wo", "r", "l", "d"});
    // "abc": with "b c" ranked first the result is a + bc, with "a b" first ab + c.
    const BpeVocab bc_first = make_vocab("gpt2", {merge("b", "c"), merge("a", "b")});
    CHECK(pieces(bc_first.vocab, bc_first.vocab.tokenize("abc", false, false)) == Words{"a", "bc"});
    const BpeVocab ab_first = make_vocab("gpt2", {merge("a", "b"), merge("b", "c")});
    CHECK(pieces(ab_first.vocab, ab_first.vocab.tokenize("abc", false, false)) == Words{"ab", "c"});
    // Equal pairs: the leftmost merges first ("ll" + "l").
    CHECK(pieces(v, v.tokenize("lll", false, false)) == Words{"ll", "l"});
}

TEST_CASE("Llama 3 takes a word that is a token whole, GPT-2 merges it", "[tokenizer][bpe]") {
    const BpeVocab l3 = make_vocab("llama-bpe", kMerges);
    const BpeVocab g2 = make_vocab("gpt2", kMerges);
    CHECK(pieces(l3.vocab, l3.vocab.tokenize("whole", false, false)) == Words{"whole"});
    CHECK(pieces(g2.vocab, g2.vocab.tokenize("whole", false, false)) == Words{"wh", "o", "l", "e"});
}

TEST_CASE("BPE: BOS, special tokens and detokenization", "[tokenizer][bpe]") {
    const BpeVocab bv = make_vocab("llama-bpe", kMerges);
    const Vocab &v = bv.vocab;
    const int bot = v.find("<|begin_of_text|>"), eot = v.find("<|eot_id|>");
    CHECK(v.bos() == bot);
    CHECK(v.add_bos()); // Llama 3's default
    CHECK(v.eot() == eot);  // found by its text
    CHECK(v.is_eog(eot));
    const auto ids = v.tokenize("hello<|eot_id|> world", true, true);
    REQUIRE(ids.size() >= 4);
    CHECK(ids.front() == bot);
    CHECK(ids[2] == eot);
    CHECK(std::find(ids.begin(), ids.end(), eot) != ids.end());
    const auto plain = v.tokenize("hello<|eot_id|>", false, false);
    CHECK(std::find(plain.begin(), plain.end(), eot) == plain.end());
    CHECK(v.detokenize(ids.data(), ids.size()) == "hello world"); // control tokens are not text
    CHECK(v.piece(eot, true) == "<|eot_id|>");
    CHECK(!make_vocab("gpt2", kMerges).vocab.add_bos());
}

TEST_CASE("BPE round-trips any bytes", "[tokenizer][bpe]") {
    const BpeVocab bv = make_vocab("llama-bpe", kMerges);
    const Vocab &v = bv.vocab;
    std::mt19937 rng(7);
    for (int t = 0; t < 200; ++t) {
        std::string s(size_t(rng() % 40), '\0');
        for (char &c : s) c = char(t % 2 ? rng() % 256 : " \n\tahelowrd'9!\xC3\xA9"[rng() % 16]);
        const auto ids = v.tokenize(s, false, false);
        CHECK(v.detokenize(ids.data(), ids.size()) == s);
    }
}

TEST_CASE("BPE metadata errors are reported", "[tokenizer][bpe]") {
    CHECK(outcome_of([] { make_vocab("qwen2", kMerges); }).status == TERN_ERR_UNSUPPORTED);
    CHECK(outcome_of([] { make_vocab("", kMerges); }).message.find("pre-tokenizer") != std::string::npos);
    CHECK(outcome_of([] { make_vocab("gpt2", {"nospace"}); }).status == TERN_ERR_FORMAT);
}
