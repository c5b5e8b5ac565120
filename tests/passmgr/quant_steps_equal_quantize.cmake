# quant_steps_equal_quantize (tests/passmgr/CMakeLists.txt): `octet
# quantize` (interpreter calibration) and its steps run one `octet opt` at
# a time, the state going through the text IR's quant lines in between
# (plan and statistics printed, read back, then formats chosen and
# rewritten), give byte-identical ONNX: the text form of the state loses
# nothing the later passes use.
file(MAKE_DIRECTORY ${OUT})
function(run what)
  execute_process(COMMAND ${OCTET} ${ARGN} RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what}: octet exited ${rc}\n${err}")
  endif()
endfunction()
set(calib --calib ${DATA} --calib-samples 16)
run("quantize" quantize ${MODEL} ${calib} --engine interp --progress=none
    -o ${OUT}/quantized.onnx)
run("prepare" opt ${MODEL} --passes=shape_infer,fold,shape_infer,fuse,shape_infer
    --emit=text -o ${OUT}/prepared.txt)
run("plan and calibrate" opt ${OUT}/prepared.txt --passes=quant_plan,quant_calibrate
    ${calib} --emit=text -o ${OUT}/calibrated.txt)
file(STRINGS ${OUT}/calibrated.txt hists REGEX "^quant %[0-9]+ hist ")
if(NOT hists)
  message(FATAL_ERROR "no statistics in the text after quant_calibrate")
endif()
run("choose and rewrite" opt ${OUT}/calibrated.txt --passes=quant_choose,quant_rewrite
    -o ${OUT}/stepwise.onnx)
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${OUT}/quantized.onnx
                        ${OUT}/stepwise.onnx RESULT_VARIABLE same)
if(NOT same EQUAL 0)
  message(FATAL_ERROR "octet quantize and the quant passes step by step differ")
endif()
