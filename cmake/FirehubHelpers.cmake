# Helper functions so that targets are declared in one line each instead of copied blocks.

set(FIREHUB_WARNINGS -Wall -Wextra -Wno-unused-parameter)

# firehub_cc_library(NAME SRCS a.cc b.cc DEPS x y [SHARED])
# A core library. Public headers live in core/include/firehub (one include root for the host).
function(firehub_cc_library name)
  cmake_parse_arguments(ARG "SHARED" "" "SRCS;DEPS" ${ARGN})
  if(ARG_SHARED)
    add_library(${name} SHARED ${ARG_SRCS})
    set_target_properties(${name} PROPERTIES BUILD_RPATH "$ORIGIN")
  else()
    add_library(${name} STATIC ${ARG_SRCS})
  endif()
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/core/include)
  target_compile_options(${name} PRIVATE ${FIREHUB_WARNINGS})
  target_compile_definitions(${name} PUBLIC BOOST_DLL_USE_STD_FS)
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# firehub_connector(NAME SRCS a.cc DEPS x)
# Builds one connector twice:
#  - firehub_connector_<NAME>: the plugin (a MODULE in <build>/plugins, hidden visibility, the only
#    exported symbol is the descriptor alias);
#  - firehub_connector_<NAME>_static: the same code as a static library, for tests that register
#    the connector explicitly without dlopen.
function(firehub_connector name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  # config.schema.json is compiled into the plugin as text (generated/config_schema.h).
  set(gen ${CMAKE_CURRENT_BINARY_DIR}/generated)
  set(schema_file ${CMAKE_CURRENT_SOURCE_DIR}/config.schema.json)
  if(EXISTS ${schema_file})
    file(READ ${schema_file} FIREHUB_CONFIG_SCHEMA)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${schema_file})
  else()
    set(FIREHUB_CONFIG_SCHEMA "{\"type\": \"object\", \"additionalProperties\": false}")
  endif()
  file(CONFIGURE OUTPUT ${gen}/config_schema.h @ONLY CONTENT
"// Generated from config.schema.json. Do not edit.
#pragma once
inline constexpr const char kConfigSchema[] = R\"FHSCHEMA(@FIREHUB_CONFIG_SCHEMA@)FHSCHEMA\";
")

  set(static firehub_connector_${name}_static)
  add_library(${static} STATIC ${ARG_SRCS})
  target_include_directories(${static} PRIVATE ${gen})
  target_compile_options(${static} PRIVATE ${FIREHUB_WARNINGS})
  target_link_libraries(${static} PUBLIC firehub_sdk ${ARG_DEPS})

  set(plugin firehub_connector_${name})
  add_library(${plugin} MODULE ${ARG_SRCS})
  target_compile_options(${plugin} PRIVATE ${FIREHUB_WARNINGS})
  target_compile_definitions(${plugin} PRIVATE FIREHUB_PLUGIN_SHARED)
  target_include_directories(${plugin} PRIVATE ${gen})
  target_link_libraries(${plugin} PRIVATE firehub_sdk ${ARG_DEPS})
  set_target_properties(${plugin} PROPERTIES
    PREFIX ""
    OUTPUT_NAME firehub_connector_${name}
    LIBRARY_OUTPUT_DIRECTORY ${FIREHUB_PLUGIN_OUTPUT_DIR}
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    BUILD_RPATH "$ORIGIN/../lib"
    INSTALL_RPATH "$ORIGIN/..")
  install(TARGETS ${plugin} LIBRARY DESTINATION ${FIREHUB_INSTALL_LIBDIR}/plugins)
  # The connector's config schema travels with the plugin as text inside it; the file is also
  # copied beside the plugin for operators to read.
  if(EXISTS ${schema_file})
    configure_file(${schema_file}
      ${FIREHUB_PLUGIN_OUTPUT_DIR}/firehub_connector_${name}.schema.json COPYONLY)
    install(FILES ${schema_file} DESTINATION ${FIREHUB_INSTALL_LIBDIR}/plugins
      RENAME firehub_connector_${name}.schema.json)
  endif()
  set_property(GLOBAL APPEND PROPERTY FIREHUB_CONNECTOR_PLUGINS ${plugin})
endfunction()

# firehub_cc_test(NAME SRCS a.cc DEPS x LABELS unit)
function(firehub_cc_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  target_compile_options(${name} PRIVATE ${FIREHUB_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  set_target_properties(${name} PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests
    BUILD_RPATH "${CMAKE_BINARY_DIR}/lib")
  target_compile_definitions(${name} PRIVATE
    FIREHUB_BUILD_DIR="${CMAKE_BINARY_DIR}"
    FIREHUB_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT})
endfunction()
