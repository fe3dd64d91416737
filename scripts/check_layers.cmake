# Note [layers]: dependencies go one way; fails (and so fails the build) when a module includes
# a header of a module it may not use. usage: cmake -DSOURCE_DIR=<tree> -P scripts/check_layers.cmake
#   core <- models <- data, comm, trainer/optim, trainer/sharing (which may use data) <- trainer
#   <- trainer/cli (the binary); nothing includes trainer/cli.
cmake_minimum_required(VERSION 3.20)
if(NOT SOURCE_DIR)
  message(FATAL_ERROR "check_layers: pass -DSOURCE_DIR=<source tree>")
endif()
# Most specific room first: a path belongs to the first room whose folder starts it.
set(rooms trainer/optim trainer/sharing trainer/cli trainer core models data comm)
set(allowed_core core)
set(allowed_models core models)
set(allowed_data core models data)
set(allowed_comm core models comm)
set(allowed_trainer/optim core models trainer/optim)
set(allowed_trainer/sharing core models data trainer/sharing)
set(allowed_trainer core models data comm trainer/optim trainer/sharing trainer)
set(allowed_trainer/cli core models data comm trainer/optim trainer/sharing trainer trainer/cli)

function(room_of path out)
  foreach(r IN LISTS rooms)
    string(LENGTH "${r}/" n)
    string(SUBSTRING "${path}" 0 ${n} head)
    if(head STREQUAL "${r}/")
      set(${out} "${r}" PARENT_SCOPE)
      return()
    endif()
  endforeach()
  set(${out} "" PARENT_SCOPE)
endfunction()

set(violations "")
foreach(top core models data comm trainer)
  file(GLOB_RECURSE files RELATIVE "${SOURCE_DIR}" "${SOURCE_DIR}/${top}/*.h" "${SOURCE_DIR}/${top}/*.cpp"
       "${SOURCE_DIR}/${top}/*.cu" "${SOURCE_DIR}/${top}/*.cuh")
  foreach(f IN LISTS files)
    room_of("${f}" from)
    file(STRINGS "${SOURCE_DIR}/${f}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
    foreach(line IN LISTS lines)
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*\"([^\"]*)\".*" "\\1" inc "${line}")
      room_of("${inc}" to)
      if(to STREQUAL "" OR to IN_LIST allowed_${from})
        continue()
      endif()
      string(APPEND violations "  ${f} (${from}) includes \"${inc}\" (${to})\n")
    endforeach()
  endforeach()
endforeach()
if(violations)
  message(FATAL_ERROR "check_layers: a lower module includes a higher one (Note [layers] in "
                      "scripts/check_layers.cmake):\n${violations}Move the code to the module "
                      "that may use both, or pass what it needs in from above.")
endif()
