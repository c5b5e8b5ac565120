# embed_bytes.cmake: writes the bytes of IN as a C array, for the build.
#   cmake -DIN=file -DOUT=file.c -DSYM=name -P embed_bytes.cmake
# defines `const unsigned char SYM[]` and `const unsigned long SYM_size`.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" hexlen)
math(EXPR size "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" body "${body}")
file(WRITE ${OUT} "/* generated from ${IN} by scripts/embed_bytes.cmake */\n"
  "const unsigned char ${SYM}[] = {\n${body}\n};\n"
  "const unsigned long ${SYM}_size = ${size};\n")
