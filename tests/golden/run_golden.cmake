# One golden case (tests/golden/CMakeLists.txt): runs
#   octet opt CASE.in.txt [--passes=PASSES] --emit=text -o OUT/CASE.txt [ARGS]
# in DIR (so diagnostics name the file as CASE.in.txt), ARGS being what a
# line "# ARGS: ..." of CASE.in.txt gives (quantization options, --calib
# with a file of DIR), and compares the
# output with CASE.out.txt, or standard error with CASE.err.txt.
# OCTET_UPDATE_GOLDEN=1 in the environment writes the expected file instead
# (then read the diff: the expected files are checked by hand).
file(MAKE_DIRECTORY ${OUT})
set(args opt ${CASE}.in.txt --emit=text -o ${OUT}/${CASE}.txt)
if(NOT PASSES STREQUAL "")
  list(APPEND args --passes=${PASSES} --verify-each)
endif()
file(STRINGS ${DIR}/${CASE}.in.txt extra REGEX "^# ARGS: ")
if(extra)
  string(REGEX REPLACE "^# ARGS: " "" extra "${extra}")
  separate_arguments(extra UNIX_COMMAND "${extra}")
  list(APPEND args ${extra})
endif()
file(REMOVE ${OUT}/${CASE}.txt)
execute_process(COMMAND ${OCTET} ${args} WORKING_DIRECTORY ${DIR}
                RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_VARIABLE out)
set(update "$ENV{OCTET_UPDATE_GOLDEN}")
if(EXISTS ${DIR}/${CASE}.err.txt)
  if(rc EQUAL 0)
    message(FATAL_ERROR "${CASE}: expected a failure, octet exited 0")
  endif()
  if(update)
    file(WRITE ${DIR}/${CASE}.err.txt "${err}")
  endif()
  file(READ ${DIR}/${CASE}.err.txt want)
  if(NOT err STREQUAL want)
    message(FATAL_ERROR "${CASE}: diagnostics differ\n--- expected\n${want}--- got\n${err}")
  endif()
else()
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${CASE}: octet exited ${rc}\n${err}")
  endif()
  if(update)
    file(COPY_FILE ${OUT}/${CASE}.txt ${DIR}/${CASE}.out.txt)
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${DIR}/${CASE}.out.txt
                          ${OUT}/${CASE}.txt RESULT_VARIABLE same)
  if(NOT same EQUAL 0)
    execute_process(COMMAND diff -u ${DIR}/${CASE}.out.txt ${OUT}/${CASE}.txt
                    OUTPUT_VARIABLE d)
    message(FATAL_ERROR "${CASE}: output differs from ${CASE}.out.txt\n${d}")
  endif()
endif()
