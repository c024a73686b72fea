# Command-line tests: tests/cli/<name>.sh, each in its own empty directory,
# with MLPC, SRC and MLPC_DATA in the environment. A script that cannot run
# (no names.txt, no gnuplot) exits 77 and CTest reports it as skipped.
# names.txt where scripts/setup.sh finds it: data/, then ../shared/data/ (an
# $MLPC_DATA set for ctest wins, as for the other tests).
if(DEFINED ENV{MLPC_DATA})
  set(MLPC_CLI_DATA $ENV{MLPC_DATA})
elseif(EXISTS ${PROJECT_SOURCE_DIR}/data/names.txt)
  set(MLPC_CLI_DATA ${PROJECT_SOURCE_DIR}/data/names.txt)
else()
  set(MLPC_CLI_DATA ${PROJECT_SOURCE_DIR}/../shared/data/names.txt)
endif()
file(GLOB MLPC_CLI_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/cli/*.sh)
list(FILTER MLPC_CLI_TESTS EXCLUDE REGEX "/lib\\.sh$")
foreach(script ${MLPC_CLI_TESTS})
  get_filename_component(stem ${script} NAME_WE)
  set(workdir ${CMAKE_CURRENT_BINARY_DIR}/cli/${stem})
  add_test(NAME cli.${stem}
           COMMAND sh -c "rm -rf \"$0\" && mkdir -p \"$0\" && cd \"$0\" && exec bash \"$1\""
                   ${workdir} ${script})
  set_tests_properties(cli.${stem} PROPERTIES
    SKIP_RETURN_CODE 77
    ENVIRONMENT "MLPC=$<TARGET_FILE:mlpc>;SRC=${PROJECT_SOURCE_DIR};MLPC_DATA=${MLPC_CLI_DATA}")
endforeach()
