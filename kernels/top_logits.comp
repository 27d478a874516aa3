#version 450
// The 64 largest values of a float row with their indices, ordered as the
// host's sampler orders candidates: value descending, index ascending on
// ties. A decode step ends with it, so that sampling reads 512 bytes back
// instead of the whole row (see Context::sample).
//
// Both passes find a threshold T that at least 64 entries reach, keep the
// entries >= T as candidates (usually a few dozen more than 64), and rank
// each candidate by counting the candidates before it: few barriers, no
// sorting network.
// - pass 0: each workgroup takes 2048 values, 8 per thread; T is the 64th
//   best of the 256 threads' maxima. It writes its best 64, in order.
// - pass 1: one workgroup merges pass 0's lists; T is the 64th best of the
//   lists' first ceil(64 / lists) entries (each list is sorted).
// Keys are the values' bits mapped so that unsigned order is float order;
// missing entries (past the row's end) are (0, index), after all others.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer Row { float X[]; };       // pass 0
layout(std430, binding = 1) buffer Lists { uvec2 L[]; };              // pass 0 writes, pass 1 reads
layout(std430, binding = 2) writeonly buffer Best { uvec2 OUT[]; };   // pass 1: 64 (key, index), then
                                                                      // (candidates, 1 if they overflowed)
layout(push_constant) uniform Params {
    uint n;    // pass 0: values in the row; pass 1: lists to merge (at most 256)
    uint pass;
} p;

const uint K = 64u;       // entries kept
const uint THREADS = 256u;
const uint SPAN = 2048u;  // values per workgroup in pass 0; also the candidate capacity

shared uvec2 s_sample[THREADS]; // what T is chosen from
shared uvec2 s_cand[SPAN];
shared uint s_count;
shared uvec2 s_t;

uint key_of(float x) {
    const uint u = floatBitsToUint(x == 0.0 ? 0.0 : x); // -0 ties with +0, as on the host
    return (u & 0x80000000u) != 0u ? ~u : u | 0x80000000u;
}

// a goes before b.
bool before(uvec2 a, uvec2 b) { return a.x > b.x || (a.x == b.x && a.y < b.y); }

// s_t = the K-th best of s_sample[0..m) (m >= K; entries are distinct).
void choose_threshold(uint m) {
    const uint tid = gl_LocalInvocationID.x;
    if (tid < m) {
        const uvec2 e = s_sample[tid];
        uint rank = 0u;
        for (uint j = 0u; j < m; ++j) rank += before(s_sample[j], e) ? 1u : 0u;
        if (rank == K - 1u) s_t = e;
    }
    barrier();
}

void add_candidate(uvec2 e) {
    const uint slot = atomicAdd(s_count, 1u);
    if (slot < SPAN) s_cand[slot] = e;
}

// Writes the best K candidates, each at its rank, to dst[base..base+K).
void write_ranked(uint base, bool to_out) {
    const uint c = min(s_count, SPAN);
    for (uint i = gl_LocalInvocationID.x; i < c; i += THREADS) {
        const uvec2 e = s_cand[i];
        uint rank = 0u;
        for (uint j = 0u; j < c && rank < K; ++j) rank += before(s_cand[j], e) ? 1u : 0u;
        if (rank < K) {
            if (to_out) OUT[rank] = e;
            else L[base + rank] = e;
        }
    }
}

void rank_chunk() {
    const uint tid = gl_LocalInvocationID.x;
    const uint first = gl_WorkGroupID.x * SPAN + tid * 8u;
    uvec2 v[8];
    for (uint j = 0u; j < 8u; ++j) {
        const uint i = first + j;
        v[j] = uvec2(i < p.n ? key_of(X[i]) : 0u, i);
    }
    uvec2 best = v[0];
    for (uint j = 1u; j < 8u; ++j)
        if (before(v[j], best)) best = v[j];
    s_sample[tid] = best;
    if (tid == 0u) s_count = 0u;
    barrier();
    choose_threshold(THREADS); // 64 maxima reach it, so 64 values do
    const uvec2 t = s_t;
    for (uint j = 0u; j < 8u; ++j)
        if (!before(t, v[j])) add_candidate(v[j]);
    barrier();
    write_ranked(gl_WorkGroupID.x * K, false);
}

void merge_lists() {
    const uint tid = gl_LocalInvocationID.x, lists = p.n;
    const uint take = (K + lists - 1u) / lists; // the first `take` of each list: >= K entries
    if (tid < lists * take) s_sample[tid] = L[(tid / take) * K + tid % take];
    if (tid == 0u) s_count = 0u;
    barrier();
    choose_threshold(lists * take);
    const uvec2 t = s_t;
    if (tid < lists)
        for (uint j = 0u; j < K; ++j) {
            const uvec2 e = L[tid * K + j];
            if (before(t, e)) break; // sorted: the rest are below T too
            add_candidate(e);
        }
    barrier();
    write_ranked(0u, true);
    if (tid == 0u) OUT[K] = uvec2(s_count, s_count > SPAN ? 1u : 0u);
}

void main() {
    if (p.pass == 0u)
        rank_chunk();
    else
        merge_lists();
}
