# Helpers shared by every infergate module.

# Warnings and options for infergate's own code (not generated code).
function(infergate_compile_options target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-missing-field-initializers)
  if(INFERGATE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(INFERGATE_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()

# Fails the build when a source of `target` includes a header matching one of the
# FORBIDDEN regular expressions. This is how the module rules of ARCHITECTURE.md hold:
# the compiler alone would find the headers, since they all live in /usr/include.
# Checked: the target's sources and the headers next to them with the same names, or,
# with ALL_HEADERS, every header in the target's folder (for whole-folder modules).
function(infergate_forbid_includes target)
  cmake_parse_arguments(ARG "ALL_HEADERS" "" "FORBIDDEN" ${ARGN})
  get_target_property(sources ${target} SOURCES)
  if(NOT sources)
    set(sources)
  endif()
  get_target_property(source_dir ${target} SOURCE_DIR)
  set(headers)
  if(ARG_ALL_HEADERS)
    file(GLOB_RECURSE headers CONFIGURE_DEPENDS "${source_dir}/*.h")
  endif()
  set(files)
  foreach(src IN LISTS sources headers)
    if(NOT IS_ABSOLUTE "${src}")
      set(src "${source_dir}/${src}")
    endif()
    list(APPEND files "${src}")
    string(REGEX REPLACE "\\.cc$" ".h" header "${src}")
    if(NOT header STREQUAL src AND EXISTS "${header}")
      list(APPEND files "${header}")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES files)
  string(REPLACE ";" "|" forbidden "${ARG_FORBIDDEN}")
  set(stamp "${CMAKE_CURRENT_BINARY_DIR}/${target}.includes.stamp")
  add_custom_command(
    OUTPUT "${stamp}"
    COMMAND ${CMAKE_COMMAND} "-DFILES=${files}" "-DFORBIDDEN=${forbidden}"
            "-DMODULE=${target}" "-DSTAMP=${stamp}"
            -P "${PROJECT_SOURCE_DIR}/cmake/CheckIncludes.cmake"
    DEPENDS ${files} "${PROJECT_SOURCE_DIR}/cmake/CheckIncludes.cmake"
    COMMENT "Checking ${target} for forbidden includes"
    VERBATIM)
  add_custom_target(${target}_include_rules DEPENDS "${stamp}")
  add_dependencies(${target} ${target}_include_rules)
endfunction()
