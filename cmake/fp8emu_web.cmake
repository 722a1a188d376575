# The browser explorer (web/): built where emscripten (Debian package emscripten) is found,
# as a project of its own with emscripten's CMake toolchain, into ${CMAKE_BINARY_DIR}/web/explorer.
# Sets FP8EMU_EXPLORER_DIR (empty when the explorer is not built) for the tests.
set(FP8EMU_EXPLORER_DIR "")
find_program(FP8EMU_EMXX em++)
find_program(FP8EMU_EM_CONFIG em-config)
if(NOT FP8EMU_EMXX OR NOT FP8EMU_EM_CONFIG)
  message(STATUS "fp8emu explorer: not built: emscripten was not found (Debian: emscripten); its tests are skipped")
  return()
endif()
execute_process(COMMAND ${FP8EMU_EM_CONFIG} EMSCRIPTEN_ROOT OUTPUT_VARIABLE em_root
                OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE em_rc ERROR_QUIET)
set(em_toolchain "${em_root}/cmake/Modules/Platform/Emscripten.cmake")
if(NOT em_rc EQUAL 0 OR NOT EXISTS "${em_toolchain}")
  message(STATUS "fp8emu explorer: not built: emscripten's CMake toolchain was not found (${em_toolchain})")
  return()
endif()
execute_process(COMMAND ${FP8EMU_EMXX} --version OUTPUT_VARIABLE em_version ERROR_QUIET)
string(REGEX MATCH "[0-9]+\\.[0-9]+\\.[0-9]+" em_version "${em_version}")
set(FP8EMU_EXPLORER_DIR ${CMAKE_BINARY_DIR}/web/explorer)
# emscripten's JavaScript optimizer needs Debian's node modules (node-acorn), which a Node.js
# from outside Debian (NodeSource's, say) does not look for in /usr/share/nodejs.
set(em_env ${CMAKE_COMMAND} -E env NODE_PATH=/usr/share/nodejs)
include(ExternalProject)
ExternalProject_Add(fp8emu_explorer
  SOURCE_DIR ${PROJECT_SOURCE_DIR}/web
  BINARY_DIR ${CMAKE_BINARY_DIR}/web/build
  CMAKE_ARGS -DCMAKE_TOOLCHAIN_FILE=${em_toolchain} -DCMAKE_BUILD_TYPE=Release
             -DFP8EMU_VERSION=${PROJECT_VERSION} -DFP8EMU_EXPLORER_DIR=${FP8EMU_EXPLORER_DIR}
  CMAKE_COMMAND ${em_env} ${CMAKE_COMMAND}
  BUILD_COMMAND ${em_env} ${CMAKE_COMMAND} --build <BINARY_DIR>
  BUILD_ALWAYS ON
  INSTALL_COMMAND "")
message(STATUS "fp8emu explorer: built with emscripten ${em_version} into ${FP8EMU_EXPLORER_DIR}")
