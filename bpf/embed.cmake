# cmake -DINPUT=obj -DOUTPUT=file.cpp -DSYMBOL=name -P embed.cmake: writes the bytes of INPUT
# as a C++ array, so the compiled BPF object travels inside the binary (nothing is read from
# disk or fetched at run time).
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR size "${hex_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],)" "\\1\n" bytes "${bytes}")
file(WRITE "${OUTPUT}" "// Generated from ${INPUT} by bpf/embed.cmake; do not edit.\n#include <cstddef>\n#include <cstdint>\nnamespace nm {\nalignas(8) extern const uint8_t ${SYMBOL}[] = {\n${bytes}};\nextern const size_t ${SYMBOL}_size = ${size};\n}  // namespace nm\n")
