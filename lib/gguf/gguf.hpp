// GGUF v2/v3 reader (memory-mapped, fully validated) and writer.
//
// Every count, size and offset in the file is checked with overflow-safe
// arithmetic before it is used; a corrupt, truncated or hostile file raises
// ternlm::Failure(TERN_ERR_FORMAT) with a message naming the field and its offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "quant/types.hpp"

namespace ternlm::gguf {

enum class ValueType : uint32_t {
    U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
    STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
const char *value_type_name(ValueType t);
// Byte size of a scalar type; 0 for STRING and ARRAY.
size_t value_type_size(ValueType t);

// One metadata value. Scalars are widened into the matching field; arrays of
// scalars keep their raw little-endian bytes; arrays of strings and arrays of
// arrays hold their elements.
struct Value {
    ValueType type = ValueType::U8;
    ValueType elem_type = ValueType::U8; // for ARRAY
    uint64_t count = 0;                  // elements, for ARRAY
    uint64_t u = 0;                      // unsigned integers and BOOL
    int64_t i = 0;                       // signed integers
    double f = 0;                        // F32, F64
    std::string str;                     // STRING
    std::vector<uint8_t> raw;            // ARRAY of scalars
    std::vector<std::string> strs;       // ARRAY of STRING
    std::vector<Value> arrs;             // ARRAY of ARRAY

    bool is_integer() const;
    bool is_float() const { return type == ValueType::F32 || type == ValueType::F64; }
    // Numeric value of a scalar, as the widest type.
    int64_t as_int() const;
    double as_double() const;
    // Element k of a scalar array as double / int64.
    double array_double(uint64_t k) const;
    int64_t array_int(uint64_t k) const;
    // Human-readable form (arrays summarised).
    std::string to_string() const;
};

struct TensorInfo {
    std::string name;
    uint32_t n_dims = 0;
    int64_t ne[4] = {1, 1, 1, 1}; // ne[0] is the row length (contiguous)
    GgmlType type = GgmlType::F32;
    uint64_t offset = 0;          // from the start of the data section
    uint64_t nbytes = 0;
    const uint8_t *data = nullptr; // into the mapping
    uint64_t info_offset = 0;      // where its info record starts in the file

    int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
    int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
    std::string shape_string() const;
};

class File {
public:
    // Maps and parses a file. TERN_ERR_IO if it cannot be opened or mapped.
    static std::unique_ptr<File> open(const std::string &path);
    // Parses a buffer the caller keeps alive (tests, in-memory files).
    static std::unique_ptr<File> from_memory(const uint8_t *data, size_t size);
    ~File();
    File(const File &) = delete;
    File &operator=(const File &) = delete;

    uint32_t version() const { return version_; }
    uint32_t alignment() const { return alignment_; }
    size_t file_size() const { return size_; }
    uint64_t data_offset() const { return data_offset_; }

    const std::vector<std::pair<std::string, Value>> &metadata() const { return kv_; }
    const Value *find(const std::string &key) const;
    const std::vector<TensorInfo> &tensors() const { return tensors_; }
    const TensorInfo *find_tensor(const std::string &name) const;

    // Typed getters: nullptr/default when absent; TERN_ERR_FORMAT on a wrong type.
    std::string get_string(const std::string &key, const std::string &def = "") const;
    int64_t get_int(const std::string &key, int64_t def) const;
    double get_float(const std::string &key, double def) const;
    bool get_bool(const std::string &key, bool def) const;

private:
    File() = default;
    void parse();

    const uint8_t *base_ = nullptr;
    size_t size_ = 0;
    void *mapping_ = nullptr; // non-null when we own an mmap
    uint32_t version_ = 0;
    uint32_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::vector<std::pair<std::string, Value>> kv_;
    std::map<std::string, size_t> kv_index_;
    std::vector<TensorInfo> tensors_;
    std::map<std::string, size_t> tensor_index_;
};

// Streaming writer: metadata and tensor infos first, then each tensor's bytes
// produced by a callback, so a multi-gigabyte file never sits in memory.
class Writer {
public:
    using Fill = std::function<void(uint8_t *dst, size_t nbytes)>;

    explicit Writer(uint32_t alignment = 32) : alignment_(alignment) {}
    void set(const std::string &key, const Value &v);
    void set_u32(const std::string &key, uint32_t v);
    void set_i32(const std::string &key, int32_t v);
    void set_f32(const std::string &key, float v);
    void set_bool(const std::string &key, bool v);
    void set_str(const std::string &key, const std::string &v);
    void set_str_array(const std::string &key, const std::vector<std::string> &v);
    void set_f32_array(const std::string &key, const std::vector<float> &v);
    void set_i32_array(const std::string &key, const std::vector<int32_t> &v);

    // ne[0] is the row length. The fill callback writes exactly nbytes.
    void add_tensor(const std::string &name, GgmlType type, std::vector<int64_t> ne, Fill fill);
    void add_tensor_bytes(const std::string &name, GgmlType type, std::vector<int64_t> ne,
                          std::vector<uint8_t> bytes);

    // Writes the file; TERN_ERR_IO on failure.
    void write(const std::string &path) const;
    // The whole file in memory (tests).
    std::vector<uint8_t> to_bytes() const;

private:
    struct PendingTensor {
        std::string name;
        GgmlType type;
        std::vector<int64_t> ne;
        uint64_t nbytes;
        Fill fill;
    };
    std::vector<uint8_t> header() const;

    uint32_t alignment_;
    std::vector<std::pair<std::string, Value>> kv_;
    std::vector<PendingTensor> tensors_;
};

// Helpers to build Values.
Value make_u32(uint32_t v);
Value make_i32(int32_t v);
Value make_u64(uint64_t v);
Value make_f32(float v);
Value make_f64(double v);
Value make_bool(bool v);
Value make_str(const std::string &v);

} // namespace ternlm::gguf
