# msp_embed(OUT SYMBOL FILE...): writes OUT, a C file defining
#   const msp_embedded_t SYMBOL[] = {{"name", bytes, len}, ..., {NULL, NULL, 0}};
# where name is the file's name without its directory and extension. The data
# files are compiled in so that the msp binary needs nothing installed beside
# it; CMake regenerates OUT whenever a listed file changes.
function(msp_embed out symbol)
  set(body "#include \"embedded.h\"\n\n")
  set(table "")
  set(i 0)
  foreach(f IN LISTS ARGN)
    file(READ "${f}" hex HEX)
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
    string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
    get_filename_component(name "${f}" NAME_WE)
    file(SIZE "${f}" size)
    string(APPEND body "static const unsigned char ${symbol}_${i}[] = {\n${bytes}0x00};\n\n")
    string(APPEND table "    {\"${name}\", (const char *)${symbol}_${i}, ${size}},\n")
    math(EXPR i "${i} + 1")
  endforeach()
  string(APPEND body "const msp_embedded_t ${symbol}[] = {\n${table}    {0, 0, 0},\n};\n")
  file(CONFIGURE OUTPUT "${out}" CONTENT "${body}" @ONLY)
  set_property(DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}" APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${ARGN})
endfunction()
