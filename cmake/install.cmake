# Install rules (included by the top CMakeLists.txt; README.md "Installing"):
#   bin/octet                              the command-line tool
#   lib/liboctet.so.X.Y.Z, .so.X, .so      the library (exports oct_* only)
#   lib/liboctet.a                         the same, static
#   lib/liboctet_runtime.so*, .a           what compiled models link against
#   include/octet/octet.h                  the public API
#   include/octet/octet_runtime.h          the runtime's header
#   share/man/man1/octet.1                 the manual page
#   lib/pkgconfig/octet.pc, octet-runtime.pc
#   lib/cmake/octet/octetConfig.cmake, octetConfigVersion.cmake and the
#   exported targets octet::octet (shared), octet::octet_static,
#   octet::runtime (shared), octet::runtime_static.
# Every installed file that names a path finds the prefix relative to itself,
# so `cmake --install build --prefix P` works for any P (tests/install).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(OCTET_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/octet)
set(OCTET_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# <octet/octet.h> for the library, "octet_runtime.h" (as examples/run_npy.c and
# programs built with the runtime folder on the include path write it) and
# <octet/octet_runtime.h> for the runtime.
foreach(lib octet_shared octet_static)
  target_include_directories(${lib} INTERFACE $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
endforeach()
foreach(rt octet_runtime octet_runtime_shared)
  target_include_directories(${rt} INTERFACE
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}> $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/octet>)
endforeach()

install(TARGETS octet RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS octet_shared octet_static octet_runtime_shared octet_runtime
        EXPORT octetTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${CMAKE_SOURCE_DIR}/include/octet/octet.h ${CMAKE_SOURCE_DIR}/runtime/octet_runtime.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/octet)
install(FILES ${CMAKE_SOURCE_DIR}/docs/octet.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

# ---- pkg-config ------------------------------------------------------------------
# prefix is found from the .pc file's own folder (${pcfiledir}), so the files
# hold for whatever prefix `cmake --install --prefix` is given.
if(IS_ABSOLUTE ${CMAKE_INSTALL_LIBDIR})
  set(OCTET_PC_PREFIX ${CMAKE_INSTALL_PREFIX})
else()
  file(RELATIVE_PATH rel /root/${OCTET_PC_DIR} /root)
  string(REGEX REPLACE "/$" "" rel "${rel}")
  set(OCTET_PC_PREFIX "\${pcfiledir}/${rel}")
endif()
foreach(kind LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE ${CMAKE_INSTALL_${kind}})
    set(OCTET_PC_${kind} ${CMAKE_INSTALL_${kind}})
  else()
    set(OCTET_PC_${kind} "\${prefix}/${CMAKE_INSTALL_${kind}}")
  endif()
endforeach()
# what a static link of liboctet.a needs besides liboctet_runtime
set(OCTET_PC_LIBS_PRIVATE)
foreach(dep ${OCTET_DEP_LIBS})
  if(IS_ABSOLUTE ${dep})
    get_filename_component(dir ${dep} DIRECTORY)
    get_filename_component(name ${dep} NAME)
    string(REGEX REPLACE "^lib|\\.so.*$|\\.a$" "" name ${name})
    if(NOT dir IN_LIST CMAKE_C_IMPLICIT_LINK_DIRECTORIES)
      string(APPEND OCTET_PC_LIBS_PRIVATE " -L${dir}")
    endif()
    string(APPEND OCTET_PC_LIBS_PRIVATE " -l${name}")
  else()
    string(APPEND OCTET_PC_LIBS_PRIVATE " -l${dep}")
  endif()
endforeach()
string(STRIP "${OCTET_PC_LIBS_PRIVATE}" OCTET_PC_LIBS_PRIVATE)
configure_file(${CMAKE_CURRENT_LIST_DIR}/octet.pc.in ${CMAKE_BINARY_DIR}/octet.pc @ONLY)
configure_file(${CMAKE_CURRENT_LIST_DIR}/octet-runtime.pc.in ${CMAKE_BINARY_DIR}/octet-runtime.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/octet.pc ${CMAKE_BINARY_DIR}/octet-runtime.pc
        DESTINATION ${OCTET_PC_DIR})

# ---- CMake package: find_package(octet) ----------------------------------------------
install(EXPORT octetTargets NAMESPACE octet:: DESTINATION ${OCTET_CMAKE_DIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/octetConfig.cmake.in
  ${CMAKE_BINARY_DIR}/octetConfig.cmake INSTALL_DESTINATION ${OCTET_CMAKE_DIR}
  PATH_VARS CMAKE_INSTALL_BINDIR)
# 0.x releases may change the API between minor versions (include/octet/octet.h)
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(compat SameMinorVersion)
else()
  set(compat SameMajorVersion)
endif()
write_basic_package_version_file(${CMAKE_BINARY_DIR}/octetConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY ${compat})
install(FILES ${CMAKE_BINARY_DIR}/octetConfig.cmake ${CMAKE_BINARY_DIR}/octetConfigVersion.cmake
        DESTINATION ${OCTET_CMAKE_DIR})
