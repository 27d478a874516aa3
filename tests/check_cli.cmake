# `ternlm -m stories260K.gguf -p "Once upon a time" -n 32 --temp 0` prints
# exactly llama.cpp's greedy continuation (golden/stories260K/p0.json).
file(READ ${SHARED}/golden/stories260K/p0.json golden)
string(JSON prompt GET "${golden}" prompt)
string(JSON expected GET "${golden}" greedy_text)
set(backend_args "")
if(BACKEND)
  set(backend_args -b ${BACKEND})
endif()
execute_process(
  COMMAND ${CLI} -m ${SHARED}/models/stories260K.gguf -p "${prompt}" -n 32 --temp 0 -t 2 ${backend_args}
  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "ternlm exited with ${rc}: ${err}")
endif()
if(NOT out STREQUAL "${prompt}${expected}\n")
  message(FATAL_ERROR "CLI output differs from llama.cpp's greedy text\n got: [${out}]\nwant: [${prompt}${expected}]")
endif()
if(NOT err MATCHES "prefill: [0-9]+ tokens, [0-9.]+ tokens/s \\| decode: [0-9]+ tokens, [0-9.]+ tokens/s")
  message(FATAL_ERROR "CLI did not report speeds on stderr: ${err}")
endif()
message(STATUS "CLI greedy output matches llama.cpp")
