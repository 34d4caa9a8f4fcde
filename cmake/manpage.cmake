# Writes the man page detrun.1 from `detrun --help` and `detrun slurm --help`
# (cmake -DDETRUN=... -DOUT=... -DVERSION=... -P manpage.cmake): the options
# are the help's, word for word, so the page cannot fall behind the command.
execute_process(COMMAND ${DETRUN} --help OUTPUT_VARIABLE help RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${DETRUN} --help failed (${rc})")
endif()
execute_process(COMMAND ${DETRUN} slurm --help OUTPUT_VARIABLE slurm_help RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  set(slurm_help "")
endif()

# roff: a backslash doubled, a leading dot or quote escaped, '-' as \-.
function(roff_escape out text)
  string(REPLACE "\\" "\\e" text "${text}")
  string(REPLACE "-" "\\-" text "${text}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" text "${text}")
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

# The option lines of a help text ("  -t, --threads N   what") as .TP entries;
# continuation lines (deeper indent, no dash) join the entry above.
function(options_of out text)
  # ';' and brackets would split or join CMake list items: stand-ins first.
  string(REPLACE ";" "@SEMI@" text "${text}")
  string(REPLACE "[" "@LB@" text "${text}")
  string(REPLACE "]" "@RB@" text "${text}")
  string(REPLACE "\n" ";" lines "${text}")
  set(roff "")
  foreach(line IN LISTS lines)
    if(line MATCHES "^ +or:")   # first: a later MATCHES resets CMAKE_MATCH_n
      continue()
    endif()
    if(line MATCHES "^  +(-[^ ].*[^ ]|-[^ ]+)  +([^ ].*)$")
      set(opt "${CMAKE_MATCH_1}")
      set(what "${CMAKE_MATCH_2}")
      roff_escape(opt "${opt}")
      roff_escape(what "${what}")
      string(APPEND roff ".TP\n\\fB${opt}\\fR\n${what}\n")
    elseif(line MATCHES "^  +(-[^ ]+( [^ ]+)?)$")   # an option whose text is on the next line
      roff_escape(opt "${CMAKE_MATCH_1}")
      string(APPEND roff ".TP\n\\fB${opt}\\fR\n")
    elseif(line MATCHES "^                    +([^ ].*)$" AND NOT roff STREQUAL "")
      roff_escape(what "${CMAKE_MATCH_1}")
      string(APPEND roff "${what}\n")
    endif()
  endforeach()
  string(REPLACE "@SEMI@" ";" roff "${roff}")
  string(REPLACE "@LB@" "[" roff "${roff}")
  string(REPLACE "@RB@" "]" roff "${roff}")
  set(${out} "${roff}" PARENT_SCOPE)
endfunction()

options_of(opts "${help}")
options_of(slurm_opts "${slurm_help}")
set(page ".TH DETRUN 1 \"\" \"detrun ${VERSION}\" \"User Commands\"
.SH NAME
detrun \\- run reproducible deep\\-learning experiment scripts
.SH SYNOPSIS
.B detrun
[\\fIoptions\\fR] \\fISCRIPT\\fR [\\fIscript args\\fR...]
.br
.B detrun diff
[\\fB\\-\\-dump\\fR \\fIPREFIX\\fR] \\fIA.trace\\fR \\fIB.trace\\fR
.br
.B detrun merge
[\\fB\\-\\-partial\\fR] [\\fB\\-q\\fR] \\fIOUT\\fR
.br
.B detrun slurm
[\\fIslurm options\\fR] [\\fIoptions\\fR] [\\fB\\-\\-\\fR \\fISBATCH\\-OPTIONS\\fR] \\fISCRIPT\\fR [\\fIargs\\fR]
.SH DESCRIPTION
\\fBdetrun\\fR runs a Lua 5.4 experiment script whose \\fBdr.experiment{...}\\fR
describes a grid of modes, repeats and folds, trains every cell of it and
prints a report: per mode the spread of loss and accuracy across repeats, the
time, and how many distinct weight fingerprints the repeats produced (1 means
reproducible). Options go before \\fISCRIPT\\fR; the words after it are the
script's arguments (its \\fBarg\\fR table and \\fB...\\fR).
.SH OPTIONS
${opts}")
if(NOT slurm_opts STREQUAL "")
  string(APPEND page ".SH SLURM OPTIONS\n\\fBdetrun slurm\\fR plans the experiment, writes job scripts and submits them with sbatch as a job array and a merge job.\n${slurm_opts}")
endif()
string(APPEND page ".SH EXIT STATUS
0 success; 1 an error in the script or the data; 2 a usage error; 3
fingerprints that differ from the golden file (\\fB\\-\\-check\\fR) or traces
that differ (\\fBdetrun diff\\fR).
.SH ENVIRONMENT
.TP
.B DETRUN_DATA
the default folder of the MNIST\\-format data files.
.SH SEE ALSO
\\fBlua5.4\\fR(1), \\fBsbatch\\fR(1); the documents docs/lua.md, docs/regression.md
and docs/cluster.md of the detrun sources.
")
file(WRITE ${OUT}.tmp "${page}")
file(RENAME ${OUT}.tmp ${OUT})
