// GGUF reader/writer: round trips of every metadata type, and corrupt,
// truncated and hostile files, each with the right status and message.
#include <catch2/catch.hpp>

#include <cstring>
#include <random>

#include "common/error.hpp"
#include "gguf/gguf.hpp"

using namespace ternlm;
using namespace ternlm::gguf;

namespace {

// Status and message of parsing bytes; TERN_OK when it parses.
std::pair<tern_status, std::string> parse_status(const std::vector<uint8_t> &b) {
    try {
        File::from_memory(b.data(), b.size());
        return {TERN_OK, ""};
    } catch (const Failure &e) {
        return {e.status(), e.what()};
    }
}

Writer small_writer() {
    Writer w;
    w.set_str("general.architecture", "llama");
    w.set_u32("answer", 42);
    std::vector<float> row(64);
    for (int i = 0; i < 64; ++i) row[size_t(i)] = float(i);
    std::vector<uint8_t> bytes(row.size() * 4);
    std::memcpy(bytes.data(), row.data(), bytes.size());
    w.add_tensor_bytes("a", GgmlType::F32, {32, 2}, bytes);
    w.add_tensor_bytes("b", GgmlType::F32, {64}, bytes);
    return w;
}

// Raw builder for hand-made (hostile) files.
struct Raw {
    std::vector<uint8_t> b;
    template <typename T> Raw &put(T v) {
        uint8_t t[sizeof(T)];
        std::memcpy(t, &v, sizeof(T));
        b.insert(b.end(), t, t + sizeof(T));
        return *this;
    }
    Raw &str(const std::string &s) {
        put<uint64_t>(s.size());
        b.insert(b.end(), s.begin(), s.end());
        return *this;
    }
    Raw &header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
        b.insert(b.end(), {'G', 'G', 'U', 'F'});
        return put<uint32_t>(version).put<uint64_t>(n_tensors).put<uint64_t>(n_kv);
    }
    Raw &tensor(const std::string &name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
        str(name).put<uint32_t>(uint32_t(ne.size()));
        for (uint64_t n : ne) put<uint64_t>(n);
        return put<uint32_t>(type).put<uint64_t>(offset);
    }
    Raw &pad_data(size_t bytes) {
        b.resize((b.size() + 31) / 32 * 32, 0);
        b.resize(b.size() + bytes, 0);
        return *this;
    }
};

} // namespace

TEST_CASE("every metadata type round-trips", "[gguf]") {
    Writer w;
    Value v;
    auto scalar = [&](const char *k, ValueType t, uint64_t u, int64_t i, double f) {
        Value x;
        x.type = t;
        x.u = u;
        x.i = i;
        x.f = f;
        w.set(k, x);
    };
    scalar("u8", ValueType::U8, 200, 0, 0);
    scalar("i8", ValueType::I8, 0, -100, 0);
    scalar("u16", ValueType::U16, 60000, 0, 0);
    scalar("i16", ValueType::I16, 0, -30000, 0);
    scalar("u32", ValueType::U32, 4000000000u, 0, 0);
    scalar("i32", ValueType::I32, 0, -2000000000, 0);
    scalar("u64", ValueType::U64, 1ull << 60, 0, 0);
    scalar("i64", ValueType::I64, 0, -(1ll << 60), 0);
    scalar("f32", ValueType::F32, 0, 0, 1.5);
    scalar("f64", ValueType::F64, 0, 0, 3.141592653589793);
    w.set_bool("bool", true);
    w.set_str("str", "héllo");
    w.set_str_array("strs", {"a", "", "ccc"});
    w.set_f32_array("f32s", {1.0f, -2.5f});
    w.set_i32_array("i32s", {7, -8, 9});
    Value nested;
    nested.type = ValueType::ARRAY;
    nested.elem_type = ValueType::ARRAY;
    nested.count = 2;
    Value inner;
    inner.type = ValueType::ARRAY;
    inner.elem_type = ValueType::STRING;
    inner.count = 1;
    inner.strs = {"deep"};
    nested.arrs = {inner, inner};
    w.set("nested", nested);

    const std::vector<uint8_t> bytes = w.to_bytes();
    auto f = File::from_memory(bytes.data(), bytes.size());
    CHECK(f->version() == 3);
    CHECK(f->find("u8")->u == 200);
    CHECK(f->find("i8")->i == -100);
    CHECK(f->find("u16")->u == 60000);
    CHECK(f->find("i16")->i == -30000);
    CHECK(f->find("u32")->u == 4000000000u);
    CHECK(f->find("i32")->i == -2000000000);
    CHECK(f->find("u64")->u == (1ull << 60));
    CHECK(f->find("i64")->i == -(1ll << 60));
    CHECK(f->find("f32")->f == 1.5);
    CHECK(f->find("f64")->f == 3.141592653589793);
    CHECK(f->get_bool("bool", false));
    CHECK(f->get_string("str") == "héllo");
    CHECK(f->find("strs")->strs == std::vector<std::string>{"a", "", "ccc"});
    CHECK(f->find("f32s")->array_double(1) == -2.5);
    CHECK(f->find("i32s")->array_int(1) == -8);
    const Value *n = f->find("nested");
    REQUIRE(n->arrs.size() == 2);
    CHECK(n->arrs[1].strs[0] == "deep");
    // Typed getters refuse the wrong type.
    CHECK_THROWS_AS(f->get_string("u32"), Failure);
    CHECK_THROWS_AS(f->get_int("str", 0), Failure);
}

TEST_CASE("tensors round-trip with alignment", "[gguf]") {
    Writer w(64);
    std::vector<uint8_t> data(34 * 3);
    for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i);
    w.add_tensor_bytes("q", GgmlType::Q8_0, {96}, data);
    w.add_tensor_bytes("r", GgmlType::Q8_0, {32}, std::vector<uint8_t>(data.begin(), data.begin() + 34));
    const auto bytes = w.to_bytes();
    auto f = File::from_memory(bytes.data(), bytes.size());
    CHECK(f->alignment() == 64);
    const TensorInfo *q = f->find_tensor("q");
    REQUIRE(q);
    CHECK(q->nbytes == 102);
    CHECK(std::memcmp(q->data, data.data(), 102) == 0);
    CHECK(f->find_tensor("r")->offset % 64 == 0);
}

TEST_CASE("a file cut anywhere is a format error, never a crash", "[gguf]") {
    const std::vector<uint8_t> full = small_writer().to_bytes();
    REQUIRE(parse_status(full).first == TERN_OK);
    for (size_t n = 0; n < full.size(); ++n) {
        const std::vector<uint8_t> cut(full.begin(), full.begin() + long(n));
        const auto r = parse_status(cut);
        INFO("cut at " << n << ": " << r.second);
        CHECK(r.first == TERN_ERR_FORMAT);
    }
}

TEST_CASE("random corruption never crashes", "[gguf]") {
    const std::vector<uint8_t> full = small_writer().to_bytes();
    std::mt19937 rng(7);
    for (int iter = 0; iter < 3000; ++iter) {
        std::vector<uint8_t> b = full;
        for (int k = 0; k < 1 + iter % 4; ++k) b[rng() % b.size()] = uint8_t(rng());
        const auto r = parse_status(b);
        CHECK((r.first == TERN_OK || r.first == TERN_ERR_FORMAT || r.first == TERN_ERR_UNSUPPORTED));
    }
}

TEST_CASE("hostile headers are rejected with a message naming the field", "[gguf]") {
    auto expect = [](const std::vector<uint8_t> &b, tern_status st, const char *needle) {
        const auto r = parse_status(b);
        INFO(r.second);
        CHECK(r.first == st);
        CHECK(r.second.find(needle) != std::string::npos);
    };
    expect(Raw().put<uint32_t>(0x46554747u + 1).put<uint32_t>(3).b, TERN_ERR_FORMAT, "bad magic");
    expect(Raw().header(0, 0, 9).b, TERN_ERR_FORMAT, "unknown version 9");
    expect(Raw().header(0, 0, 1).b, TERN_ERR_UNSUPPORTED, "version 1");
    expect(Raw().header(0, 1ull << 60).b, TERN_ERR_FORMAT, "n_kv");
    expect(Raw().header(1ull << 40, 0).b, TERN_ERR_FORMAT, "n_tensors");
    // A string whose length runs past the end.
    expect(Raw().header(0, 1).put<uint64_t>(1ull << 50).pad_data(64).b, TERN_ERR_FORMAT, "metadata key");
    // Unknown value type.
    expect(Raw().header(0, 1).str("k").put<uint32_t>(99).b, TERN_ERR_FORMAT, "unknown value type 99");
    // Array count the file cannot hold.
    expect(Raw().header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(4).put<uint64_t>(1ull << 40).b,
           TERN_ERR_FORMAT, "array count");
    // Bool that is neither 0 nor 1.
    expect(Raw().header(0, 1).str("k").put<uint32_t>(7).put<uint8_t>(5).b, TERN_ERR_FORMAT, "bool");
    // Bad alignment.
    expect(Raw().header(0, 1).str("general.alignment").put<uint32_t>(4).put<uint32_t>(48).b, TERN_ERR_FORMAT,
           "general.alignment");
    // Tensor records.
    expect(Raw().header(1, 0).tensor("t", {32}, 0, 0).pad_data(128).b, TERN_OK, ""); // the valid baseline
    expect(Raw().header(1, 0).tensor("t", {32}, 200, 0).pad_data(128).b, TERN_ERR_FORMAT, "unknown type id 200");
    // A type whose layout is known parses; the model binder refuses to compute with it.
    expect(Raw().header(1, 0).tensor("t", {256}, 16, 0).pad_data(128).b, TERN_OK, "");
    expect(Raw().header(1, 0).tensor("t", {1, 1, 1, 1, 1}, 0, 0).pad_data(64).b, TERN_ERR_FORMAT, "n_dims 5");
    expect(Raw().header(1, 0).tensor("t", {0}, 0, 0).pad_data(64).b, TERN_ERR_FORMAT, "invalid dimension");
    expect(Raw().header(1, 0).tensor("t", {1ull << 40, 1ull << 40}, 0, 0).pad_data(64).b, TERN_ERR_FORMAT,
           "invalid dimension");
    expect(Raw().header(1, 0).tensor("t", {33}, 8, 0).pad_data(64).b, TERN_ERR_FORMAT, "block size");
    expect(Raw().header(1, 0).tensor("t", {32}, 0, 8).pad_data(256).b, TERN_ERR_FORMAT, "not aligned");
    expect(Raw().header(1, 0).tensor("t", {32}, 0, 1ull << 40).pad_data(64).b, TERN_ERR_FORMAT,
           "runs past the end");
    expect(Raw().header(1, 0).tensor("t", {1024}, 0, 0).pad_data(64).b, TERN_ERR_FORMAT, "runs past the end");
    expect(Raw().header(2, 0).tensor("a", {32}, 0, 0).tensor("b", {32}, 0, 96).pad_data(256).b, TERN_ERR_FORMAT,
           "overlap");
    expect(Raw().header(2, 0).tensor("a", {8}, 0, 0).tensor("a", {8}, 0, 32).pad_data(64).b, TERN_ERR_FORMAT,
           "duplicate tensor name");
    expect(Raw().header(0, 2).str("k").put<uint32_t>(4).put<uint32_t>(1).str("k").put<uint32_t>(4).put<uint32_t>(1).b,
           TERN_ERR_FORMAT, "duplicate metadata key");
}

TEST_CASE("opening a missing file is an IO error", "[gguf]") {
    try {
        File::open("/nonexistent/model.gguf");
        FAIL("no exception");
    } catch (const Failure &e) {
        CHECK(e.status() == TERN_ERR_IO);
        CHECK(std::string(e.what()).find("/nonexistent/model.gguf") != std::string::npos);
    }
}
