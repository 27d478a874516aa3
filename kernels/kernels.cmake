# Compiles the compute kernels to SPIR-V with glslangValidator and embeds them
# in the library (TERNLM_SPIRV_SOURCE, added to the core). Included, not a
# subdirectory: the generated source must be built in the core's directory.
# matmul.comp and embed.comp are compiled once per weight type (-DTYPE_<T>), gemv.comp once
# per type it has a fast path for.
# TQ1_0 and I2_S are held on the device as TQ2_0 (lib/backend/vulkan/layout.hpp).
set(TERNLM_WEIGHT_TYPES F32 F16 BF16 Q8_0 Q4_0 Q5_0 Q4_K Q5_K Q6_K TQ2_0)
set(TERNLM_PLAIN_KERNELS rms_norm rope rope_kv elementwise glu_quant attention attention_tiled read_bandwidth act_scales act_quant norm_quant kv_store
  top_logits attn_combine moe_route moe_add gemv_f16 stage_gemv_probe f16_round_probe)
# gemv_f16_4k: gemv_f16.comp for rows of up to 4096 (half the shared memory)
# Types with an integer decode GEMV (gemv.comp), built with and without
# OpSDot (used where the device has VK_KHR_shader_integer_dot_product).
set(TERNLM_GEMV_TYPES Q4_0 Q5_0 Q4_K Q5_K Q6_K Q8_0 TQ2_0)
# gemv.comp's GLU build (the decode gate and up products with the gated
# activation, and its quantization for ffn_down, fused): the types it was
# measured faster for on the H100 (docs/performance.md, session 20).
# launch_rules.hpp's has_gemv_glu must name the same types.
set(TERNLM_GLU_TYPES TQ2_0 Q4_K)
# Quantized types with 8-bit activations: the prefill GEMM, with plain FMAs
# (gemm.comp), and where the device has NV cooperative matrices on the
# matrix units (gemm_coop.comp), from weight rows dequantized to f16 by
# dequant_f16.comp (TQ2_0 and Q4_K decode their fields in the GEMM's tiles).
set(TERNLM_GEMM_TYPES Q8_0 Q4_0 Q5_0 Q4_K Q5_K Q6_K TQ2_0)
set(TERNLM_KERNEL_BIN ${CMAKE_BINARY_DIR}/kernels)
set(spv_dir ${TERNLM_KERNEL_BIN}/spv)
file(MAKE_DIRECTORY ${spv_dir})
set(includes ${CMAKE_CURRENT_LIST_DIR}/common.glsl ${CMAKE_CURRENT_LIST_DIR}/dequant.glsl
  ${CMAKE_CURRENT_LIST_DIR}/act_quant_body.glsl ${CMAKE_CURRENT_LIST_DIR}/exact.glsl
  ${CMAKE_CURRENT_LIST_DIR}/glu_act.glsl ${CMAKE_CURRENT_LIST_DIR}/block_tail.glsl ${CMAKE_CURRENT_LIST_DIR}/attn_join.glsl
  ${CMAKE_CURRENT_LIST_DIR}/weights16.glsl ${CMAKE_CURRENT_LIST_DIR}/pack_f16.glsl)
set(spv_files "")

function(ternlm_spirv out src)
  add_custom_command(OUTPUT ${out}
    COMMAND ${TERNLM_GLSLANG} -V --target-env vulkan1.1 ${ARGN} -o ${out} ${src}
    DEPENDS ${src} ${includes}
    COMMENT "SPIR-V ${out}" VERBATIM)
endfunction()

foreach(k ${TERNLM_PLAIN_KERNELS})
  ternlm_spirv(${spv_dir}/${k}.spv ${CMAKE_CURRENT_LIST_DIR}/${k}.comp)
  list(APPEND spv_files ${spv_dir}/${k}.spv)
endforeach()
ternlm_spirv(${spv_dir}/gemv_f16_4k.spv ${CMAKE_CURRENT_LIST_DIR}/gemv_f16.comp -DMAX_COLS=4096u)
list(APPEND spv_files ${spv_dir}/gemv_f16_4k.spv)
# norm_quant with the gated activation computed on the fly (BitNet's ffn_sub_norm)
ternlm_spirv(${spv_dir}/glu_norm_quant.spv ${CMAKE_CURRENT_LIST_DIR}/norm_quant.comp -DGLU)
list(APPEND spv_files ${spv_dir}/glu_norm_quant.spv)
# attention whose last split joins the head and quantizes the row (decode)
ternlm_spirv(${spv_dir}/attention_quant.spv ${CMAKE_CURRENT_LIST_DIR}/attention.comp -DJOIN_QUANT)
# Prefill attention on the matrix units, one build per head_dim it takes
foreach(hd 64 128)
  ternlm_spirv(${spv_dir}/attention_coop_hd${hd}.spv ${CMAKE_CURRENT_LIST_DIR}/attention_coop.comp -DHD_${hd})
  list(APPEND spv_files ${spv_dir}/attention_coop_hd${hd}.spv)
endforeach()
# attention_join: split-K decode attention whose last split joins the head (no quantization)
ternlm_spirv(${spv_dir}/attention_join.spv ${CMAKE_CURRENT_LIST_DIR}/attention.comp -DJOIN)
list(APPEND spv_files ${spv_dir}/attention_quant.spv ${spv_dir}/attention_join.spv)
# _hw16: the same three, the f16 fold rounded by the device's conversion
# (where Device::use_hw_f16_rounding found it rounds as exact.glsl's f16_round)
ternlm_spirv(${spv_dir}/attention_hw16.spv ${CMAKE_CURRENT_LIST_DIR}/attention.comp -DHW_F16_ROUND)
ternlm_spirv(${spv_dir}/attention_quant_hw16.spv ${CMAKE_CURRENT_LIST_DIR}/attention.comp -DJOIN_QUANT -DHW_F16_ROUND)
ternlm_spirv(${spv_dir}/attention_join_hw16.spv ${CMAKE_CURRENT_LIST_DIR}/attention.comp -DJOIN -DHW_F16_ROUND)
list(APPEND spv_files ${spv_dir}/attention_hw16.spv ${spv_dir}/attention_quant_hw16.spv ${spv_dir}/attention_join_hw16.spv)
# attn_combine with the 8-bit quantization of its row for the next GEMV
ternlm_spirv(${spv_dir}/attn_combine_quant.spv ${CMAKE_CURRENT_LIST_DIR}/attn_combine.comp -DQUANT)
list(APPEND spv_files ${spv_dir}/attn_combine_quant.spv)
foreach(t ${TERNLM_WEIGHT_TYPES})
  string(TOLOWER ${t} lt)
  ternlm_spirv(${spv_dir}/matmul_${lt}.spv ${CMAKE_CURRENT_LIST_DIR}/matmul.comp -DTYPE_${t})
  ternlm_spirv(${spv_dir}/embed_${lt}.spv ${CMAKE_CURRENT_LIST_DIR}/embed.comp -DTYPE_${t})
  list(APPEND spv_files ${spv_dir}/matmul_${lt}.spv ${spv_dir}/embed_${lt}.spv)
endforeach()

foreach(t ${TERNLM_GLU_TYPES})
  string(TOLOWER ${t} lt)
  ternlm_spirv(${spv_dir}/gemv_glu_${lt}.spv ${CMAKE_CURRENT_LIST_DIR}/gemv.comp -DTYPE_${t} -DGLU)
  ternlm_spirv(${spv_dir}/gemv_glu_${lt}_dot.spv ${CMAKE_CURRENT_LIST_DIR}/gemv.comp -DTYPE_${t} -DDOT4 -DGLU)
  ternlm_spirv(${spv_dir}/gemv_glu_r1_${lt}.spv ${CMAKE_CURRENT_LIST_DIR}/gemv.comp -DTYPE_${t} -DGLU -DR1)
  ternlm_spirv(${spv_dir}/gemv_glu_r1_${lt}_dot.spv ${CMAKE_CURRENT_LIST_DIR}/gemv.comp -DTYPE_${t} -DDOT4 -DGLU -DR1)
  list(APPEND spv_files ${spv_dir}/gemv_glu_${lt}.spv ${spv_dir}/gemv_glu_${lt}_dot.spv
       ${spv_dir}/gemv_glu_r1_${lt}.spv ${spv_dir}/gemv_glu_r1_${lt}_dot.spv)
endforeach()

foreach(t ${TERNLM_GEMV_TYPES})
  string(TOLOWER ${t} lt)
  ternlm_spirv(${spv_dir}/gemv_${lt}.spv ${CMAKE_CURRENT_LIST_DIR}/gemv.comp -DTYPE_${t})
  ternlm_spirv(${spv_dir}/gemv_${lt}_dot.spv ${CMAKE_CURRENT_LIST_DIR}/gemv.comp -DTYPE_${t} -DDOT4)
  # gemv8: 8 activation rows per workgroup, for prefill
  ternlm_spirv(${spv_dir}/gemv8_${lt}.spv ${CMAKE_CURRENT_LIST_DIR}/gemv.comp -DTYPE_${t} -DNT=8u)
  ternlm_spirv(${spv_dir}/gemv8_${lt}_dot.spv ${CMAKE_CURRENT_LIST_DIR}/gemv.comp -DTYPE_${t} -DDOT4 -DNT=8u)
  # gemv_rope: the decode q/k/v product with RoPE and the KV-cache append fused
  ternlm_spirv(${spv_dir}/gemv_rope_${lt}.spv ${CMAKE_CURRENT_LIST_DIR}/gemv.comp -DTYPE_${t} -DROPE_KV)
  ternlm_spirv(${spv_dir}/gemv_rope_${lt}_dot.spv ${CMAKE_CURRENT_LIST_DIR}/gemv.comp -DTYPE_${t} -DDOT4 -DROPE_KV)
  # _r1: the same, built for one row a thread group (fewer registers)
  ternlm_spirv(${spv_dir}/gemv_r1_${lt}.spv ${CMAKE_CURRENT_LIST_DIR}/gemv.comp -DTYPE_${t} -DR1)
  ternlm_spirv(${spv_dir}/gemv_r1_${lt}_dot.spv ${CMAKE_CURRENT_LIST_DIR}/gemv.comp -DTYPE_${t} -DDOT4 -DR1)
  ternlm_spirv(${spv_dir}/gemv_rope_r1_${lt}.spv ${CMAKE_CURRENT_LIST_DIR}/gemv.comp -DTYPE_${t} -DROPE_KV -DR1)
  ternlm_spirv(${spv_dir}/gemv_rope_r1_${lt}_dot.spv ${CMAKE_CURRENT_LIST_DIR}/gemv.comp -DTYPE_${t} -DDOT4 -DROPE_KV -DR1)
  list(APPEND spv_files ${spv_dir}/gemv_${lt}.spv ${spv_dir}/gemv_${lt}_dot.spv
       ${spv_dir}/gemv8_${lt}.spv ${spv_dir}/gemv8_${lt}_dot.spv
       ${spv_dir}/gemv_rope_${lt}.spv ${spv_dir}/gemv_rope_${lt}_dot.spv
       ${spv_dir}/gemv_r1_${lt}.spv ${spv_dir}/gemv_r1_${lt}_dot.spv
       ${spv_dir}/gemv_rope_r1_${lt}.spv ${spv_dir}/gemv_rope_r1_${lt}_dot.spv)
endforeach()

foreach(t ${TERNLM_GEMM_TYPES})
  string(TOLOWER ${t} lt)
  ternlm_spirv(${spv_dir}/gemm_${lt}.spv ${CMAKE_CURRENT_LIST_DIR}/gemm.comp -DTYPE_${t})
  # CM x CN x CK: the shape device.cpp looks for in the device's list
  ternlm_spirv(${spv_dir}/gemm_coop_${lt}.spv ${CMAKE_CURRENT_LIST_DIR}/gemm_coop.comp -DTYPE_${t}
               -DCM=16u -DCN=8u -DCK=16u)
  list(APPEND spv_files ${spv_dir}/gemm_${lt}.spv ${spv_dir}/gemm_coop_${lt}.spv)
  if(NOT t STREQUAL TQ2_0) # 128 x 128 and 128 x 64 tiles for large products (launch_rules' gemm_coop_tiles)
    ternlm_spirv(${spv_dir}/gemm_coop_wide_${lt}.spv ${CMAKE_CURRENT_LIST_DIR}/gemm_coop.comp -DTYPE_${t}
                 -DCM=16u -DCN=8u -DCK=16u -DWIDE)
    ternlm_spirv(${spv_dir}/gemm_coop_tall_${lt}.spv ${CMAKE_CURRENT_LIST_DIR}/gemm_coop.comp -DTYPE_${t}
                 -DCM=16u -DCN=8u -DCK=16u -DTALL)
    list(APPEND spv_files ${spv_dir}/gemm_coop_wide_${lt}.spv ${spv_dir}/gemm_coop_tall_${lt}.spv)
  endif()
  if(t STREQUAL Q4_K) # up to three matrices in one product (the executor's PendingGemm; has_grouped_gemm)
    foreach(shape WIDE TALL)
      string(TOLOWER ${shape} ls)
      ternlm_spirv(${spv_dir}/gemm_coop_${ls}_grouped_${lt}.spv ${CMAKE_CURRENT_LIST_DIR}/gemm_coop.comp -DTYPE_${t}
                   -DCM=16u -DCN=8u -DCK=16u -D${shape} -DGROUPED)
      list(APPEND spv_files ${spv_dir}/gemm_coop_${ls}_grouped_${lt}.spv)
    endforeach()
  endif()
  if(t STREQUAL Q4_K) # the wide build with the timing probes (TERNLM_GEMM_PROBE)
    ternlm_spirv(${spv_dir}/gemm_coop_probe_${lt}.spv ${CMAKE_CURRENT_LIST_DIR}/gemm_coop.comp -DTYPE_${t}
                 -DCM=16u -DCN=8u -DCK=16u -DWIDE -DPROBES)
    list(APPEND spv_files ${spv_dir}/gemm_coop_probe_${lt}.spv)
  endif()
  if(NOT t STREQUAL TQ2_0 AND NOT t STREQUAL Q4_K)
    ternlm_spirv(${spv_dir}/dequant_f16_${lt}.spv ${CMAKE_CURRENT_LIST_DIR}/dequant_f16.comp -DTYPE_${t})
    list(APPEND spv_files ${spv_dir}/dequant_f16_${lt}.spv)
  endif()
endforeach()

set(TERNLM_SPIRV_SOURCE ${TERNLM_KERNEL_BIN}/spirv_blobs.cpp)
string(REPLACE ";" "," spv_arg "${spv_files}") # a list would split the argument
add_custom_command(OUTPUT ${TERNLM_KERNEL_BIN}/spirv_blobs.cpp
  COMMAND ${CMAKE_COMMAND} "-DSPV_FILES=${spv_arg}" -DOUT=${TERNLM_KERNEL_BIN}/spirv_blobs.cpp
          -P ${CMAKE_CURRENT_LIST_DIR}/embed_spirv.cmake
  DEPENDS ${spv_files} ${CMAKE_CURRENT_LIST_DIR}/embed_spirv.cmake
  COMMENT "Embedding SPIR-V kernels" VERBATIM)
