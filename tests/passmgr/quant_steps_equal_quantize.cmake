# quant_steps_equal_quantize (tests/passmgr/CMakeLists.txt): `octet
# quantize` (interpreter calibration) and its steps run one `octet opt` at
# a time, the state going through the text IR's quant lines in between
# (plan and statistics printed and read back, then formats, then the
# rewrite), give byte-identical ONNX for several option sets: the text form
# of the state loses nothing the later passes use.
file(MAKE_DIRECTORY ${OUT})
function(run what)
  execute_process(COMMAND ${OCTET} ${ARGN} RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what}: octet exited ${rc}\n${err}")
  endif()
endfunction()
set(calib --calib ${DATA} --calib-samples 16)
run("prepare" opt ${MODEL} --passes=shape_infer,fold,shape_infer,fuse,shape_infer
    --emit=text -o ${OUT}/prepared.txt)
# each option set: quantize, then plan+calibrate / choose / rewrite in three
# runs (choose measures on the samples: auto needs them)
foreach(options "" "--precision fp8" "--precision auto"
                "--weights per-block --block-size 4" "--method entropy --activations s8")
  separate_arguments(opts UNIX_COMMAND "${options}")
  run("quantize ${options}" quantize ${MODEL} ${calib} ${opts} --engine interp
      --progress=none -o ${OUT}/quantized.onnx)
  run("plan and calibrate ${options}" opt ${OUT}/prepared.txt
      --passes=quant_plan,quant_calibrate ${calib} ${opts} --emit=text
      -o ${OUT}/calibrated.txt)
  file(STRINGS ${OUT}/calibrated.txt hists REGEX "^quant %[0-9]+ hist ")
  if(NOT hists)
    message(FATAL_ERROR "no statistics in the text after quant_calibrate")
  endif()
  run("choose ${options}" opt ${OUT}/calibrated.txt --passes=quant_choose ${calib}
      ${opts} --emit=text -o ${OUT}/chosen.txt)
  run("rewrite ${options}" opt ${OUT}/chosen.txt --passes=quant_rewrite ${opts}
      -o ${OUT}/stepwise.onnx)
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${OUT}/quantized.onnx
                          ${OUT}/stepwise.onnx RESULT_VARIABLE same)
  if(NOT same EQUAL 0)
    message(FATAL_ERROR "options '${options}': octet quantize and the quant passes "
                        "step by step differ")
  endif()
endforeach()
