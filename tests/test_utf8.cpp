// UTF-8 handling of streamed text.
#include <catch2/catch.hpp>

#include "tokenizer/vocab.hpp"

using ternlm::utf8_complete_prefix;
using ternlm::utf8_sanitize;

TEST_CASE("complete prefix holds back a cut-off character", "[utf8]") {
    const std::string euro = "\xE2\x82\xAC"; // U+20AC, 3 bytes
    CHECK(utf8_complete_prefix("ab") == 2);
    CHECK(utf8_complete_prefix("a" + euro.substr(0, 1)) == 1);
    CHECK(utf8_complete_prefix("a" + euro.substr(0, 2)) == 1);
    CHECK(utf8_complete_prefix("a" + euro) == 4);
    CHECK(utf8_complete_prefix("\xF0\x9F\x99") == 0); // 3 of 4 bytes of an emoji
    // An invalid byte is not waited for: it is emitted (as U+FFFD by sanitize).
    CHECK(utf8_complete_prefix("a\xFF") == 2);
    CHECK(utf8_complete_prefix("\xE2\x28") == 2);
}

TEST_CASE("sanitize replaces invalid sequences", "[utf8]") {
    CHECK(utf8_sanitize("ok") == "ok");
    CHECK(utf8_sanitize("\xFF") == "\xEF\xBF\xBD");
    CHECK(utf8_sanitize("a\xC0\x80") == "a\xEF\xBF\xBD\xEF\xBF\xBD"); // overlong
    CHECK(utf8_sanitize("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"); // surrogate
    CHECK(utf8_sanitize("\xE2\x82") == "\xEF\xBF\xBD"); // truncated tail: one replacement
    CHECK(utf8_sanitize("\xF0\x9F\x99\x82") == "\xF0\x9F\x99\x82");
}
