# Runs one mlpc command and diffs its output with a checked-in expectation.
#   -DMLPC=path/to/mlpc -DARGS="a;b;c" -DWORKDIR=dir -DEXPECTED=file
#   -DSTREAM=stdout|stderr -DEXIT=expected exit code
execute_process(
  COMMAND ${MLPC} ${ARGS}
  WORKING_DIRECTORY ${WORKDIR}
  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(STREAM STREQUAL "stderr")
  set(actual "${err}")
elseif(STREAM STREQUAL "both")
  set(actual "${out}${err}")
else()
  set(actual "${out}")
endif()
file(READ ${EXPECTED} expected)
if(NOT rc STREQUAL EXIT)
  message(FATAL_ERROR "exit code ${rc}, expected ${EXIT}\nstdout:\n${out}\nstderr:\n${err}")
endif()
if(NOT actual STREQUAL expected)
  get_filename_component(name ${EXPECTED} NAME)
  file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/${name}.actual "${actual}")
  execute_process(COMMAND diff -u ${EXPECTED} ${CMAKE_CURRENT_BINARY_DIR}/${name}.actual)
  message(FATAL_ERROR "output differs from ${EXPECTED}")
endif()
