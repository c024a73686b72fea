# Golden tests: every printer stage of every example, every pass on its own
# inputs, and every malformed input's exact diagnostics. Regenerate with
# scripts/update_goldens.sh, then review the diff.
set(GOLDEN_DIR ${CMAKE_CURRENT_SOURCE_DIR}/golden)
set(COMPARE ${GOLDEN_DIR}/compare.cmake)

function(mlpc_golden_test name workdir expected stream exit)
  add_test(NAME ${name}
    COMMAND ${CMAKE_COMMAND} -DMLPC=$<TARGET_FILE:mlpc> "-DARGS=${ARGN}" -DWORKDIR=${workdir}
            -DEXPECTED=${expected} -DSTREAM=${stream} -DEXIT=${exit} -P ${COMPARE})
endfunction()

# Printer stages of the examples: tests/golden/examples/<model>.<stage>.txt
file(GLOB MLPC_EXAMPLES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/examples/*.mlp)
foreach(model ${MLPC_EXAMPLES})
  get_filename_component(stem ${model} NAME_WE)
  foreach(stage ast ir fused grad infer)
    mlpc_golden_test(golden.${stem}.${stage} ${PROJECT_SOURCE_DIR}
      ${GOLDEN_DIR}/examples/${stem}.${stage}.txt stdout 0
      emit examples/${stem}.mlp --emit=${stage})
  endforeach()
endforeach()

# Passes on focused inputs: tests/golden/passes/<case>.mlp; its first line is
# `# args: <mlpc emit flags>`, the expected dump (stdout + stderr) is <case>.txt.
file(GLOB MLPC_PASS_CASES CONFIGURE_DEPENDS ${GOLDEN_DIR}/passes/*.mlp)
foreach(case ${MLPC_PASS_CASES})
  get_filename_component(stem ${case} NAME_WE)
  file(STRINGS ${case} first LIMIT_COUNT 1)
  string(REGEX REPLACE "^# args: *" "" flags "${first}")
  separate_arguments(flags)
  mlpc_golden_test(pass.${stem} ${GOLDEN_DIR}/passes ${GOLDEN_DIR}/passes/${stem}.txt both 0
    emit ${stem}.mlp ${flags})
endforeach()

# Malformed inputs: tests/malformed/<case>.mlp must fail `mlpc check` with
# exactly <case>.expected on stderr.
file(GLOB MLPC_MALFORMED CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/malformed/*.mlp)
foreach(case ${MLPC_MALFORMED})
  get_filename_component(stem ${case} NAME_WE)
  mlpc_golden_test(malformed.${stem} ${CMAKE_CURRENT_SOURCE_DIR}/malformed
    ${CMAKE_CURRENT_SOURCE_DIR}/malformed/${stem}.expected stderr 1 check ${stem}.mlp)
endforeach()

# Gradient checks of every example (finite differences + fused vs atomic).
foreach(model ${MLPC_EXAMPLES})
  get_filename_component(stem ${model} NAME_WE)
  add_test(NAME gradcheck.${stem} COMMAND mlpc gradcheck ${model})
endforeach()
