#version 450
// Probe (tests/test_vulkan_probes.cpp, "Vulkan GEMV stage chain probe"):
// what a dependent GEMV stage costs when the stages run inside one
// dispatch of persistent workgroups, against one dispatch per stage with a
// pipeline barrier between (the decode step today). Not used by the library.
//
// Stage s multiplies an n x n matrix of int8 weights by the int8 vector
// that stage s - 1 wrote: y[r] = sum_c W_s[r][c] * q_s[c], exact in int32,
// and writes byte (y[r] & 0xFF) of each row as q_{s+1}[r]. A workgroup of
// 64 threads takes four rows at a time (one packed word of the output).
// Stages [p.first, p.last) run in this dispatch; with more than one, each
// workgroup counts itself done in C[s] after stage s and waits for C[s - 1]
// to reach the workgroup count before stage s (every workgroup must be
// resident at once: the host launches few enough). p.flags:
// - 1: the workgroup's first weights of stage s are loaded before that
//   wait, as a decode step that waits inside could load its next
//   product's weights;
// - 2: the wait polls with plain (volatile) loads, not atomic adds of 0;
// - 4: workgroups count themselves in 8 counters a stage (by index mod 8),
//   which the wait sums, so that arrivals contend 8 ways less.
// A wait that gives up sets C[8 * p.last] (the host checks it); none
// returns silently with wrong data.
#extension GL_EXT_spirv_intrinsics : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_EXT_control_flow_attributes : require
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Weights { uvec4 W[]; };
layout(std430, binding = 1) coherent buffer Acts { uint Q[]; };
layout(std430, binding = 1) coherent buffer Acts4 { uvec4 Q4[]; };
layout(std430, binding = 2) coherent volatile buffer Counters { uint C[]; };
layout(push_constant) uniform Params { uint n, first, last, flags; } p;

spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot_packed(uint a, uint b, spirv_literal int packed_vector_format);
int dot16(uvec4 a, uvec4 b) {
    return sdot_packed(a.x, b.x, 0) + sdot_packed(a.y, b.y, 0) + sdot_packed(a.z, b.z, 0) + sdot_packed(a.w, b.w, 0);
}

const uint RG = 4u;   // rows a workgroup takes at once
const uint MAXI = 4u; // 16-byte items of a row a thread holds: n <= 64 * 16 * MAXI
uvec4 w[RG][MAXI];
shared int red[RG][64];

void load_w(uint s, uint rg) {
    const uint ipr = p.n / 16u, tid = gl_LocalInvocationID.x;
    [[unroll]] for (uint r = 0u; r < RG; ++r)
        [[unroll]] for (uint i = 0u; i < MAXI; ++i) {
            const uint it = tid + 64u * i;
            w[r][i] = it < ipr ? W[(s * p.n + rg * RG + r) * ipr + it] : uvec4(0u);
        }
}

// Rows rg*4 .. rg*4+3 of stage s from the weights in w.
void compute(uint s, uint rg) {
    const uint ipr = p.n / 16u, tid = gl_LocalInvocationID.x;
    int acc[RG];
    [[unroll]] for (uint r = 0u; r < RG; ++r) acc[r] = 0;
    [[unroll]] for (uint i = 0u; i < MAXI; ++i) {
        const uint it = tid + 64u * i;
        if (it >= ipr) break;
        const uvec4 x = Q4[s * ipr + it];
        [[unroll]] for (uint r = 0u; r < RG; ++r) acc[r] += dot16(w[r][i], x);
    }
    const uint sg = gl_SubgroupSize, n_sg = 64u / sg;
    [[unroll]] for (uint r = 0u; r < RG; ++r) {
        acc[r] = subgroupAdd(acc[r]);
        if (gl_SubgroupInvocationID == 0u) red[r][tid / sg] = acc[r];
    }
    barrier();
    if (tid == 0u) {
        uint word = 0u;
        for (uint r = 0u; r < RG; ++r) {
            int y = 0;
            for (uint j = 0u; j < n_sg; ++j) y += red[r][j];
            word |= (uint(y) & 0xFFu) << (8u * r);
        }
        Q[(s + 1u) * (p.n / 4u) + rg] = word;
    }
    barrier(); // red is rewritten by the next rows
}

shared bool s_ok;

// How many workgroups have counted stage s done.
uint arrived(uint s) {
    const bool spread = (p.flags & 4u) != 0u, by_load = (p.flags & 2u) != 0u;
    uint total = 0u;
    for (uint i = 0u; i < (spread ? 8u : 1u); ++i) total += by_load ? C[8u * s + i] : atomicAdd(C[8u * s + i], 0u);
    return total;
}

// Until every workgroup has counted stage s done; false if it gave up.
bool wait_for(uint s) {
    if (gl_LocalInvocationID.x == 0u) {
        uint seen = arrived(s);
        for (uint i = 0u; seen < gl_NumWorkGroups.x && i < (1u << 20); ++i) {
            if ((i & 255u) == 255u && C[8u * p.last] != 0u) break; // another gave up: not all are resident
            seen = arrived(s);
        }
        s_ok = seen >= gl_NumWorkGroups.x; // checked after the loop: lavapipe may end a loop early
        if (!s_ok) atomicOr(C[8u * p.last], 1u);
        memoryBarrierBuffer();
    }
    barrier();
    return s_ok;
}

void main() {
    const uint wg = gl_WorkGroupID.x, groups = gl_NumWorkGroups.x, n_rg = p.n / RG;
    for (uint s = p.first; s < p.last; ++s) {
        const bool pre = (p.flags & 1u) != 0u && wg < n_rg;
        if (pre) load_w(s, wg);
        if (s > p.first && !wait_for(s - 1u)) return;
        for (uint rg = wg; rg < n_rg; rg += groups) {
            if (!(pre && rg == wg)) load_w(s, rg);
            compute(s, rg);
        }
        if (p.last - p.first > 1u) {
            memoryBarrierBuffer();
            barrier();
            if (gl_LocalInvocationID.x == 0u) {
                memoryBarrierBuffer();
                atomicAdd(C[8u * s + ((p.flags & 4u) != 0u ? wg % 8u : 0u)], 1u);
            }
        }
    }
}
