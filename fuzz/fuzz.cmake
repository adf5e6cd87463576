# The libFuzzer targets, added to the project's own build without a line in
# CMakeLists.txt: fuzz/run.sh configures build-fuzz with clang and
# -DCMAKE_PROJECT_INCLUDE=fuzz/fuzz.cmake. CMake includes this file right
# after project(), before any target exists, so the targets are added by a
# call deferred to the end of the top-level CMakeLists.txt, when ice_static
# is defined. The fuzzers thus build from the same sources, options and
# libraries as the library (ICE_ASAN gives ASan + UBSan; run.sh adds
# -fsanitize=fuzzer-no-link, the coverage feedback, to every object).

function(ice_fuzz_targets)
  # The project's flags are GCC's: clang does not know some of its -Wno-
  # options, and a clang-only warning in someone's half-done file must not
  # stop the fuzzers from building (nor the `ice` that records the store
  # target's seeds). Our own files keep -Werror.
  get_property(existing DIRECTORY ${CMAKE_SOURCE_DIR}
               PROPERTY BUILDSYSTEM_TARGETS)
  foreach(t ${existing})
    get_target_property(opts ${t} COMPILE_OPTIONS)
    if(opts)
      list(REMOVE_ITEM opts -Werror)
      list(APPEND opts -Wno-unknown-warning-option)
      set_target_properties(${t} PROPERTIES COMPILE_OPTIONS "${opts}")
    endif()
  endforeach()

  file(GLOB targets CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/fuzz/fuzz_*.c)
  foreach(src ${targets})
    get_filename_component(name ${src} NAME_WE)
    add_executable(${name} ${src})
    target_compile_options(${name} PRIVATE -Werror
                           -Wno-unknown-warning-option)
    target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src)
    target_link_libraries(${name} PRIVATE ice_static)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  endforeach()
endfunction()

cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL ice_fuzz_targets)
