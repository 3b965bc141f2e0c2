# Checks that docs/guide.md shows only code that compiles: every ```cpp block must be a verbatim
# run of whole lines of the example file named in the text above it (since the previous block),
# e.g. "From `examples/device_mesh.cc`:". Run by the CTest test docs_guide_excerpts:
#
#   cmake -DGUIDE=docs/guide.md -DROOT=. -P examples/check_guide_excerpts.cmake
#
# CMake lists split on ';' and treat '[' ']' specially, and C++ is full of all three, so text is
# encoded before it is split into lines and compared in that encoding.

foreach(var GUIDE ROOT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_guide_excerpts: pass -D${var}=...")
  endif()
endforeach()

function(encode out text)
  string(REPLACE ";" "<semicolon>" text "${text}")
  string(REPLACE "[" "<lbracket>" text "${text}")
  string(REPLACE "]" "<rbracket>" text "${text}")
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

function(decode out text)
  string(REPLACE "<semicolon>" ";" text "${text}")
  string(REPLACE "<lbracket>" "[" text "${text}")
  string(REPLACE "<rbracket>" "]" text "${text}")
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

file(READ "${GUIDE}" guide)
encode(guide "${guide}")
string(REPLACE "\n" ";" lines "${guide}")

set(errors "")
set(in_block FALSE)
set(block_count 0)
set(line_no 0)
set(named_file "")
foreach(line IN LISTS lines)
  math(EXPR line_no "${line_no} + 1")
  if(NOT in_block)
    if(line MATCHES "^```(cpp|c\\+\\+)[ ]*$")
      set(in_block TRUE)
      set(block "")
      set(block_line ${line_no})
    elseif(line MATCHES "^```")
      set(in_block OTHER)  # output, shell: not checked
    elseif(line MATCHES "(examples/[A-Za-z0-9_]+\\.cc)")
      set(named_file "${CMAKE_MATCH_1}")
    endif()
  elseif(line MATCHES "^```[ ]*$")
    if(in_block STREQUAL "TRUE")
      math(EXPR block_count "${block_count} + 1")
      if(named_file STREQUAL "")
        string(APPEND errors "  the code block at line ${block_line} names no examples/*.cc file above it\n")
      elseif(NOT EXISTS "${ROOT}/${named_file}")
        string(APPEND errors "  the code block at line ${block_line} quotes ${named_file}, which does not exist\n")
      else()
        file(READ "${ROOT}/${named_file}" source)
        encode(source "${source}")
        string(FIND "\n${source}" "\n${block}" at)
        if(at EQUAL -1)
          decode(shown "${block}")
          string(APPEND errors "  the code block at line ${block_line} is not a verbatim excerpt of "
                               "${named_file}:\n${shown}\n")
        endif()
      endif()
    endif()
    set(in_block FALSE)
    set(named_file "")  # every block names its file anew
  elseif(in_block STREQUAL "TRUE")
    string(APPEND block "${line}\n")
  endif()
endforeach()

if(block_count EQUAL 0)
  string(APPEND errors "  no ```cpp code blocks found\n")
endif()
if(NOT errors STREQUAL "")
  message(FATAL_ERROR "check_guide_excerpts: ${GUIDE}:\n${errors}")
endif()
message(STATUS "check_guide_excerpts: ${block_count} code blocks of ${GUIDE} are verbatim excerpts")
