# cmake --install: libmsp (shared, with its SONAME, and static), the public
# headers, msp.pc, the msp-ets provider module, the msp program and msp(1).
include(GNUInstallDirs)

install(TARGETS libmsp LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_COMPONENT dev)
install(FILES ${MSP_STATIC_ARCHIVE} DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/msp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev
        FILES_MATCHING PATTERN "*.h")
file(RELATIVE_PATH MSP_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
string(REGEX REPLACE "/$" "" MSP_PC_TO_PREFIX "${MSP_PC_TO_PREFIX}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/msp.pc.in ${PROJECT_BINARY_DIR}/msp.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/msp.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# Where OpenSSL looks for provider modules is its own MODULESDIR; under the
# install prefix it is lib/ossl-modules, as Debian's openssl lays it out.
if(TARGET msp-ets)
  install(TARGETS msp-ets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/ossl-modules)
endif()

install(TARGETS msp RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${PROJECT_SOURCE_DIR}/docs/msp.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
