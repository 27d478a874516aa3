// Eight floats as f16 in one 16-byte word, v[o] .. v[o + 7], rounded to
// nearest even on every device (exact.glsl's pack_half2_rne: NVIDIA's own
// conversions do not all round so).
uvec4 pack8_f16(float v[16], uint o) {
    return uvec4(pack_half2_rne(vec2(v[o], v[o + 1u])), pack_half2_rne(vec2(v[o + 2u], v[o + 3u])),
                 pack_half2_rne(vec2(v[o + 4u], v[o + 5u])), pack_half2_rne(vec2(v[o + 6u], v[o + 7u])));
}
