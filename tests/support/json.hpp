// A minimal JSON reader for the golden files (objects, arrays, strings with
// escapes incl. \uXXXX, numbers, booleans, null). Test support only.
#pragma once

#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace testsupport {

struct Json {
    enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
    bool b = false;
    double num = 0;
    std::string str;
    std::vector<Json> arr;
    std::map<std::string, Json> obj;

    const Json &operator[](const std::string &k) const {
        auto it = obj.find(k);
        if (it == obj.end()) throw std::runtime_error("json: no key " + k);
        return it->second;
    }
    bool has(const std::string &k) const { return obj.count(k) != 0; }
    std::vector<int> ints() const {
        std::vector<int> v;
        for (const Json &j : arr) v.push_back(int(j.num));
        return v;
    }

    static Json parse(const std::string &s) {
        size_t i = 0;
        Json j = value(s, i);
        return j;
    }

private:
    static void ws(const std::string &s, size_t &i) {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) ++i;
    }
    static void utf8(std::string &out, unsigned cp) {
        if (cp < 0x80) out += char(cp);
        else if (cp < 0x800) out += char(0xC0 | (cp >> 6)), out += char(0x80 | (cp & 0x3F));
        else if (cp < 0x10000)
            out += char(0xE0 | (cp >> 12)), out += char(0x80 | ((cp >> 6) & 0x3F)), out += char(0x80 | (cp & 0x3F));
        else
            out += char(0xF0 | (cp >> 18)), out += char(0x80 | ((cp >> 12) & 0x3F)),
                out += char(0x80 | ((cp >> 6) & 0x3F)), out += char(0x80 | (cp & 0x3F));
    }
    static std::string string(const std::string &s, size_t &i) {
        std::string out;
        ++i; // opening quote
        while (i < s.size() && s[i] != '"') {
            char c = s[i++];
            if (c != '\\') {
                out += c;
                continue;
            }
            char e = s[i++];
            switch (e) {
            case 'n': out += '\n'; break;
            case 't': out += '\t'; break;
            case 'r': out += '\r'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'u': {
                unsigned cp = unsigned(std::strtoul(s.substr(i, 4).c_str(), nullptr, 16));
                i += 4;
                if (cp >= 0xD800 && cp < 0xDC00 && s.compare(i, 2, "\\u") == 0) {
                    unsigned lo = unsigned(std::strtoul(s.substr(i + 2, 4).c_str(), nullptr, 16));
                    i += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                utf8(out, cp);
                break;
            }
            default: out += e;
            }
        }
        ++i; // closing quote
        return out;
    }
    static Json value(const std::string &s, size_t &i) {
        ws(s, i);
        Json j;
        if (s[i] == '{') {
            j.kind = Object;
            ++i;
            ws(s, i);
            if (s[i] == '}') return ++i, j;
            for (;;) {
                ws(s, i);
                std::string k = string(s, i);
                ws(s, i);
                ++i; // ':'
                j.obj[k] = value(s, i);
                ws(s, i);
                if (s[i++] == '}') break;
            }
        } else if (s[i] == '[') {
            j.kind = Array;
            ++i;
            ws(s, i);
            if (s[i] == ']') return ++i, j;
            for (;;) {
                j.arr.push_back(value(s, i));
                ws(s, i);
                if (s[i++] == ']') break;
            }
        } else if (s[i] == '"') {
            j.kind = String;
            j.str = string(s, i);
        } else if (s.compare(i, 4, "true") == 0) {
            j.kind = Bool, j.b = true, i += 4;
        } else if (s.compare(i, 5, "false") == 0) {
            j.kind = Bool, i += 5;
        } else if (s.compare(i, 4, "null") == 0) {
            i += 4;
        } else {
            j.kind = Number;
            char *end = nullptr;
            j.num = std::strtod(s.c_str() + i, &end);
            i = size_t(end - s.c_str());
        }
        return j;
    }
};

} // namespace testsupport
