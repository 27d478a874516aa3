// The sampler chain: greedy, seeded reproducibility, filters, penalty.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>

#include "sampling/sampler.hpp"

using ternlm::Sampler;
using ternlm::SamplerParams;

namespace {
std::vector<float> logits_peaked() {
    std::vector<float> l(100);
    for (int i = 0; i < 100; ++i) l[size_t(i)] = -0.05f * float(i); // token 0 likeliest
    l[42] = 3.0f;
    return l;
}
// Plain temperature sampling: every filter off.
SamplerParams temperature_only(float temperature, uint64_t seed) {
    SamplerParams p;
    p.temperature = temperature;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0;
    p.seed = seed;
    return p;
}
} // namespace

TEST_CASE("greedy picks the first largest logit", "[sampler]") {
    SamplerParams p;
    p.temperature = 0;
    Sampler s(p);
    std::vector<float> l = {1, 5, 5, 2};
    CHECK(s.sample(l.data(), 4) == 1);
    CHECK(ternlm::argmax(l.data(), 4) == 1);
}

TEST_CASE("the same seed gives the same tokens", "[sampler]") {
    const std::vector<float> l = logits_peaked();
    SamplerParams p = temperature_only(1.5f, 77);
    Sampler a(p), b(p);
    std::vector<int> ta, tb;
    for (int i = 0; i < 50; ++i) {
        ta.push_back(a.sample(l.data(), 100));
        tb.push_back(b.sample(l.data(), 100));
    }
    CHECK(ta == tb);
    a.reset();
    CHECK(a.sample(l.data(), 100) == ta[0]);
    p.seed = 78;
    Sampler c(p);
    std::vector<int> tc;
    for (int i = 0; i < 50; ++i) tc.push_back(c.sample(l.data(), 100));
    CHECK(tc != ta);
}

TEST_CASE("top-k 1 and tiny top-p collapse to greedy", "[sampler]") {
    const std::vector<float> l = logits_peaked();
    SamplerParams p;
    p.temperature = 1.0f;
    p.top_k = 1;
    Sampler k1(p);
    for (int i = 0; i < 20; ++i) CHECK(k1.sample(l.data(), 100) == 42);
    p.top_k = 0;
    p.top_p = 1e-6f;
    Sampler tp(p);
    for (int i = 0; i < 20; ++i) CHECK(tp.sample(l.data(), 100) == 42);
    p.top_p = 1.0f;
    p.min_p = 0.99f;
    Sampler mp(p);
    for (int i = 0; i < 20; ++i) CHECK(mp.sample(l.data(), 100) == 42);
}

TEST_CASE("temperature sampling follows the softmax", "[sampler]") {
    std::vector<float> l = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
    Sampler s(temperature_only(1.0f, 3));
    std::map<int, int> count;
    const int n = 20000;
    for (int i = 0; i < n; ++i) count[s.sample(l.data(), 3)]++;
    CHECK(count[0] / double(n) == Approx(0.5).margin(0.02));
    CHECK(count[1] / double(n) == Approx(0.3).margin(0.02));
    CHECK(count[2] / double(n) == Approx(0.2).margin(0.02));
}

TEST_CASE("repetition penalty steers away from recent tokens", "[sampler]") {
    std::vector<float> l = {2.0f, 1.9f, 0.0f};
    SamplerParams p;
    p.temperature = 0;
    p.repeat_penalty = 1.5f;
    Sampler s(p);
    s.accept(0);
    CHECK(s.sample(l.data(), 3) == 1); // 2.0 / 1.5 < 1.9
}
