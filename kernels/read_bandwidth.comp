#version 450
// Reads n_vec4 uvec4s (each invocation a strided share) and writes one word per
// invocation, so the reads cannot be optimised away: the bench's memory
// bandwidth probe for the roofline.
layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer Src { uvec4 S[]; };
layout(std430, binding = 1) writeonly buffer Dst { uint D[]; };
layout(push_constant) uniform Params { uint n_vec4; } p;

void main() {
    const uint id = gl_GlobalInvocationID.x, stride = gl_NumWorkGroups.x * 256u;
    uvec4 acc = uvec4(0u);
    for (uint i = id; i < p.n_vec4; i += stride) acc ^= S[i];
    D[id] = acc.x ^ acc.y ^ acc.z ^ acc.w;
}
