// SentencePiece tokenization identical to llama.cpp's (golden/tokenizer).
#include <catch2/catch.hpp>

#include "engine/model.hpp"
#include "support/files.hpp"
#include "support/json.hpp"

using testsupport::Json;

namespace {
const ternlm::Model &stories() {
    static auto m = ternlm::Model::load(testsupport::shared_path("models/stories260K.gguf"), {});
    return *m;
}
} // namespace

TEST_CASE("token ids match llama.cpp's tokenizer", "[tokenizer]") {
    const Json cases = Json::parse(testsupport::read_text(testsupport::shared_path("golden/tokenizer/stories260K.json")));
    REQUIRE(cases.arr.size() >= 20);
    for (const Json &c : cases.arr) {
        const std::vector<int32_t> got = stories().vocab().tokenize(c["text"].str, c["add_bos"].b, true);
        INFO("text: '" << c["text"].str << "' add_bos " << c["add_bos"].b);
        CHECK(std::vector<int>(got.begin(), got.end()) == c["ids"].ints());
    }
}

TEST_CASE("detokenization inverts tokenization", "[tokenizer]") {
    const ternlm::Vocab &v = stories().vocab();
    for (const std::string s : {"Once upon a time, there was a little girl named Lily.", "café ü 日本語 🙂",
                                "line one\nline two\n\n\tindented", "Tom's dog didn't bark!"}) {
        const std::vector<int32_t> ids = v.tokenize(s, true, false);
        CHECK(v.detokenize(ids.data(), ids.size()) == s);
    }
}

TEST_CASE("special tokens parse only when asked", "[tokenizer]") {
    const ternlm::Vocab &v = stories().vocab();
    const auto with = v.tokenize("<s>Hi</s>", false, true);
    const auto without = v.tokenize("<s>Hi</s>", false, false);
    CHECK(with.front() == v.bos());
    CHECK(with.back() == v.eos());
    CHECK(std::find(without.begin(), without.end(), v.bos()) == without.end());
    CHECK(v.piece(v.eos(), false).empty());
    CHECK(v.piece(v.eos(), true) == "</s>");
}
