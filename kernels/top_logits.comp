#version 450
// The 64 largest values of a float row with their indices, ordered as the
// host's sampler orders candidates: value descending, index ascending on
// ties. A decode step ends with it, so that sampling reads 512 bytes back
// instead of the whole row (see Context::sample).
//
// Two passes over one kernel (p.pass):
// 0: each workgroup ranks 2048 values of the row: bitonic sorts of runs of
//    64, then a tree of merges that keeps the best 64 of each pair of runs;
//    it writes its 64 best (key, index) pairs;
// 1: one workgroup merges the lists pass 0 wrote, 32 at a time, into one.
// Keys are the values' bits mapped so that unsigned order is float order;
// missing entries (past the row's end) are (0, 0xffffffff), below all others.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer Row { float X[]; };       // pass 0
layout(std430, binding = 1) buffer Lists { uvec2 L[]; };              // pass 0 writes, pass 1 reads
layout(std430, binding = 2) writeonly buffer Best { uvec2 OUT[]; };   // pass 1: 64 (key, index)
layout(push_constant) uniform Params {
    uint n;    // pass 0: values in the row; pass 1: lists to merge
    uint pass;
} p;

const uint K = 64u;       // entries kept
const uint RUNS = 32u;    // runs of K in shared memory
const uint SPAN = K * RUNS;
const uvec2 NONE = uvec2(0u, 0xffffffffu);

shared uvec2 s[SPAN];

uint key_of(float x) {
    const uint u = floatBitsToUint(x == 0.0 ? 0.0 : x); // -0 ties with +0, as on the host
    return (u & 0x80000000u) != 0u ? ~u : u | 0x80000000u;
}

// a goes before b.
bool before(uvec2 a, uvec2 b) { return a.x > b.x || (a.x == b.x && a.y < b.y); }

// Orders s[i] and s[l] (i < l): the better first when `first`, else last.
void exchange(uint i, uint l, bool first) {
    const uvec2 a = s[i], b = s[l];
    if (before(b, a) == first) {
        s[i] = b;
        s[l] = a;
    }
}

// Sorts each run of K entries of s, best first.
void sort_runs() {
    for (uint k = 2u; k <= K; k *= 2u) {
        for (uint j = k / 2u; j > 0u; j /= 2u) {
            for (uint t = gl_LocalInvocationID.x; t < SPAN / 2u; t += gl_WorkGroupSize.x) {
                const uint i = (t / j) * 2u * j + t % j;
                // Runs of k alternate direction (bitonic inputs for the next
                // size); the last size sorts every run the same way.
                exchange(i, i + j, k == K || (i & k) == 0u);
            }
            barrier();
        }
    }
}

// Merges the sorted runs of s pairwise, `runs` of them, until run 0 holds
// the best K of all: the best K of two sorted runs A and B are
// max(A[i], B[K-1-i]), a bitonic sequence, sorted by a half-cleaner cascade.
void merge_runs(uint runs) {
    for (uint stride = 1u; stride < runs; stride *= 2u) {
        const uint pairs = runs / (2u * stride);
        for (uint t = gl_LocalInvocationID.x; t < pairs * K; t += gl_WorkGroupSize.x) {
            const uint a = (t / K) * 2u * stride * K, i = t % K;
            const uvec2 x = s[a + i], y = s[a + stride * K + K - 1u - i];
            s[a + i] = before(y, x) ? y : x;
        }
        barrier();
        for (uint j = K / 2u; j > 0u; j /= 2u) {
            for (uint t = gl_LocalInvocationID.x; t < pairs * K / 2u; t += gl_WorkGroupSize.x) {
                const uint a = (t / (K / 2u)) * 2u * stride * K, u = t % (K / 2u);
                const uint i = (u / j) * 2u * j + u % j;
                exchange(a + i, a + i + j, true);
            }
            barrier();
        }
    }
}

void main() {
    const uint tid = gl_LocalInvocationID.x;
    if (p.pass == 0u) {
        const uint base = gl_WorkGroupID.x * SPAN;
        for (uint e = tid; e < SPAN; e += gl_WorkGroupSize.x) {
            const uint i = base + e;
            s[e] = i < p.n ? uvec2(key_of(X[i]), i) : NONE;
        }
        barrier();
        sort_runs();
        merge_runs(RUNS);
        if (tid < K) L[gl_WorkGroupID.x * K + tid] = s[tid];
        return;
    }
    // Pass 1: run 0 carries the best so far; each round loads up to 31 more
    // lists (32 in the first) behind it.
    for (uint first = 0u; first < p.n;) {
        const uint slot0 = first == 0u ? 0u : 1u;
        const uint take = min(RUNS - slot0, p.n - first);
        for (uint e = slot0 * K + tid; e < SPAN; e += gl_WorkGroupSize.x) {
            const uint list = first + e / K - slot0;
            s[e] = e / K < slot0 + take ? L[list * K + e % K] : NONE;
        }
        barrier();
        merge_runs(RUNS);
        first += take;
    }
    if (tid < K) OUT[tid] = s[tid];
}
