// Helpers shared by the kernels: byte access to packed weights.
//
// Weights are bound as arrays of uint and read byte by byte, because GGUF
// blocks are not 4-byte aligned (a Q8_0 block is 34 bytes) and this needs no
// 8/16-bit storage feature, so the kernels run on any Vulkan 1.1 device.

uint w_u8(uint byte_off) {
    return (W[byte_off >> 2] >> ((byte_off & 3u) * 8u)) & 0xFFu;
}

int w_i8(uint byte_off) {
    return int(w_u8(byte_off) << 24) >> 24;
}

uint w_u16(uint byte_off) {
    return w_u8(byte_off) | (w_u8(byte_off + 1u) << 8);
}

uint w_u32(uint byte_off) {
    if ((byte_off & 3u) == 0u) return W[byte_off >> 2];
    return w_u16(byte_off) | (w_u16(byte_off + 2u) << 16);
}

float w_f16(uint byte_off) {
    return unpackHalf2x16(w_u16(byte_off)).x;
}

// An f16 at an even byte offset: one load of the word that holds it
// (w_f16's two byte reads are two loads of the same word).
float w_f16_even(uint byte_off) {
    return unpackHalf2x16(W[byte_off >> 2] >> ((byte_off & 2u) << 3)).x;
}
