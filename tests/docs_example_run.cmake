# Runs one example program and compares its output with the expected file, byte for byte.
#   cmake -DCMD=program -DEXPECTED=file -P docs_example_run.cmake
execute_process(COMMAND ${CMD} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${CMD} exited with ${rc}\n${out}${err}")
endif()
file(READ ${EXPECTED} want)
if(NOT out STREQUAL want)
  message(FATAL_ERROR "${CMD} printed\n${out}\nbut ${EXPECTED} says\n${want}")
endif()
message(STATUS "${out}")
