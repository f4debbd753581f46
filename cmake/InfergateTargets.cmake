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
# with ALL_HEADERS, every header in the target's folder (for whole-folder modules), or,
# with FOLDERS, every .h and .cc under those sub-folders of the target's folder, header-only
# ones included, whatever target compiles them (for a room of a module: gateway/h2/).
# RULE names the check when a target has several (one per room).
function(infergate_forbid_includes target)
  cmake_parse_arguments(ARG "ALL_HEADERS" "RULE" "FORBIDDEN;FOLDERS" ${ARGN})
  get_target_property(sources ${target} SOURCES)
  if(NOT sources)
    set(sources)
  endif()
  get_target_property(source_dir ${target} SOURCE_DIR)
  set(headers)
  if(ARG_ALL_HEADERS)
    file(GLOB_RECURSE headers CONFIGURE_DEPENDS "${source_dir}/*.h")
  endif()
  if(ARG_FOLDERS)
    set(sources)
    foreach(folder IN LISTS ARG_FOLDERS)
      file(GLOB_RECURSE in_folder CONFIGURE_DEPENDS "${source_dir}/${folder}/*.h"
           "${source_dir}/${folder}/*.cc")
      if(NOT in_folder)
        message(FATAL_ERROR "infergate_forbid_includes: no sources in ${source_dir}/${folder}")
      endif()
      list(APPEND headers ${in_folder})
    endforeach()
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
  set(check "${target}")
  if(ARG_RULE)
    set(check "${target}_${ARG_RULE}")
  endif()
  set(stamp "${CMAKE_CURRENT_BINARY_DIR}/${check}.includes.stamp")
  add_custom_command(
    OUTPUT "${stamp}"
    COMMAND ${CMAKE_COMMAND} "-DFILES=${files}" "-DFORBIDDEN=${forbidden}"
            "-DMODULE=${check}" "-DSTAMP=${stamp}"
            -P "${PROJECT_SOURCE_DIR}/cmake/CheckIncludes.cmake"
    DEPENDS ${files} "${PROJECT_SOURCE_DIR}/cmake/CheckIncludes.cmake"
    COMMENT "Checking ${check} for forbidden includes"
    VERBATIM)
  add_custom_target(${check}_include_rules DEPENDS "${stamp}")
  add_dependencies(${target} ${check}_include_rules)
endfunction()
