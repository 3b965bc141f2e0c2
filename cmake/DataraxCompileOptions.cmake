# Warnings and sanitizers applied to every target of the project (never to consumers).
function(datarax_set_compile_options target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    # GCC 12 reports false -Wrestrict on std::string concatenation (GCC bug 105329).
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
  if(DATARAX_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

if(DATARAX_SANITIZE)
  add_compile_options(-fsanitize=${DATARAX_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${DATARAX_SANITIZE})
endif()

if(DATARAX_FUZZ)
  # Coverage for libFuzzer in every target; the fuzz targets link the fuzzer's main themselves.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
