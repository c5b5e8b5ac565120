# print(parse(text)) == text: MODEL printed in full, read back and printed
# again must give the same bytes; so must `opt --emit=text` with no pass.
file(MAKE_DIRECTORY ${OUT})
execute_process(COMMAND ${OCTET} inspect --full ${MODEL} -o ${OUT}/a.txt RESULT_VARIABLE rc1)
execute_process(COMMAND ${OCTET} inspect --full ${OUT}/a.txt -o ${OUT}/b.txt RESULT_VARIABLE rc2
                ERROR_VARIABLE err)
execute_process(COMMAND ${OCTET} opt ${OUT}/a.txt --emit=text -o ${OUT}/c.txt RESULT_VARIABLE rc3)
if(NOT rc1 EQUAL 0 OR NOT rc2 EQUAL 0 OR NOT rc3 EQUAL 0)
  message(FATAL_ERROR "octet failed (${rc1} ${rc2} ${rc3})\n${err}")
endif()
foreach(f b c)
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${OUT}/a.txt ${OUT}/${f}.txt
                  RESULT_VARIABLE same)
  if(NOT same EQUAL 0)
    message(FATAL_ERROR "text IR of ${MODEL} changes when read back (${f}.txt)")
  endif()
endforeach()
