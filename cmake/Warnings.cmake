# Warning, hardening and sanitizer flags shared by every target.
add_compile_options(
  -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
  -Wformat=2 -Wvla -Wno-unused-parameter
  -fstack-protector-strong -fno-strict-aliasing)
add_compile_definitions(_GNU_SOURCE)
if(AIRLOCK_WERROR)
  add_compile_options(-Werror)
endif()
if(AIRLOCK_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined -fno-sanitize-recover=all)
else()
  # _FORTIFY_SOURCE needs optimisation and conflicts with ASan's interceptors.
  if(NOT CMAKE_BUILD_TYPE STREQUAL "Debug")
    if(CMAKE_C_COMPILER_ID STREQUAL "Clang")
      add_compile_definitions(_FORTIFY_SOURCE=2)
    else()
      add_compile_options(-U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3)
    endif()
  endif()
endif()

# A fuzz build instruments every object for coverage and the sanitizers, so
# the libraries a fuzz target links are seen by libFuzzer too, and any other
# executable of that build still links (with the sanitizer runtimes).
if(AIRLOCK_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# airlock_fuzz_target(NAME SOURCE LIBS...): a libFuzzer binary, built only
# with -DAIRLOCK_FUZZ=ON and clang.
function(airlock_fuzz_target name source)
  if(AIRLOCK_FUZZ)
    add_executable(${name} ${source})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(${name} PRIVATE ${ARGN})
  endif()
endfunction()
