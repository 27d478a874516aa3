// Metadata values: type names, numeric access, printing.
#include <cstring>

#include "common/error.hpp"
#include "gguf/gguf.hpp"

namespace ternlm::gguf {

const char *value_type_name(ValueType t) {
    static const char *names[] = {"u8",  "i8",  "u16",    "i16",   "u32", "i32", "f32",
                                  "bool", "string", "array", "u64", "i64", "f64"};
    uint32_t k = uint32_t(t);
    return k < 13 ? names[k] : "?";
}

size_t value_type_size(ValueType t) {
    switch (t) {
    case ValueType::U8: case ValueType::I8: case ValueType::BOOL: return 1;
    case ValueType::U16: case ValueType::I16: return 2;
    case ValueType::U32: case ValueType::I32: case ValueType::F32: return 4;
    case ValueType::U64: case ValueType::I64: case ValueType::F64: return 8;
    default: return 0;
    }
}

bool Value::is_integer() const {
    switch (type) {
    case ValueType::U8: case ValueType::I8: case ValueType::U16: case ValueType::I16:
    case ValueType::U32: case ValueType::I32: case ValueType::U64: case ValueType::I64: return true;
    default: return false;
    }
}

int64_t Value::as_int() const {
    switch (type) {
    case ValueType::U8: case ValueType::U16: case ValueType::U32: case ValueType::U64:
    case ValueType::BOOL: return int64_t(u);
    case ValueType::I8: case ValueType::I16: case ValueType::I32: case ValueType::I64: return i;
    case ValueType::F32: case ValueType::F64: return int64_t(f);
    default: return 0;
    }
}

double Value::as_double() const {
    if (is_float()) return f;
    if (type == ValueType::I8 || type == ValueType::I16 || type == ValueType::I32 || type == ValueType::I64)
        return double(i);
    return double(u);
}

namespace {
template <typename T> T load(const uint8_t *p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}
} // namespace

double Value::array_double(uint64_t k) const {
    const uint8_t *p = raw.data() + k * value_type_size(elem_type);
    switch (elem_type) {
    case ValueType::F32: return load<float>(p);
    case ValueType::F64: return load<double>(p);
    default: return double(array_int(k));
    }
}

int64_t Value::array_int(uint64_t k) const {
    const uint8_t *p = raw.data() + k * value_type_size(elem_type);
    switch (elem_type) {
    case ValueType::U8: case ValueType::BOOL: return *p;
    case ValueType::I8: return int8_t(*p);
    case ValueType::U16: return load<uint16_t>(p);
    case ValueType::I16: return load<int16_t>(p);
    case ValueType::U32: return load<uint32_t>(p);
    case ValueType::I32: return load<int32_t>(p);
    case ValueType::U64: return int64_t(load<uint64_t>(p));
    case ValueType::I64: return load<int64_t>(p);
    case ValueType::F32: return int64_t(load<float>(p));
    case ValueType::F64: return int64_t(load<double>(p));
    default: return 0;
    }
}

std::string Value::to_string() const {
    switch (type) {
    case ValueType::STRING: return str;
    case ValueType::BOOL: return u ? "true" : "false";
    case ValueType::F32: case ValueType::F64: return strprintf("%g", f);
    case ValueType::ARRAY: {
        std::string s = strprintf("[%s x %llu", value_type_name(elem_type), (unsigned long long)count);
        if (count && !strs.empty()) s += ": \"" + strs[0] + "\", ...";
        else if (count && !raw.empty()) s += ": " + strprintf("%g", array_double(0)) + ", ...";
        return s + "]";
    }
    default: return is_integer() ? strprintf("%lld", (long long)as_int()) : std::string("?");
    }
}

std::string TensorInfo::shape_string() const {
    std::string s = "[";
    for (uint32_t d = 0; d < n_dims; ++d) s += (d ? ", " : "") + std::to_string(ne[d]);
    return s + "]";
}

Value make_u32(uint32_t v) { Value x; x.type = ValueType::U32; x.u = v; return x; }
Value make_i32(int32_t v) { Value x; x.type = ValueType::I32; x.i = v; return x; }
Value make_u64(uint64_t v) { Value x; x.type = ValueType::U64; x.u = v; return x; }
Value make_f32(float v) { Value x; x.type = ValueType::F32; x.f = v; return x; }
Value make_f64(double v) { Value x; x.type = ValueType::F64; x.f = v; return x; }
Value make_bool(bool v) { Value x; x.type = ValueType::BOOL; x.u = v; return x; }
Value make_str(const std::string &v) { Value x; x.type = ValueType::STRING; x.str = v; return x; }

} // namespace ternlm::gguf
